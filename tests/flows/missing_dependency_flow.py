"""A flow whose tasks import a package the worker's environment lacks (the worker
itself loads the flow fine: the import happens only in task processes, as a
dependency missing on one host of a pool would)."""
import sys

from metaflow import FlowSpec, step

if "step" in sys.argv:
    import a_package_this_worker_lacks  # noqa: F401


class MissingDependencyFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    MissingDependencyFlow()
