"""``@compensate("step")``: declare a flow method that undoes a step if the run fails.

Import it in the flow file (it has no dependencies, so ``python flow.py run`` works
with it too; Metaflow ignores methods that are not steps)::

    from mf_temporal_codegen import compensate

    class PaymentFlow(FlowSpec):
        @step
        def charge(self):
            self.charge_id = payments.charge(...)
            self.next(self.ship)

        @compensate("charge")
        def refund(self):
            payments.refund(self.charge_id)

On Temporal, a compensation is registered just before its step's task starts. When
the run fails or is cancelled, the registered compensations run last first, each as
a Metaflow task of the hidden step ``_compensate_<step>`` with the same task id as the
step's task. ``self`` reads the artifacts of that task (of the task it started from
when it never stored any); ``current.compensation`` says which task is undone and how
it ended. Under ``python flow.py run`` compensations never run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., object])

# Prefix of the hidden Metaflow step that records the compensations of a step.
STEP_PREFIX = "_compensate_"


def compensate(step: str) -> Callable[[F], F]:
    """Mark a method as the compensation of the step named ``step``."""

    def mark(func: F) -> F:
        func.compensates = step  # type: ignore[attr-defined]
        return func

    return mark


@dataclass(frozen=True)
class CompensationContext:
    """``current.compensation`` while a compensation runs."""

    # the step and task being undone, and its pathspec ``Flow/run/step/task``
    step: str
    task_id: str
    pathspec: str
    # "succeeded", "failed" or "unfinished" (killed or cancelled before it stored
    # anything; ``self`` then reads the task it started from)
    status: str
