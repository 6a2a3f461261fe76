# expect: step start is missing the 'self' argument
from metaflow import FlowSpec, Parameter, step


class F(FlowSpec):
    @step
    def start():
        pass

    @step
    def end(self):
        pass


if __name__ == "__main__":
    F()
