# expect: Parameter name 'class' is a Python keyword
from metaflow import FlowSpec, Parameter, step


class F(FlowSpec):
    p = Parameter("class", default="x")

    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    F()
