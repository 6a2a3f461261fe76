"""Code-package test flow: every task records the version of the local module
`shapes` it imported, the simulated host that ran it and its working directory.
With a `gate` path, each `work` task says it started (`<gate>.<item>`) and waits for
the gate file to exist: a run stays in flight while another version is deployed."""
import os
import time

from metaflow import FlowSpec, Parameter, step

from shapes import VERSION, area


class PackageFlow(FlowSpec):
    gate = Parameter("gate", default="", help="wait in `work` for this file")

    def record(self):
        self.version = VERSION
        self.host = os.environ.get("SIMULATED_HOST", "native")
        self.cwd = os.getcwd()

    @step
    def start(self):
        self.record()
        self.items = [1, 2, 3]
        self.next(self.work, foreach="items")

    @step
    def work(self):
        self.record()
        if self.gate:
            open(f"{self.gate}.{self.input}", "w").close()
            while not os.path.exists(self.gate):
                time.sleep(0.2)
        self.area = area(self.input)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.record()
        self.areas = sorted(i.area for i in inputs)
        self.seen = sorted({i.version for i in inputs})
        self.next(self.end)

    @step
    def end(self):
        self.record()


if __name__ == "__main__":
    PackageFlow()
