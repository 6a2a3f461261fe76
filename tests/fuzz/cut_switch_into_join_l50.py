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


if __name__ == "__main__":
    SwitchIntoJoinFlow()
