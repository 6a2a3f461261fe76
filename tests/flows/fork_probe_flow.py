"""Probe flow for the fork-server launcher tests: reports what the task process sees."""

import os
import sys
import time

from metaflow import FlowSpec, Parameter, step


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
        self.main_file = sys.modules["__main__"].__file__
        self.pid = os.getpid()
        self.session_leader = os.getsid(0) == os.getpid()
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
