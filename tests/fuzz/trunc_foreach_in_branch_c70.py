"""A static split where one branch contains a foreach.

start -> (fan, solo); fan -> work (foreach) -> fan_join -> branch_join;
solo -> branch_join; branch_join -> end.
"""
from metaflow import FlowSpec, step


class ForeachInBranchFlow(FlowSpec):
    """One branch fans out over numbers, the other is a single step."""

    @step
    def start(self):
        """Set the input list and split into two branches."""
        self.numbers = [3, 5, 7]
        self.next(self.fan, self.solo)

    @step
    def fan(self):
        """Branch 1: fan out over the numbers."""
        self.branch = "fan"
        self.next(self.work, foreach="numbers")

    @step
    def work(self):
        """Foreach body: triple one number."""
        self.tripled = self.input * 3
        self.next(self.fan_join)

    @step
    def fan_join(self, inputs):
        """Join the foreach inside branch 1."""
        self.tripled_all = [i.tripled for i in inputs]
        self.branch_result = sum(self.tripled_all)
        self.next(self.branch_join)

    @step
    def solo(self):
        """Branch 2: a single step computing the plain sum."""
        self.branch_result = sum(self.numbers)
        self.next(self.branch_join