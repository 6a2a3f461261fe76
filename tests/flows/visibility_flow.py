"""A foreach whose splits can sleep and one of them fail: for tests/test_visibility.py."""

import time

from metaflow import FlowSpec, Parameter, step


class VisibilityFlow(FlowSpec):
    """start fans out over `width` folds; fold `fail` raises; each fold sleeps."""

    width = Parameter("width", default=3)
    sleep = Parameter("sleep", default=0.0)
    fail = Parameter("fail", default=-1)

    @step
    def start(self):
        self.folds = list(range(self.width))
        self.next(self.fold, foreach="folds")

    @step
    def fold(self):
        """Sleep, then fail if asked to."""
        time.sleep(self.sleep)
        if self.input == self.fail:
            check(self.input)
        self.score = self.input * 10
        self.next(self.join)

    @step
    def join(self, inputs):
        self.scores = [i.score for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass


def check(fold):
    raise ValueError(f"bad fold {fold}")


if __name__ == "__main__":
    VisibilityFlow()
