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
        self.words = ["hel