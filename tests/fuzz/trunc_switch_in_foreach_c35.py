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
        """Foreach body: d