"""Multi-host test flow: a branch, then a 30-way foreach. Each task records the
simulated host that ran it (`host`, left out of comparisons) and prints a line the
test reads back through the Client's logs."""
import os

from metaflow import FlowSpec, Parameter, step


class MultiHostFlow(FlowSpec):
    width = Parameter("width", default=30, help="foreach width")

    @step
    def start(self):
        self.host = os.environ.get("SIMULATED_HOST", "native")
        self.next(self.left, self.right)

    @step
    def left(self):
        self.host = os.environ.get("SIMULATED_HOST", "native")
        self.side = "left"
        self.next(self.meet)

    @step
    def right(self):
        self.host = os.environ.get("SIMULATED_HOST", "native")
        self.side = "right"
        self.next(self.meet)

    @step
    def meet(self, inputs):
        self.host = os.environ.get("SIMULATED_HOST", "native")
        self.sides = sorted(i.side for i in inputs)
        self.next(self.spread)

    @step
    def spread(self):
        self.host = os.environ.get("SIMULATED_HOST", "native")
        self.items = list(range(self.width))
        self.next(self.work, foreach="items")

    @step
    def work(self):
        self.host = os.environ.get("SIMULATED_HOST", "native")
        self.item = self.input
        self.square = self.item * self.item
        print(f"square of {self.item} is {self.square}")
        self.next(self.gather)

    @step
    def gather(self, inputs):
        self.host = os.environ.get("SIMULATED_HOST", "native")
        self.total = sum(i.square for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        self.host = os.environ.get("SIMULATED_HOST", "native")


if __name__ == "__main__":
    MultiHostFlow()
