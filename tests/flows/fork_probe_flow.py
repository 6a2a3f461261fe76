"""Probe flow for the fork-server launcher tests: reports what the task process sees."""

import os
import random
import sys
import time
import uuid

import fork_probe_helper
from metaflow import FlowSpec, Parameter, current, step

try:
    import numpy
except ImportError:
    numpy = None


class ForkProbeFlow(FlowSpec):
    """start records its process context; `mode` makes it fail, exit or sleep."""

    mode = Parameter("mode", default="ok")

    @step
    def start(self):
        """Record env, cwd, argv and sys.path as artifacts, then act on `mode`."""
        self.probe_env = os.environ.get("FORK_PROBE_VALUE")
        self.cwd = os.getcwd()
        self.argv = list(sys.argv)
        self.path0 = sys.path[0]
        self.path = list(sys.path)
        self.main_file = sys.modules["__main__"].__file__
        self.pid = os.getpid()
        self.session_leader = os.getsid(0) == os.getpid()
        # what must be fresh in every task: random state, a local module's state,
        # and what an earlier task changed in its process (env, cwd, sys.path)
        self.random_value = random.random()
        self.uuid = str(uuid.uuid4())
        self.numpy_value = None if numpy is None else float(numpy.random.random())
        self.drawn_at_import = fork_probe_helper.DRAWN_AT_IMPORT
        self.helper_calls = fork_probe_helper.bump()
        self.helper_file = fork_probe_helper.__file__
        self.leaked = (os.environ.get("FORK_PROBE_LEAK"), "fork_probe_leak" in sys.path)
        os.environ["FORK_PROBE_LEAK"] = current.task_id
        sys.path.append("fork_probe_leak")
        random.seed(0)
        os.chdir(os.path.dirname(os.path.realpath(__file__)) + "/..")
        print("probe pid", self.pid, flush=True)
        print("probe stdout line 1")
        print("probe stdout line 2")
        print("probe stderr line", file=sys.stderr)
        if self.mode == "fail":
            raise ValueError("probe failure")
        if self.mode == "exit3":
            sys.exit(3)
        if self.mode == "sleep":
            time.sleep(60)
        self.next(self.end)

    @step
    def end(self):
        """Nothing to do."""


if __name__ == "__main__":
    ForkProbeFlow()
