"""Started from the project root (tests/flows/relative_paths) as
``PYTHONPATH=lib python pipelines/relative_flow.py run``: it reads ``data/input.txt``
relative to where it was started and imports ``relative_helper`` from ``lib``."""

import os
import sys

import relative_helper
from metaflow import FlowSpec, current, step


class RelativePathsFlow(FlowSpec):
    @step
    def start(self):
        with open("data/input.txt") as f:
            self.lines = f.read().split()
        self.shouted = relative_helper.shout(self.lines)
        print("read", len(self.lines), "words")
        self.helper_file = os.path.relpath(relative_helper.__file__)
        self.argv0 = sys.argv[0]
        self.flow_dir_first = sys.path[0] == os.path.dirname(os.path.abspath(__file__))
        self.next(self.a, self.b)

    @step
    def a(self):
        self.task = current.task_id
        self.next(self.join)

    @step
    def b(self):
        self.task = current.task_id
        self.next(self.join)

    @step
    def join(self, inputs):
        self.tasks_differ = inputs.a.task != inputs.b.task
        self.merge_artifacts(inputs, exclude=["task"])
        self.next(self.end)

    @step
    def end(self):
        self.exists = os.path.exists("data/input.txt")
        print("still there:", self.exists, file=sys.stderr)


if __name__ == "__main__":
    RelativePathsFlow()
