"""@schedule on a real dev server: the generated worker creates/updates/pauses the
flow's Temporal Schedule, and the server evaluating the generated spec starts
distinct Metaflow runs (checked through the Client API).

A real firing would take up to a day here, and the time-skipping test server has no
schedules, so the server's own backfill plays a window of the generated spec.
"""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from helpers import EXAMPLES, generate_into, import_generated
from temporalio.client import ScheduleBackfill, ScheduleOverlapPolicy
from temporalio.service import RPCError, RPCStatusCode
from worker_process import worker_process

from mf_temporal_codegen.runtime import RunResult
from mf_temporal_codegen.runtime.deployment import resolve
from mf_temporal_codegen.runtime.schedules import STALE_NOTE, sync_schedule

pytestmark = pytest.mark.e2e
PARIS = ZoneInfo("Europe/Paris")
SCHEDULED = EXAMPLES / "scheduled.py"


@pytest.fixture
def schedules(temporal_env):
    """Schedule ids to delete after the test (the server lives for the session)."""
    ids: list[str] = []
    yield ids

    async def delete():
        for sid in ids:
            try:
                await temporal_env.client.get_schedule_handle(sid).delete()
            except RPCError:
                pass

    temporal_env.run(delete())


def _describe(temporal_env, sid):
    return temporal_env.run(temporal_env.client.get_schedule_handle(sid).describe())


def _exists(temporal_env, sid) -> bool:
    try:
        _describe(temporal_env, sid)
    except RPCError as err:
        assert err.status == RPCStatusCode.NOT_FOUND
        return False
    return True


def test_worker_schedule_fires_twice_as_two_runs(
    tmp_path, temporal_env, mf_env, schedules
):
    from metaflow import Run, namespace

    generate_into(SCHEDULED, tmp_path / "out", tags=("nightly",))
    module = "out.scheduled_flow_worker"
    address = ("--address", temporal_env.address)
    schedules.append("ScheduledFlow")

    with worker_process(tmp_path, module, *address, "--no-schedule") as worker:
        worker.wait_for("worker for ScheduledFlow")
        assert not _exists(
            temporal_env, "ScheduledFlow"
        ), "--no-schedule must not create it"

    with worker_process(tmp_path, module, *address) as worker:
        out = worker.wait_for("worker for ScheduledFlow")
        assert "schedule ScheduledFlow: created" in out
        desc = _describe(temporal_env, "ScheduledFlow")
        action = desc.schedule.action
        assert (action.workflow, action.id, action.task_queue) == (
            "ScheduledFlow",
            "ScheduledFlow",
            "metaflow-ScheduledFlow",
        )
        assert desc.schedule.policy.overlap == ScheduleOverlapPolicy.ALLOW_ALL
        assert desc.schedule.spec.time_zone_name == "Europe/Paris"
        # The server's reading of the spec: 06:00 Paris time, Monday to Friday.
        upcoming = [t.astimezone(PARIS) for t in desc.info.next_action_times]
        assert len(upcoming) >= 5
        assert all(
            (t.hour, t.minute, t.second) == (6, 0, 0) and t.weekday() < 5
            for t in upcoming
        )

        # Saturday 00:00 to Tuesday 12:00 Paris: fires Monday and Tuesday at 06:00.
        window = ScheduleBackfill(
            start_at=datetime(2025, 3, 1, tzinfo=PARIS),
            end_at=datetime(2025, 3, 4, 12, tzinfo=PARIS),
            overlap=ScheduleOverlapPolicy.ALLOW_ALL,
        )
        handle = temporal_env.client.get_schedule_handle("ScheduledFlow")
        temporal_env.run(handle.backfill(window))
        actions = []
        deadline = time.monotonic() + 60
        while len(actions) < 2 and time.monotonic() < deadline:
            actions = _describe(temporal_env, "ScheduledFlow").info.recent_actions
            time.sleep(0.5)
        assert len(actions) == 2, actions
        started = [a.action for a in actions]
        # Paris is UTC+1 in early March: the firings are at 05:00Z.
        assert sorted(a.workflow_id for a in started) == [
            "ScheduledFlow-2025-03-03T05:00:00Z",
            "ScheduledFlow-2025-03-04T05:00:00Z",
        ]
        results = [
            temporal_env.run(
                temporal_env.client.get_workflow_handle(
                    a.workflow_id,
                    run_id=a.first_execution_run_id,
                    result_type=RunResult,
                ).result(),
                timeout=300,
            )
            for a in started
        ]
        out = worker.output()
    assert worker.proc.returncode == 0, out

    namespace(None)
    run_ids = {r.run_id for r in results}
    assert run_ids == {f"temporal-{a.first_execution_run_id}" for a in started}
    assert len(run_ids) == 2
    for result in results:
        run = Run(result.pathspec)
        assert run.successful
        assert run["report"].task["summary"].data == "eu: 7 days"
        assert "nightly" in run.user_tags

    # A second start with the same module changes nothing.
    with worker_process(tmp_path, module, *address) as worker:
        out = worker.wait_for("worker for ScheduledFlow")
    assert "schedule ScheduledFlow: unchanged" in out


