"""Saga test flow: start -> a -> b -> end, every step but end undoable; end (or an
undo) fails on request. Steps and compensations append to the `ledger` file."""
from metaflow import FlowSpec, Parameter, current, step

from mf_temporal_codegen import compensate


def note(path, *words):
    with open(path, "a") as out:
        out.write(" ".join(str(w) for w in words) + "\n")


class SagaLinearFlow(FlowSpec):
    ledger = Parameter("ledger", default="")
    fail = Parameter("fail", default="end")
    fail_undo = Parameter("fail_undo", default="")

    @step
    def start(self):
        self.value = 1
        note(self.ledger, "do start")
        self.next(self.a)

    @compensate("start")
    def undo_start(self):
        note(self.ledger, "undo start", current.compensation.status)

    @step
    def a(self):
        self.value += 10
        note(self.ledger, "do a")
        self.next(self.b)

    @compensate("a")
    def undo_a(self):
        note(self.ledger, "undo a", current.compensation.status)
        if self.fail_undo == "a":
            raise RuntimeError("undo_a failed on purpose")

    @step
    def b(self):
        self.value += 100
        note(self.ledger, "do b")
        self.next(self.end)

    @compensate("b")
    def undo_b(self):
        self.undone_value = self.value
        note(self.ledger, "undo b", current.compensation.status, self.value)

    @step
    def end(self):
        note(self.ledger, "do end")
        if self.fail == "end":
            raise RuntimeError("end failed on purpose")


if __name__ == "__main__":
    SagaLinearFlow()
