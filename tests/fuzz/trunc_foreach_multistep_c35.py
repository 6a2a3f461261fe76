"""Foreach whose body is three steps: load -> transform -> score -> join."""
from metaflow import FlowSpec, step


class MultiStepForeachFlow(FlowSpec):
    """Each word goes through a three-step pipeline in its own split."""

    @step
    def start(self):
        """List the words to process."""
        self.words = ["alpha", "beta", "gamma"]
        self.next(self.load, foreach="words")

    @step
    def load(self):
        """First body step: take this split's word."""
        self.word = self.input
        self.split_index = self.index
        self.next(self.transform)

    @step
    def t