# expect: cannot read `**opts`
from metaflow import FlowSpec, Parameter, step


class F(FlowSpec):
    opts = {}
    p = Parameter("p", **opts)

    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    F()
