"""The upstream of DownstreamFlow (@trigger_on_finish): it succeeds, or fails when
asked to (tests/test_triggers.py)."""

from metaflow import FlowSpec, Parameter, project, step


@project(name="trig")
class UpstreamFlow(FlowSpec):
    fail = Parameter("fail", default=False, help="fail in the start step")

    @step
    def start(self):
        if self.fail:
            raise ValueError("asked to fail")
        self.value = 42
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    UpstreamFlow()
