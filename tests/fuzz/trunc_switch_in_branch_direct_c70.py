"""A static split where one branch is a switch whose cases go straight into the join.

start -> (decide, steady); decide -(direction)-> {up: go_up, down: go_down};
(go_up | go_down, steady) -> join -> end. The join has three in-edges but
receives exactly two inputs: the case that ran plus the steady branch.
"""
from metaflow import FlowSpec, step


class SwitchInBranchDirectFlow(FlowSpec):
    """Like SwitchInBranchFlow, without a converging step after the cases."""

    @step
    def start(self):
        """Set the level and split into two static branches."""
        self.level = 3
        self.next(self.decide, self.steady)

    @step
    def decide(self):
        """Branch 1: choose a direction from the level."""
        self.direction = "up" if self.level >= 5 else "down"
        self.next({"up": self.go_up, "down": self.go_down}, condition="direction")

    @step
    def go_up(self):
        """Switch case: raise the level (not taken with the default level)."""
        self.branch_value = self.level + 1
        self.next(self.join)

    @step
    def go_down(self):
        """Switch case: lower the level."""
        self.branch_value = self.level - 1
        self.next(self.join)

    @step
    def steady(self):
        """Branch 2: keep the level."""
        self.branch_value = self.level
        self.next(self.join)

    @s