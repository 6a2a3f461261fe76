# expect: flow F has no @step methods
from metaflow import FlowSpec, Parameter, step


class F(FlowSpec):
    def start(self):
        pass


if __name__ == "__main__":
    F()
