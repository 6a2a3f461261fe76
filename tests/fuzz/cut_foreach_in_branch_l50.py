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



if __name__ == "__main__":
    ForeachInBranchFlow()
