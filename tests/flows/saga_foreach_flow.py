"""Saga test flow: a 5-way foreach whose split `fail_index` fails at once while the
others are still busy for `delay` seconds. Steps and compensations append to the
`ledger` file."""
import time

from metaflow import FlowSpec, Parameter, current, step

from mf_temporal_codegen import compensate


def note(path, *words):
    with open(path, "a") as out:
        out.write(" ".join(str(w) for w in words) + "\n")


class SagaForeachFlow(FlowSpec):
    ledger = Parameter("ledger", default="")
    width = Parameter("width", default=5)
    fail_index = Parameter("fail_index", default=2)
    delay = Parameter("delay", default=3.0)

    @step
    def start(self):
        self.items = list(range(self.width))
        note(self.ledger, "do start")
        self.next(self.work, foreach="items")

    @compensate("start")
    def undo_start(self):
        note(self.ledger, "undo start", current.compensation.status)

    @step
    def work(self):
        self.item = self.input
        note(self.ledger, "begin work", self.input)
        if self.input == self.fail_index:
            raise RuntimeError("split %d failed on purpose" % self.input)
        time.sleep(self.delay)
        note(self.ledger, "do work", self.input)
        self.next(self.join)

    @compensate("work")
    def undo_work(self):
        note(
            self.ledger,
            "undo work",
            current.compensation.task_id,
            current.compensation.status,
            getattr(self, "item", "-"),
        )

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SagaForeachFlow()
