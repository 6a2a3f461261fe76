"""A foreach whose body splits into two branches and joins again.

start -> prepare (foreach) -> (plus, times) -> combine -> join -> end.
"""
from metaflow import FlowSpec, step


class BranchInForeachFlow(FlowSpec):
    """Per item, compute two things in parallel and combine them."""

    @step
    def start(self):
        """Define the items."""
        self.items = [2, 4]
        self.next(self.prepare, foreach="items")

    @step
    def prepare(self):
        """Foreach body entry: take the item and split."""
        self.item = self.input
        sel