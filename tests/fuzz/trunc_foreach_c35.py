"""Foreach: start fans out over a list -> body -> join -> end."""
from metaflow import FlowSpec, step


class ForeachFlow(FlowSpec):
    """Square each item in parallel and collect the results in order."""

    @step
    def start(self):
        """Define the items to fan out over."""
        self.items = [1, 2, 3, 4]
        self.next(self.square, foreach="items")

    @step
    def square(self):
  