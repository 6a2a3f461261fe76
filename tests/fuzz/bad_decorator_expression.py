# expect: cannot read decorator
from metaflow import FlowSpec, Parameter, step


class F(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @(lambda f: f)
    @step
    def end(self):
        pass


if __name__ == "__main__":
    F()
