"""A static split where one branch is a switch that converges before the join.

start -> (decide, steady); decide -(direction)-> {up: go_up, down: go_down}
-> settle; (settle, steady) -> join -> end.
"""
from metaflow import FlowSpec, step


class SwitchInBranchFlow(FlowSpec):
    """One branch of a split makes a run-time choice."""

    @step
    def start(self):
        """Set the level and split into two static branches."""
        self.level = 5
        self.next(self.decide, self.steady)

    @step
    def decide(self):
        """Branch 1: choose a direction from the level."""
        self.direction = "up" if self.lev