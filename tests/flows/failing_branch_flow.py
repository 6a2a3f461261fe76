"""A split where one branch fails while its sibling is still running."""

import time

from metaflow import FlowSpec, Parameter, step


class FailingBranchFlow(FlowSpec):
    """Branch `boom` raises; branch `slow` would take long; join never runs."""

    fail = Parameter("fail", default=True)

    @step
    def start(self):
        self.next(self.boom, self.slow)

    @step
    def boom(self):
        """Fail (when asked)."""
        if self.fail:
            raise RuntimeError("boom failed on purpose")
        self.next(self.join)

    @step
    def slow(self):
        """Sleep long enough to be cancelled."""
        time.sleep(60 if self.fail else 0)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    FailingBranchFlow()
