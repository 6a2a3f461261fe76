"""start -> train -> end; each step records which worker pool ran it (the task's
WORKER_POOL environment variable), for tests/test_routing.py (train is routed)."""

import os

from metaflow import FlowSpec, step


class RoutingFlow(FlowSpec):
    @step
    def start(self):
        self.pool = os.environ.get("WORKER_POOL")
        self.next(self.train)

    @step
    def train(self):
        self.pool = os.environ.get("WORKER_POOL")
        self.next(self.end)

    @step
    def end(self):
        self.pool = os.environ.get("WORKER_POOL")


if __name__ == "__main__":
    RoutingFlow()
