"""A foreach body whose switch cases go straight into the foreach join.

start -> classify (foreach) -(kind)-> {small: small_case, big: big_case}
-> join -> end.  Each split ends in whichever case ran.
"""
from metaflow import FlowSpec, step


class SwitchIntoJoinFlow(FlowSpec):
    """Per-item switch whose branches feed the foreach join directly."""

    @step
    def start(self):
        """Define the sizes to fan out over."""
        self.sizes = [1, 50, 3]
        self.next(self.classify, foreach="sizes")

    @step
    def classify(self):
        """Foreach body: pick small or big for this item."""
        self.size = self.input
        self.position = self.index
        self.kind = "small" if self.size < 10 else "big"
        self.next({"small": self.small_case, "big": self.big_case}, condition="kind")

    @step
    def small_case(self):
        """Small items are doubled."""
        self.out = self.size * 2
        self.next(self.join)

    @step
    def big_case(self):
        """Big items are halved."""
        self.out = self.size // 2
        self.next(self.join)

    @step
    def join(self, inputs):
        """Foreach join: one input per split, from whichever case ran."""
        # Metaflow 2.19's local runtime groups these inputs by case step (in
        # set order, which varies with PYTHONHASHSEED), not