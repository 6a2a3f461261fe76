"""start -> (boom, nap) -> join -> end: `boom` always fails, `nap` sleeps for a minute."""

import subprocess
import time

from metaflow import FlowSpec, step


class TroubleFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.boom, self.nap)

    @step
    def boom(self):
        print("about to fail")
        raise ValueError("boom goes the step")
        self.next(self.join)

    @step
    def nap(self):
        subprocess.Popen(["sleep", "60"])  # a grandchild in the same process group
        print("napping", flush=True)
        time.sleep(60)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    TroubleFlow()
