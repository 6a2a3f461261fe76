"""Static split: start -> (a, b) -> join -> end."""
from metaflow import FlowSpec, step


class BranchFlow(FlowSpec):
    """Two parallel branches whose values are summed in a join."""

    @step
    def start(self):
        """Pick a base number and fan out to two branches."""
        self.base = 10
        self.next(self.a, self.b)

    @step
    def a(self):
        """Branch a doubles the base."""
        self.value = self.base * 2
        self.label = "a"
  