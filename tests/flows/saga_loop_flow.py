"""Saga test flow: a switch that loops on itself, each iteration undoable; the
iteration `fail_at` fails. Steps and compensations append to the `ledger` file."""
from metaflow import FlowSpec, Parameter, current, step

from mf_temporal_codegen import compensate


def note(path, *words):
    with open(path, "a") as out:
        out.write(" ".join(str(w) for w in words) + "\n")


class SagaLoopFlow(FlowSpec):
    ledger = Parameter("ledger", default="")
    fail_at = Parameter("fail_at", default=3)

    @step
    def start(self):
        self.count = 0
        self.next(self.loop)

    @step
    def loop(self):
        self.count += 1
        note(self.ledger, "do loop", self.count)
        if self.count == self.fail_at:
            raise RuntimeError("iteration %d failed on purpose" % self.count)
        self.again = "yes" if self.count < 5 else "no"
        self.next({"yes": self.loop, "no": self.end}, condition="again")

    @compensate("loop")
    def undo_loop(self):
        note(
            self.ledger,
            "undo loop",
            current.compensation.task_id,
            current.compensation.status,
            self.count,
        )

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SagaLoopFlow()