def _regenerate(tmp_path, source: str):
    flow = tmp_path / "flows" / "scheduled.py"
    flow.parent.mkdir(exist_ok=True)
    flow.write_text(source)
    generate_into(flow, tmp_path / "out")
    module = import_generated(tmp_path / "out", "scheduled_flow_workflow")
    return module, resolve(module)


def test_schedule_updates_and_stale_pause(tmp_path, temporal_env, mf_env, schedules):
    original = SCHEDULED.read_text()
    schedules.append("ScheduledFlow")
    client = temporal_env.client
    handle = client.get_schedule_handle("ScheduledFlow")

    def sync(module, deployment, queue=None):
        return temporal_env.run(
            sync_schedule(client, module, deployment, queue or deployment.task_queue)
        )

    module, deployment = _regenerate(tmp_path, original)
    assert deployment.schedule_id == "ScheduledFlow"
    assert sync(module, deployment) == "created"
    assert sync(module, deployment) == "unchanged"
    assert sync(module, deployment, "other-queue") == "updated"
    assert (
        _describe(temporal_env, "ScheduledFlow").schedule.action.task_queue
        == "other-queue"
    )
    assert sync(module, deployment) == "updated"

    weekend = original.replace('cron="0 6 ? * MON-FRI *"', 'cron="30 7 ? * SAT,SUN *"')
    assert weekend != original
    module, deployment = _regenerate(tmp_path, weekend)
    assert sync(module, deployment) == "updated"
    desc = _describe(temporal_env, "ScheduledFlow")
    upcoming = [t.astimezone(PARIS) for t in desc.info.next_action_times]
    assert all(
        (t.hour, t.minute) == (7, 30) and t.weekday() >= 5 for t in upcoming
    ), upcoming
    assert sync(module, deployment) == "unchanged"

    # A schedule paused by a person stays paused through updates.
    temporal_env.run(handle.pause(note="maintenance"))
    module, deployment = _regenerate(tmp_path, original)
    assert sync(module, deployment) == "updated"
    state = _describe(temporal_env, "ScheduledFlow").schedule.state
    assert (state.paused, state.note) == (True, "maintenance")
    temporal_env.run(handle.unpause())

    # @schedule removed: the worker pauses the stale schedule, never creates one.
    unscheduled = original.replace(
        '@schedule(cron="0 6 ? * MON-FRI *", timezone="Europe/Paris")\n', ""
    )
    assert "@schedule" not in unscheduled
    module, deployment = _regenerate(tmp_path, unscheduled)
    assert not hasattr(module, "SCHEDULE")
    assert sync(module, deployment) == "paused"
    state = _describe(temporal_env, "ScheduledFlow").schedule.state
    assert (state.paused, state.note) == (True, STALE_NOTE)
    assert sync(module, deployment) == "unchanged"
    temporal_env.run(handle.delete())
    assert sync(module, deployment) == "none"
    assert not _exists(temporal_env, "ScheduledFlow")

    # Back with @schedule after a stale pause: recreated, or resumed and updated.
    module, deployment = _regenerate(tmp_path, original)
    assert sync(module, deployment) == "created"
    temporal_env.run(handle.pause(note=STALE_NOTE))
    assert sync(module, deployment) == "updated"
    assert not _describe(temporal_env, "ScheduledFlow").schedule.state.paused


