"""Values only Metaflow can compute: Config expressions and config_expr in
decorators, a deploy-time function default, os.getenv, a FlowMutator adding @retry,
an IncludeFile, and a @project name from a Config.

start -> greet -> flaky -> end
"""
import os

from metaflow import (
    Config,
    FlowMutator,
    FlowSpec,
    IncludeFile,
    Parameter,
    config_expr,
    current,
    environment,
    project,
    retry,
    step,
)

from settings import SHARED_ENV


def default_who(ctx):
    """A deploy-time default: Metaflow calls it when a run starts."""
    return "who-of-" + ctx.flow_name


class retry_everything(FlowMutator):
    """Add @retry(times=1) to every step without one (a mutator the generator
    cannot see through)."""

    def pre_mutate(self, mutable_flow):
        for _, s in mutable_flow.steps:
            s.add_decorator(
                "retry", deco_kwargs={"times": 1, "minutes_between_retries": 0}
            )


@retry_everything
@project(name=config_expr("cfg.project"))
class DeferredFlow(FlowSpec):
    cfg = Config("cfg", default="deferred.json")
    alpha = Parameter("alpha", default=cfg.alpha)
    who = Parameter("who", default=default_who)
    home = Parameter("home", default=os.getenv("DEFERRED_HOME", "nowhere"))
    notes = IncludeFile("notes", default="notes.txt")

    @retry(times=config_expr("cfg.retries"), minutes_between_retries=0)
    @step
    def start(self):
        self.start_attempt = current.retry_count
        if current.retry_count < 2:
            raise RuntimeError("flaky start, attempt %d" % current.retry_count)
        self.values = (self.alpha, self.who, self.home, self.notes)
        self.next(self.greet)

    @environment(vars={"GREETING": config_expr("cfg.greeting"), **SHARED_ENV})
    @step
    def greet(self):
        self.greeting = os.environ["GREETING"]
        self.shared = os.environ["SHARED"]
        self.next(self.flaky)

    @step
    def flaky(self):
        self.flaky_attempt = current.retry_count
        if current.retry_count < 1:
            raise RuntimeError("fails once; the mutator's @retry runs it again")
        self.next(self.end)

    @step
    def end(self):
        self.project = current.project_name


if __name__ == "__main__":
    DeferredFlow()
