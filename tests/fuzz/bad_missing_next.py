# expect: step middle does not end with a self.next() transition
from metaflow import FlowSpec, Parameter, step


class F(FlowSpec):
    @step
    def start(self):
        self.next(self.middle)

    @step
    def middle(self):
        self.x = 1

    @step
    def end(self):
        pass


if __name__ == "__main__":
    F()
