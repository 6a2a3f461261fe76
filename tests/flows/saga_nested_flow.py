"""Saga test flow: foreach outer (a, b) x foreach inner (0, 1, 2) -> work; the
work task at (fail_outer, fail_inner) fails. Steps and compensations append to the
`ledger` file."""
import time

from metaflow import FlowSpec, Parameter, current, step

from mf_temporal_codegen import compensate


def note(path, *words):
    with open(path, "a") as out:
        out.write(" ".join(str(w) for w in words) + "\n")


class SagaNestedFlow(FlowSpec):
    ledger = Parameter("ledger", default="")
    fail_outer = Parameter("fail_outer", default="b")
    fail_inner = Parameter("fail_inner", default=1)

    @step
    def start(self):
        self.outers = ["a", "b"]
        self.next(self.outer, foreach="outers")

    @step
    def outer(self):
        self.letter = self.input
        self.inners = [0, 1, 2]
        self.next(self.work, foreach="inners")

    @step
    def work(self):
        self.cell = "%s%d" % (self.letter, self.input)
        note(self.ledger, "begin work", self.cell)
        if (self.letter, self.input) == (self.fail_outer, self.fail_inner):
            time.sleep(1)
            raise RuntimeError("cell %s failed on purpose" % self.cell)
        note(self.ledger, "do work", self.cell)
        self.next(self.inner_join)

    @compensate("work")
    def undo_work(self):
        note(
            self.ledger,
            "undo work",
            current.compensation.task_id,
            current.compensation.status,
            getattr(self, "cell", "-"),
        )

    @step
    def inner_join(self, inputs):
        self.next(self.outer_join)

    @step
    def outer_join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SagaNestedFlow()
