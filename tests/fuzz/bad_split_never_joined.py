# expect: the end step is reached before the split(s) a, b were joined
from metaflow import FlowSpec, Parameter, step


class F(FlowSpec):
    @step
    def start(self):
        self.next(self.a, self.b)

    @step
    def a(self):
        self.next(self.end)

    @step
    def b(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    F()
