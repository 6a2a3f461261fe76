"""Nested static split: one branch of the outer split splits again.

start -> (left, right); right -> (right_x, right_y) -> inner_join;
(left, inner_join) -> outer_join -> end. Both joins use merge_artifacts.
"""
from metaflow import FlowSpec, step


class NestedBranchFlow(FlowSpec):
    """A split inside a split, merged with merge_artifacts."""

    @step
    def start(self):
        """Set a shared seed and fan out."""
        self.seed = 7
        self.next(self.left, self.right)

    @step
    def left(self):
        """Outer branch without a nested split."""
        self.left_value = self.seed * 3
        self.origin = "left"
        self.next(self.outer_join)

    @step
    def r