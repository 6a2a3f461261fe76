# expect: the __main__ block instantiates Helper, which is not a Metaflow flow
from metaflow import FlowSpec, Parameter, step


class F(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


class Helper:
    pass


if __name__ == "__main__":
    Helper()
