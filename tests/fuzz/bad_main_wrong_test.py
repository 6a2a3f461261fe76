# expect: no `if __name__ == "__main__":` block instantiates a flow
from metaflow import FlowSpec, Parameter, step


class F(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "main":
    F()
