"""Resume on Temporal: a branch, then a foreach in a foreach. While the file `marker`
exists, the task named by `fail_at` (a step, or `outer:<letter>` /
`inner:<letter><number>` for a split) sleeps `sleep` seconds, then fails; every
execution of a task draws a new `token`, a clone keeps its origin's."""

import os
import time
import uuid

from metaflow import FlowSpec, Parameter, step


class ResumeFlow(FlowSpec):
    marker = Parameter("marker", default="", help="fail while this file exists")
    fail_at = Parameter("fail_at", default="", help="which task fails or sleeps")
    sleep = Parameter("sleep", default=0, help="seconds the fail_at task sleeps")

    def _at(self, where):
        if where == self.fail_at and self.marker and os.path.exists(self.marker):
            time.sleep(self.sleep)
            raise RuntimeError(f"failing at {where} while {self.marker} exists")
        self.token = uuid.uuid4().hex

    @step
    def start(self):
        self._at("start")
        self.next(self.a, self.b)

    @step
    def a(self):
        self._at("a")
        self.a_value = 1
        self.next(self.join)

    @step
    def b(self):
        self._at("b")
        self.b_value = 2
        self.next(self.join)

    @step
    def join(self, inputs):
        self._at("join")
        self.total = inputs.a.a_value + inputs.b.b_value
        self.next(self.prepare)

    @step
    def prepare(self):
        self._at("prepare")
        self.letters = ["x", "y"]
        self.next(self.outer, foreach="letters")

    @step
    def outer(self):
        self.letter = self.input
        self._at(f"outer:{self.letter}")
        self.numbers = [0, 1]
        self.next(self.inner, foreach="numbers")

    @step
    def inner(self):
        self.cell = f"{self.letter}{self.input}"
        self._at(f"inner:{self.cell}")
        self.next(self.inner_join)

    @step
    def inner_join(self, inputs):
        self.cells = sorted(i.cell for i in inputs)
        self._at(f"inner_join:{self.cells[0][0]}")
        self.next(self.outer_join)

    @step
    def outer_join(self, inputs):
        self.cells = sorted(c for i in inputs for c in i.cells)
        self._at("outer_join")
        self.next(self.end)

    @step
    def end(self):
        self._at("end")


if __name__ == "__main__":
    ResumeFlow()
