# expect: Parameter name 'm(ode' cannot be a command-line option
from metaflow import FlowSpec, Parameter, step


class F(FlowSpec):
    p = Parameter("m(ode", default="x")

    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    F()
