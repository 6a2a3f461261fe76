"""Project decorators: retries everywhere (a FlowMutator) and a provenance stamp
(a user step decorator)."""

from metaflow import FlowMutator, user_step_decorator


class retry_all_steps(FlowMutator):
    """Give every step without its own @retry the project's retry budget
    (``retries`` in the project config), retried at once."""

    def mutate(self, mutable_flow):
        configs = dict(mutable_flow.configs)
        times = configs["project"]["retries"]
        for _name, mutable_step in mutable_flow.steps:
            mutable_step.add_decorator(
                "retry",
                deco_kwargs={"times": times, "minutes_between_retries": 0},
                duplicates=mutable_step.IGNORE,
            )


@user_step_decorator
def stamped(step_name, flow, inputs):
    """Record which step of which flow produced the task's artifacts."""
    yield
    flow.stamp = f"{type(flow).__name__}.{step_name}"
