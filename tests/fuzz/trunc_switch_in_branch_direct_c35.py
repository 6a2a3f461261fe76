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
        