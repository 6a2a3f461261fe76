# expect: the end step end must not call self.next()
from metaflow import FlowSpec, Parameter, step


class F(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        self.next(self.end)


if __name__ == "__main__":
    F()
