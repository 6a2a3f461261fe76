# expect: multiple steps are annotated with @step(start=True)
from metaflow import FlowSpec, Parameter, step


class F(FlowSpec):
    @step(start=True)
    def one(self):
        self.next(self.two)

    @step(start=True)
    def two(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    F()