def test_daily_false_schedules_nothing(tmp_path, temporal_env, mf_env, schedules):
    source = SCHEDULED.read_text().replace(
        '@schedule(cron="0 6 ? * MON-FRI *", timezone="Europe/Paris")',
        "@schedule(daily=False)",
    )
    module, deployment = _regenerate(tmp_path, source)
    assert not hasattr(module, "SCHEDULE")
    schedules.append(deployment.schedule_id)
    outcome = temporal_env.run(
        sync_schedule(temporal_env.client, module, deployment, deployment.task_queue)
    )
    assert outcome == "none"
    assert not _exists(temporal_env, deployment.schedule_id)


@pytest.mark.parametrize(
    "expression, timezone",
    [
        ("0 * * * ? *", None),
        ("0 0 * * ? *", None),
        ("0 0 ? * SUN *", None),
        ("0 6 ? * MON-FRI *", "Europe/Paris"),
        ("*/20 9-17 ? * SAT,SUN", "America/New_York"),
        ("15 3 1,15 JAN,JUL ? 2031-2032", None),
        ("5/20 2 */10 * ?", "Asia/Kolkata"),
    ],
)
def test_spec_fires_like_temporals_own_cron_parser(
    expression, timezone, temporal_env, schedules
):
    """The calendar built from a Metaflow expression fires at the times the server's
    own cron parser gives for the same expression (``?`` read as ``*``)."""
    from temporalio.client import Schedule, ScheduleActionStartWorkflow, ScheduleSpec

    from mf_temporal_codegen.runtime import Schedule as FlowSchedule
    from mf_temporal_codegen.runtime.schedules import schedule_spec

    ours = schedule_spec(FlowSchedule(expression, timezone))
    theirs = ScheduleSpec(
        cron_expressions=[expression.replace("?", "*")], time_zone_name=timezone
    )
    start = datetime(2030, 6, 1, tzinfo=ZoneInfo("UTC"))
    action = ScheduleActionStartWorkflow("Nothing", id="nothing", task_queue="nowhere")
    times = []
    for label, spec in (("ours", ours), ("theirs", theirs)):
        spec.start_at = start
        sid = f"parity-{label}-{abs(hash((expression, timezone)))}"
        schedules.append(sid)
        temporal_env.run(
            temporal_env.client.create_schedule(sid, Schedule(action=action, spec=spec))
        )
        times.append(_describe(temporal_env, sid).info.next_action_times)
    assert len(times[0]) >= 5
    assert times[0] == times[1]


def test_worker_exits_when_the_schedule_contradicts_metaflow(
    tmp_path, temporal_env, mf_env, schedules
):
    """A generated schedule Metaflow contradicts (here a hand-edited time zone) stops
    the worker with both values instead of serving a schedule the flow does not have."""
    generate_into(SCHEDULED, tmp_path / "out")
    module_file = tmp_path / "out" / "scheduled_flow_workflow.py"
    text = module_file.read_text()
    module_file.write_text(
        text.replace('timezone="Europe/Paris"', 'timezone="Nowhere/Atlantis"')
    )
    schedules.append("ScheduledFlow")
    with worker_process(
        tmp_path, "out.scheduled_flow_worker", "--address", temporal_env.address
    ) as worker:
        assert worker.proc.wait(60) == 2
    out = worker.output()
    assert "error: @schedule: the generated module has" in out, out
    assert "Nowhere/Atlantis" in out and "Europe/Paris" in out, out
    assert "worker for" not in out
    assert not _exists(temporal_env, "ScheduledFlow")
