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
        self.direction = "up" if self.level >= 5 else "down"
        self.next({"up": self.go_up, "down": self.go_down}, condition="direction")

    @step
    def go_up(self):
        """Switch case: raise the level."""
        self.new_level = self.level + 1
        self.next(self.settle)

    @step
    def go_down(self):


if __name__ == "__main__":
    SwitchInBranchFlow()
