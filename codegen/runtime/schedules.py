"""Keep a flow's Temporal Schedule in line with its ``@schedule``, on worker start.

- With ``@schedule``: create the schedule if missing, else update it when its spec,
  action or policy differ (idempotent: a restart with the same module changes nothing).
  A schedule a person paused stays paused.
- Without ``@schedule`` (removed, or every preset off): never create one; an existing
  schedule of the deployment is paused with a note, as Argo suspends the CronWorkflow
  of a flow deployed without ``@schedule``. Delete it with
  ``temporal schedule delete --schedule-id <id>``.

Policies follow Metaflow's schedulers: overlapping runs all run (Argo's CronWorkflow
``concurrencyPolicy`` default ``Allow``; EventBridge never skips), and a firing missed
while the server was down is still started within 59 minutes (Argo's
``startingDeadlineSeconds``). Each firing starts its run as ``trigger`` does: with the
Metaflow search attributes, a summary and details, and the module's
``WORKFLOW_TIMEOUT`` (``visibility.start_options``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from types import ModuleType
from typing import Any

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from .. import cron
from .deployment import Deployment
from .deployment import Schedule as FlowSchedule
from .visibility import start_options

OVERLAP = ScheduleOverlapPolicy.ALLOW_ALL
CATCHUP_WINDOW = timedelta(seconds=3540)
STALE_NOTE = "paused by mf-temporal-codegen: the flow has no @schedule any more"

CREATED, UPDATED, UNCHANGED, PAUSED, NONE = (
    "created",
    "updated",
    "unchanged",
    "paused",
    "none",
)


def schedule_spec(schedule: FlowSchedule) -> ScheduleSpec:
    """The Temporal spec of a Metaflow cron expression (one calendar, second 0)."""
    if schedule.cron is None:
        raise ValueError("the @schedule has no cron expression (Metaflow evaluates it)")
    cal = cron.parse(schedule.cron)

    def ranges(values: Sequence[cron.Range]) -> tuple[ScheduleRange, ...]:
        return tuple(ScheduleRange(*r) for r in values)

    calendar = ScheduleCalendarSpec(
        second=(ScheduleRange(0, 0, 1),),
        minute=ranges(cal.minute),
        hour=ranges(cal.hour),
        day_of_month=ranges(cal.day_of_month),
        month=ranges(cal.month),
        year=ranges(cal.year),
        day_of_week=ranges(cal.day_of_week),
        comment=f"Metaflow @schedule cron {schedule.cron!r}",
    )
    return ScheduleSpec(calendars=[calendar], time_zone_name=schedule.timezone)


def desired(
    module: ModuleType,
    deployment: Deployment,
    task_queue: str,
    schedule: FlowSchedule | None = None,
) -> Schedule:
    """The schedule of ``module`` (or ``schedule``, the one Metaflow evaluated for it):
    start the flow with default parameters."""
    params = module.PARAMS()
    shown = start_options(module, params, deployment, task_queue, tags=module.FLOW.tags)
    action = ScheduleActionStartWorkflow(
        module.WORKFLOW.run,
        args=[params, None],
        # Temporal appends the firing time: each scheduled run has its own id.
        id=deployment.name,
        task_queue=task_queue,
        typed_search_attributes=shown["search_attributes"],
        static_summary=shown["static_summary"],
        static_details=shown["static_details"],
        execution_timeout=shown["execution_timeout"],
    )
    return Schedule(
        action=action,
        spec=schedule_spec(schedule or module.SCHEDULE),
        policy=SchedulePolicy(overlap=OVERLAP, catchup_window=CATCHUP_WINDOW),
    )


async def sync_schedule(
    client: Client,
    module: ModuleType,
    deployment: Deployment,
    task_queue: str,
    evaluated: FlowSchedule | None = None,
) -> str:
    """Create, update or pause the deployment's schedule; what was done.
    ``evaluated``: the schedule Metaflow evaluated for a module that leaves its
    ``@schedule`` to Metaflow (``SCHEDULE.cron`` None)."""
    wanted = getattr(module, "SCHEDULE", None)
    if wanted is not None and wanted.cron is None:
        wanted = evaluated
    if wanted is None:
        return await _pause_stale(client, deployment)
    schedule = desired(module, deployment, task_queue, wanted)
    try:
        await client.create_schedule(deployment.schedule_id, schedule)
        return CREATED
    except ScheduleAlreadyRunningError:
        pass
    assert isinstance(schedule.action, ScheduleActionStartWorkflow)  # from desired()
    args = await client.data_converter.encode(schedule.action.args)
    shown = await client.data_converter.encode(
        [schedule.action.static_summary, schedule.action.static_details]
    )
    outcome = UNCHANGED

    def update(current: ScheduleUpdateInput) -> ScheduleUpdate | None:
        nonlocal outcome
        now = current.description.schedule
        state = now.state
        if state.paused and state.note == STALE_NOTE:
            state = ScheduleState()
        if not differences(now, schedule, args, shown) and state == now.state:
            return None
        outcome = UPDATED
        return ScheduleUpdate(
            Schedule(
                action=schedule.action,
                spec=schedule.spec,
                policy=schedule.policy,
                state=state,
            )
        )

    await client.get_schedule_handle(deployment.schedule_id).update(update)
    return outcome


def differences(
    current: Schedule,
    wanted: Schedule,
    wanted_args: Sequence[Any],
    wanted_shown: Sequence[Any] | None = None,
) -> list[str]:
    """What differs between a described schedule and the wanted one (``wanted_shown``:
    the wanted action's summary and details as payloads)."""
    found = []
    if (
        _calendars(current.spec) != _calendars(wanted.spec)
        or (current.spec.time_zone_name or None) != wanted.spec.time_zone_name
    ):
        found.append("spec")
    a, b = current.action, wanted.action
    if not isinstance(b, ScheduleActionStartWorkflow):  # the only kind desired() makes
        raise TypeError(f"the wanted schedule does not start a workflow: {b!r}")
    if not isinstance(a, ScheduleActionStartWorkflow) or (
        a.workflow,
        a.id,
        a.task_queue,
        list(a.args),
    ) != (b.workflow, b.id, b.task_queue, list(wanted_args)):
        found.append("action")
    elif (
        _attributes(a.typed_search_attributes),
        a.execution_timeout,
    ) != (_attributes(b.typed_search_attributes), b.execution_timeout) or (
        wanted_shown is not None
        and [a.static_summary, a.static_details] != list(wanted_shown)
    ):
        found.append("visibility")
    if (current.policy.overlap, current.policy.catchup_window) != (
        wanted.policy.overlap,
        wanted.policy.catchup_window,
    ):
        found.append("policy")
    return found


def _attributes(attributes: TypedSearchAttributes) -> list[tuple[str, Any]]:
    """Search attributes as comparable (name, value) pairs."""
    return sorted(
        (pair.key.name, tuple(v) if isinstance(v := pair.value, list) else v)
        for pair in attributes
    )


def _calendars(spec: ScheduleSpec) -> list[tuple]:
    """Calendars in the form the server returns them (ranges with end and step set)."""

    def norm(ranges: Sequence[ScheduleRange]) -> tuple:
        return tuple((r.start, max(r.end, r.start), r.step or 1) for r in ranges)

    return [
        (
            norm(c.second),
            norm(c.minute),
            norm(c.hour),
            norm(c.day_of_month),
            norm(c.month),
            norm(c.year),
            norm(c.day_of_week),
            c.comment,
        )
        for c in spec.calendars
    ]


async def _pause_stale(client: Client, deployment: Deployment) -> str:
    handle = client.get_schedule_handle(deployment.schedule_id)
    try:
        described = await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return NONE
        raise
    if described.schedule.state.paused:
        return UNCHANGED
    await handle.pause(note=STALE_NOTE)
    return PAUSED
