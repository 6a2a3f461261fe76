"""A step that loops on itself through a switch (a recursive switch).

start -> loop -(state)-> {again: loop, done: end}; loop runs 3 times.
"""
from metaflow import FlowSpec, step


class RecursiveSwitchFlow(FlowSpec):
    """Count to three by re-running the same step."""

    @step
    def start(self):
        """Initialise the counter and the history."""
        self.counter = 0
        self.history = []
        self.next(self.loop)

    @step
    def loop(self):
        """One iteration: bump the counter, then loop again or finish."""
        self.counter += 1
        self.history = self.history + ["iteration-%d" % self.counter]
        self.state = "again" if self.counter < 3 else "done"
        self.next({"again": self.loop, "done": self.