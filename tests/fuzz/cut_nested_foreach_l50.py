"""Three levels of nested foreach (widths 2, 2, 2), each with its own join.

start -> outer (foreach colors) -> middle (foreach sizes) -> inner
(foreach shapes) -> leaf -> inner_join -> middle_join -> outer_join -> end.
"""
from metaflow import FlowSpec, step


class NestedForeachFlow(FlowSpec):
    """Build every (color, size, shape) combination via nested fan-outs."""

    @step
    def start(self):
        """Define the outermost list."""
        self.colors = ["red", "blue"]
        self.next(self.outer, foreach="colors")

    @step
    def outer(self):
        """Level 1: remember the color, fan out over sizes."""
        self.color = self.input
        self.sizes = ["S", "L"]
        self.next(self.middle, foreach="sizes")

    @step
    def middle(self):
        """Level 2: remember the size, fan out over shapes."""
        self.size = self.input
        self.shapes = ["circle", "square"]
        self.next(self.inner, foreach="shapes")

    @step
    def inner(self):
        """Level 3: build one combination and record the foreach stack."""
        self.combo = "%s-%s-%s" % (self.color, self.size, self.input)
        # (index, num_splits, value) for each level, outermost first


if __name__ == "__main__":
    NestedForeachFlow()
