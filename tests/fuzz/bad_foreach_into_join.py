# expect: foreach start goes straight into a join
from metaflow import FlowSpec, Parameter, step


class F(FlowSpec):
    @step
    def start(self):
        self.items = [1]
        self.next(self.join, foreach='items')

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    F()
