"""start (foreach over range(width)) -> body -> join -> end: a wide trivial foreach."""

from metaflow import FlowSpec, Parameter, step


class WideFlow(FlowSpec):
    width = Parameter("width", type=int, default=100)

    @step
    def start(self):
        self.items = list(range(self.width))
        self.next(self.body, foreach="items")

    @step
    def body(self):
        self.value = self.input
        self.next(self.join)

    @step
    def join(self, inputs):
        self.values = [i.value for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        assert self.values == list(range(self.width)), "inputs out of split order"


if __name__ == "__main__":
    WideFlow()
