"""Unwinding: compensation tasks run last registered first, each isolated, inline or
in compensation child workflows when there are many."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from .limits import COMPENSATION_ATTEMPTS, COMPENSATION_TIMEOUT, HEARTBEAT_TIMEOUT
from .payloads import CompensateRequest, Undo
from .progress import SUCCEEDED, Tracker
from .specs import RunInfo, Unwind


async def compensate_one(info: RunInfo, entry: Undo) -> str:
    """Run one compensation task; its outcome as one line (never raises)."""
    label = f"{entry.handler} undoing {entry.step}/{entry.task_id}"
    request = CompensateRequest(
        flow=info.flow,
        run_id=info.run_id,
        undo=entry,
        tags=info.tags,
    )
    try:
        await workflow.execute_activity(
            "metaflow_compensate",
            request,
            activity_id=f"_compensate_{entry.step}/{entry.task_id}",
            start_to_close_timeout=COMPENSATION_TIMEOUT,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=RetryPolicy(
                maximum_attempts=COMPENSATION_ATTEMPTS,
                initial_interval=timedelta(seconds=1),
            ),
            summary=f"compensation: {entry.handler} undoes {entry.step}/{entry.task_id}",
        )
    except ActivityError as err:
        workflow.logger.error("compensation %s failed: %s", label, cause_of(err))
        return f"{label}: failed: {cause_of(err).splitlines()[0]}"
    workflow.logger.info("compensation %s done", label)
    return f"{label}: done"


async def run_compensations(
    unwind: Unwind, tracker: Tracker | None = None
) -> list[str]:
    """Body of a compensation child workflow: undo ``unwind.undo`` last first
    (reporting to ``tracker``, the workflow's ``progress``)."""
    tracker = Tracker() if tracker is None else tracker
    tracker.begin(unwind.info.flow.name, unwind.info.run_id, "compensations")
    tracker.compensating(len(unwind.undo))
    outcomes = []
    for entry in reversed(unwind.undo):
        outcomes.append(await compensate_one(unwind.info, entry))
        tracker.compensated(outcomes[-1])
    tracker.ended(SUCCEEDED)
    return outcomes


def with_compensations(err: ApplicationError, undone: list[str]) -> ApplicationError:
    """A copy of ``err`` whose message ends with what the compensations did."""
    lines = "\n".join(f"  {line}" for line in undone)
    return ApplicationError(
        f"{err.message}\ncompensations (last registered first):\n{lines}",
        {"compensations": undone},
        type=err.type,
        non_retryable=True,
    )


def cause_of(err: BaseException) -> str:
    cause = getattr(err, "cause", None)
    return cause.message if isinstance(cause, ApplicationError) else str(cause or err)
