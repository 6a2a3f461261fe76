"""Saga test flow: start -> (left | right) -> join -> end; right fails after left
finished. Steps and compensations append to the `ledger` file."""
import time

from metaflow import FlowSpec, Parameter, current, step

from mf_temporal_codegen import compensate


def note(path, *words):
    with open(path, "a") as out:
        out.write(" ".join(str(w) for w in words) + "\n")


class SagaBranchFlow(FlowSpec):
    ledger = Parameter("ledger", default="")

    @step
    def start(self):
        note(self.ledger, "do start")
        self.next(self.left, self.right)

    @compensate("start")
    def undo_start(self):
        note(self.ledger, "undo start", current.compensation.status)

    @step
    def left(self):
        note(self.ledger, "do left")
        self.next(self.join)

    @compensate("left")
    def undo_left(self):
        note(self.ledger, "undo left", current.compensation.status)

    @step
    def right(self):
        time.sleep(3)  # left finishes first
        note(self.ledger, "do right")
        raise RuntimeError("right failed on purpose")
        self.next(self.join)  # pylint: disable=unreachable

    @compensate("right")
    def undo_right(self):
        note(self.ledger, "undo right", current.compensation.status)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SagaBranchFlow()
