"""A loop back to an earlier step: a -> b -> c, c switches back to a or on to end.

start -> a -> b -> c -(state)-> {again: a, done: end}; three rounds.

REJECTED by Metaflow 2.19.39 (lint, before any task runs): only a switch that
targets its own step may loop. `python loop_back.py run` prints:

    Validity checker found an issue in file .../loop_back.py on line 31:
    There is a loop in your flow: b->c->a->b. Break the loop by fixing self.next() transitions.

Kept as a negative case: the code generator must reject it the same way.
"""
from metaflow import FlowSpec, step


class LoopBackFlow(FlowSpec):
    """Run the a -> b -> c chain three times."""

    @step
    def start(self):
        """Initialise the round counter."""
        self.rounds = 0
        self.trace = []
        self.next(self.a)

    @step
    def a(self):
        """First step of the loop body."""
        self.rounds += 1
        self.trace = self.trace + ["a%d" % self.rounds]
        self.next(self.b)

    @step
    def b(self):
        """Second step of the loop body."""
        self.trace = self.trace + ["b%d" % self.rounds]
        self.next(self.c)

    @step
    def c(self):
        """Last step of the body: go back to a, or finish after 3 rounds."""
        self.trace = self.trace + ["c%d" % self.rounds]
        self.state = "again" if self.rounds < 3 else "done"
        self.next({"again": self.a, "done": self.end}, condition="state")

    @step
    def end(self):
        """Check three full rounds ran."""
        assert self.rounds == 3
        assert self.trace == ["a1", "b1", "c1", "a2", "b2", "c2", "a3", "b3", "c3"]


if __name__ == "__main__":
    LoopBackFlow()
