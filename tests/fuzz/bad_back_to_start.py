# expect: transitions to the start step
from metaflow import FlowSpec, Parameter, step


class F(FlowSpec):
    @step
    def start(self):
        self.next(self.a)

    @step
    def a(self):
        self.next(self.start)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    F()
