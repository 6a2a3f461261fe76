# expect: flow F has no start step
from metaflow import FlowSpec, Parameter, step


class F(FlowSpec):
    @step
    def begin(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    F()
