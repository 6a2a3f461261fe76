"""Linear flow: start -> process -> end.

The smallest useful shape: three steps in a row, each adding artifacts.
"""
from metaflow import FlowSpec, step


class HelloFlow(FlowSpec):
    """Say hello, shout it, and check the result."""

    @step
    def start(self):
        """Create the greeting."""
        self.greeting = "hello"
        self.words = ["hello", "temporal"]
        self.next(self.process)

    @step
    def process(self):
        """Upper-case the greeting and count characters."""
        self.shout = self.greeting.upper()
        # Artifacts from start are still visible on self here (linear step).
        self.lengths = {w: len(w) for w in self.words}
        self.next(self.end)

    @step
    d