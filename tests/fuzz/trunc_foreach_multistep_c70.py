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
    def transform(self):
        """Second body step: reverse and upper-case the word."""
        # self.input is still available in later body steps
        assert self.input == self.word
        self.transformed = self.word[::-1].upper()
        self.next(self.score)

    @step
    def score(self):
        """Third body step: score by length and vowel count."""
        vowels = sum(1 for c in self.word if c in "aeiou")
        self.score_value = len(self.word) * 10 + vowels
        self.next(self.join)

    @step
    def join(self, inputs):
        """Collect per-word results in split order."""
        