import time

from metaflow import FlowSpec, Parameter, step


class ParamDefaultFlow(FlowSpec):
    stamp = Parameter("stamp", default=time.time())

    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ParamDefaultFlow()
