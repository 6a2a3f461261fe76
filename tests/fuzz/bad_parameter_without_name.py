# expect: p: a name is required
from metaflow import FlowSpec, Parameter, step


class F(FlowSpec):
    p = Parameter()

    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    F()
