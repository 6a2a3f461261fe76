"""A foreach of slow tasks for fault tests: each attempt logs when it starts and ends."""

import os
import time

from metaflow import FlowSpec, Parameter, current, step


def log(event):
    path = os.environ.get("FAULT_LOG")
    if path:
        with open(path, "a") as out:
            out.write(
                f"{current.step_name}/{current.task_id} {current.retry_count} "
                f"{event} {time.time():.3f} {os.getpid()}\n"
            )


class FaultFlow(FlowSpec):
    width = Parameter("width", default=6, type=int)
    seconds = Parameter("seconds", default=3.0, type=float)

    @step
    def start(self):
        self.items = list(range(self.width))
        self.next(self.body, foreach="items")

    @step
    def body(self):
        log("start")
        time.sleep(self.seconds)
        self.square = self.input * self.input
        log("end")
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.square for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        print("total", self.total)


if __name__ == "__main__":
    FaultFlow()
