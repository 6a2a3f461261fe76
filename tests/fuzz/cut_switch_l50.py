"""Conditional switch: start picks fast_path or slow_path; both converge.

start -(mode)-> {fast: fast_path, slow: slow_path} -> report -> end.
Run with `--mode slow` to take the other branch.
"""
from metaflow import FlowSpec, Parameter, step


class SwitchFlow(FlowSpec):
    """Choose one of two paths at run time from a Parameter."""

    mode_param = Parameter("mode", help="fast or slow", default="fast")

    @step
    def start(self):
        """Copy the parameter into the switch condition artifact."""
        self.mode = self.mode_param
        self.payload = [1, 2, 3]
        self.next({"fast": self.fast_path, "slow": self.slow_path}, condition="mode")

    @step
    def fast_path(self):
        """Fast case: one aggregate."""
        self.result = sum(self.payload)
        self.taken = "fast"


if __name__ == "__main__":
    SwitchFlow()
