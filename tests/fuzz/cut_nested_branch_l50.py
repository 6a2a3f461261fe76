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
    def right(self):
        """Outer branch that splits again."""
        self.origin = "right"
        self.next(self.right_x, self.right_y)

    @step
    def right_x(self):
        """Inner branch x."""
        self.x_value = self.seed + 100


if __name__ == "__main__":
    NestedBranchFlow()
