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
        self.stack = [list(t) for t in self.foreach_stack()]
        self.path = [t[0] for t in self.stack]
        self.next(self.inner_join)

    @step
    def inner_join(self, inputs):
        """Join level 3: collect combos for one (color, size)."""
        self.combos = [i.combo for i in inputs]
        self.paths = [i.path for i in inputs]
        self.next(self.middle_join)

    @step
    def middle_join(self, inputs):
        """Join level 2: flatten combos for one color."""
        self.combos = [c for i in inputs for 