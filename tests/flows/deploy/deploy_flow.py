"""A flow deployed with `python deploy_flow.py temporal create` by the tests: a
@project, a @schedule that never fires during a test, parameters, a foreach, a step
that can fail and one that can take long."""

import time

from metaflow import FlowSpec, Parameter, project, schedule, step


@project(name="deploytest")
@schedule(cron="0 0 1 1 ? *")
class DeployFlow(FlowSpec):
    count = Parameter("count", default=2, help="foreach width")
    fail = Parameter("fail", default=False, help="fail in the join")
    sleep = Parameter("sleep", default=0, help="seconds each split sleeps")

    @step
    def start(self):
        self.items = list(range(self.count))
        self.next(self.work, foreach="items")

    @step
    def work(self):
        time.sleep(self.sleep)
        self.square = self.input * self.input
        self.next(self.join)

    @step
    def join(self, inputs):
        if self.fail:
            raise ValueError(f"asked to fail after {len(list(inputs))} splits")
        self.total = sum(i.square for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    DeployFlow()
