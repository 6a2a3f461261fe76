"""A switch inside a foreach body, converging before the foreach join.

start -> classify (foreach) -(parity)-> {even: halve, odd: triple}
-> collect -> join -> end.
"""
from metaflow import FlowSpec, step


class SwitchInForeachFlow(FlowSpec):
    """Each item takes the even or odd branch depending on its value."""

    @step
    def start(self):
        """Define the numbers; each one gets its own split."""
        self.numbers = [4, 7, 10]
        self.next(self.classify, foreach="numbers")

    @step
    def classify(self):
        """Foreach body: decide the branch for this item."""
        self.number = self.input
        self.parity = "even" if self.number % 2 == 0 else "odd"
        self.next({"even": self.halve, "odd": self.triple}, condition="parity")

    @step
    def halve(self):
        """Even case."""
        self.value = self.number // 2
        self.next(self.collect)

    @step
    def triple(self):
        """Odd case."""
        self.value = self.number * 3 + 1
        self.next(self.collect)

    @step
    def collect(self):
        """Both cases converge here, still inside the spli