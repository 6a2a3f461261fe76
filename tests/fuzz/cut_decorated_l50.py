"""A linear flow exercising built-in step/flow decorators and a Config.

start -> flaky -> env_step -> risky -> report -> end, under @project.
"""
import os

from metaflow import (Config, FlowSpec, card, catch, current, environment,
                      project, resources, retry, step, timeout)


@project(name="demo_project")
class DecoratedFlow(FlowSpec):
    """Retries, timeouts, environment, resources, catch, card, project, Config."""

    # Inline default; override with --config-value config '{"lr": 0.5, ...}'.
    config = Config("config", default_value={"lr": 0.1, "model": "tiny", "epochs": 2})

    @card
    @resources(cpu=1, memory=512)
    @step
    def start(self):
        """Read the Config and record the @project names."""
        self.lr = self.config.lr
        self.epochs = self.config["epochs"]
        self.project_name = current.project_name
        self.project_flow = current.project_flow_name
        self.next(self.flaky)

    @retry(times=2, minutes_between_retries=0)
    @timeout(seconds=60)
    @step
    def flaky(self):
        """Fail on the first two attempts, succeed on the third (retry)."""
        self.attempts_seen = current.retry_count + 1
        if current.retry_count < 2:
            raise RuntimeError("transient failure, attempt %d" % current.retry_count)
        self.next(self.env_step)


if __name__ == "__main__":
    DecoratedFlow()
