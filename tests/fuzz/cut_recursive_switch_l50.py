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



if __name__ == "__main__":
    RecursiveSwitchFlow()
