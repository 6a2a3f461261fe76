# expect: p: the name must be a string, got `123`
from metaflow import FlowSpec, Parameter, step


class F(FlowSpec):
    p = Parameter(123)

    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    F()
