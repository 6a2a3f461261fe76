"""What Temporal shows of a run, on the real dev server: search attributes on the run
and its child workflows, summaries of the run, its activities and children, current
details, the ``progress`` query while it runs, failures that read for the flow's
author, task metadata pointing back at the workflow, and ``--workflow-timeout``."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from e2e import load_module
from temporalio.api.operatorservice.v1 import ListSearchAttributesResponse
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import TimeoutError as TemporalTimeout
from temporalio.service import RPCError, RPCStatusCode

from mf_temporal_codegen.contract import SEARCH_ATTRIBUTES
from mf_temporal_codegen.runtime import Progress, RunOptions
from mf_temporal_codegen.runtime.visibility import (
    SearchAttributesMissing,
    ensure_search_attributes,
    register_commands,
)
from mf_temporal_codegen.runtime.worker import (
    describe_failure,
    running_worker,
    start_workflow,
)

FLOW = Path(__file__).parent / "flows" / "visibility_flow.py"
TASKS = "visibility_flow.py.* step fold "


def _run(temporal_env, module, params, body=None, after=None, **start):
    """Start a run with ``start_workflow`` (as trigger does) under a worker; ``body``
    (a coroutine function of the handle) runs while it does, ``after`` once it ended
    (queries need the worker); (handle, what body and after returned, outcome)."""
    client = temporal_env.client
    queue = f"q-{uuid.uuid4().hex[:10]}"

    async def go():
        async with running_worker(
            client, module, task_queue=queue, launcher="subprocess", fail_fast=True
        ):
            handle = await start_workflow(
                client, module, params, task_queue=queue, **start
            )
            seen = await body(handle) if body else None
            try:
                outcome = await handle.result()
            except WorkflowFailureError as exc:
                outcome = exc
            later = await after(handle) if after else None
            return handle, (seen, later), outcome

    return temporal_env.run(go(), timeout=300)


async def _until(probe, timeout: float = 60, every: float = 0.2):
    """The first truthy result of the coroutine function ``probe``."""
    deadline = time.monotonic() + timeout
    while True:
        found = await probe()
        if found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(every)


async def _listed(client, query: str, count: int) -> set[str]:
    """Workflow ids ``query`` lists, once it lists ``count`` (visibility lags)."""

    async def probe():
        ids = {wf.id async for wf in client.list_workflows(query)}
        return ids if len(ids) >= count else None

    return await _until(probe, timeout=20) or {
        wf.id async for wf in client.list_workflows(query)
    }


async def _summaries(client, workflow_id: str) -> dict[str, list[str]]:
    """Event kind -> the summaries of its events in ``workflow_id``'s history."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    found: dict[str, list[str]] = {}
    for event in history.events:
        if event.user_metadata.HasField("summary"):
            kind = event.WhichOneof("attributes")
            found.setdefault(kind, []).append(
                json.loads(event.user_metadata.summary.data)
            )
    return found


def _pids(pattern: str) -> list[str]:
    done = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return done.stdout.split()


def _task(pathspec: str):
    from metaflow import Task, namespace

    namespace(None)
    return Task(pathspec)


def test_a_run_and_its_children_are_visible_in_temporal(tmp_path, temporal_env, mf_env):
    client = temporal_env.client
    module = load_module(FLOW, tmp_path / "out", tags=("nightly",))
    # 3 splits in chunk child workflows of 2 tasks: two children
    options = RunOptions(inline_activity_limit=1, chunk_activity_limit=2)
    params = module.PARAMS(width=3, sleep=4.0)

    async def while_running(handle):
        async def parent():
            found = await handle.query(module.WORKFLOW.progress)
            return found if len(found.children) == 2 else None

        during = await _until(parent)
        assert during is not None, "the progress query answers while the run runs"
        child = client.get_workflow_handle(during.children[0])

        async def child_running():
            found: Progress = await child.query("progress", result_type=Progress)
            running = [t for t in found.tasks if t.state == "running"]
            return found if len(running) == 2 else None

        return during, await _until(child_running)

    async def when_done(handle):
        progress = await handle.query(module.WORKFLOW.progress)
        return progress, await handle.query("__temporal_workflow_metadata")

    handle, ((during, child_during), (done, metadata)), result = _run(
        temporal_env,
        module,
        params,
        while_running,
        when_done,
        options=options,
        tags=["extra"],
    )
    assert not isinstance(result, BaseException), result
    run_id = result.run_id
    pathspec = f"VisibilityFlow/{run_id}"

    # progress while it ran: the parent's steps and its two chunk children, and in
    # a chunk, its two fold tasks running
    assert during.pathspec == pathspec and during.state == "running"
    assert [s.step for s in during.steps] == ["_parameters", "start"]
    assert all(s.succeeded == 1 for s in during.steps)
    assert [f.parent for f in during.foreach] == ["start/start"]
    assert during.foreach[0].total == 3
    assert sorted(during.children) == [
        f"{handle.id}/start/start/0-2",
        f"{handle.id}/start/start/2-3",
    ]
    assert child_during is not None
    assert child_during.pathspec == pathspec
    assert sorted(
        (t.step, t.task_id, t.state, t.attempt) for t in child_during.tasks
    ) == [("fold", "fold-0", "running", 0), ("fold", "fold-1", "running", 0)]
    assert done.state == "succeeded" and not done.children
    assert {s.step: s.succeeded for s in done.steps} == {
        "_parameters": 1,
        "start": 1,
        "join": 1,
        "end": 1,
    }

    # search attributes: the run and both children, by flow and Metaflow run id
    children = set(during.children)
    query = f"MetaflowFlow = 'VisibilityFlow' AND MetaflowRunId = '{run_id}'"
    assert temporal_env.run(_listed(client, query, 3)) == {handle.id} | children
    query = (
        "MetaflowTags = 'nightly' AND MetaflowTags = 'extra' AND "
        "MetaflowUser = 'tester' AND MetaflowDeployment = 'VisibilityFlow'"
    )
    assert handle.id in temporal_env.run(_listed(client, query, 1))
    child = client.get_workflow_handle(sorted(children)[0])
    attributes = {
        p.key.name: p.value
        for p in temporal_env.run(child.describe()).typed_search_attributes
        if p.key.name in SEARCH_ATTRIBUTES
    }
    assert attributes == {
        "MetaflowFlow": "VisibilityFlow",
        "MetaflowDeployment": "VisibilityFlow",
        "MetaflowRunId": run_id,
        "MetaflowUser": "tester",
        "MetaflowTags": ["extra", "nightly"],
    }

    # summaries and details of the run, current details with the pathspec
    described = temporal_env.run(handle.describe())
    assert temporal_env.run(described.static_summary()) == (
        "VisibilityFlow: fail=-1, sleep=4.0, width=3"
    )
    details = temporal_env.run(described.static_details())
    assert "**Parameters**" in details and "- width = 3" in details
    assert "**Tags** extra, nightly" in details and "**Started by** tester" in details
    assert f"`{pathspec}`" in metadata.current_details
    assert "**Tasks done** 4" in metadata.current_details

    # every activity and child workflow says what it is
    main = temporal_env.run(_summaries(client, handle.id))
    assert main["activity_task_scheduled_event_attributes"] == [
        f"init: the parameters of {pathspec} (_parameters/t-params)",
        "start/start (attempt 0)",
        "join/join (attempt 0)",
        "end/end (attempt 0)",
    ]
    assert main["start_child_workflow_execution_initiated_event_attributes"] == [
        "VisibilityFlow: splits 0-1 of 3 of the foreach of start/start",
        "VisibilityFlow: splits 2-2 of 3 of the foreach of start/start",
    ]
    first_chunk = temporal_env.run(_summaries(client, f"{handle.id}/start/start/0-2"))
    assert first_chunk["activity_task_scheduled_event_attributes"] == [
        "fold/fold-0 (attempt 0)",
        "fold/fold-1 (attempt 0)",
    ]
    chunk = temporal_env.run(client.get_workflow_handle(sorted(children)[0]).describe())
    assert "splits 0-1 of 3" in temporal_env.run(chunk.static_summary())

    # Metaflow's task metadata points back at the workflow that ran the task
    start = _task(f"{pathspec}/start/start").metadata_dict
    assert start["temporal-workflow-id"] == handle.id
    assert start["temporal-workflow-run-id"] == run_id.removeprefix("temporal-")
    assert start["temporal-namespace"] == "default"
    assert start["temporal-activity-id"] == "start/start"
    fold = _task(f"{pathspec}/fold/fold-2").metadata_dict
    assert fold["temporal-workflow-id"] == f"{handle.id}/start/start/2-3"
    assert fold["temporal-workflow-type"] == "VisibilityFlow.foreach_fold"


def test_a_failed_step_reads_for_the_flow_author(tmp_path, temporal_env, mf_env):
    module = load_module(FLOW, tmp_path / "out")
    handle, (_, progress), error = _run(
        temporal_env,
        module,
        module.PARAMS(width=4, fail=3),
        after=lambda handle: handle.query(module.WORKFLOW.progress),
    )
    assert isinstance(error, WorkflowFailureError)
    for text in (error.cause.message, describe_failure(error.cause)):
        lines = text.splitlines()
        # the user's exception first, then where, then the traceback once
        assert lines[0] == "ValueError: bad fold 3", text
        assert lines[1] == (
            f"step fold failed: Metaflow task VisibilityFlow/temporal-"
            f"{handle.result_run_id}/fold/fold-3 (attempt 0) failed with exit code 1"
        )
        assert lines[2] == "Traceback (most recent call last):"
        assert text.count("Traceback (most recent call last):") == 1
        assert text.count("ValueError: bad fold 3") == 2  # first line, last line
        assert lines[-1] == "ValueError: bad fold 3"
        frames = [line for line in lines if line.startswith("  File ")]
        assert all("visibility_flow.py" in line for line in frames), frames
        assert [line.rsplit(" in ", 1)[1] for line in frames] == ["fold", "check"]
        assert "Attempt" not in text  # one numbering: Metaflow's
    assert progress.state == "failed" and progress.error == "ValueError: bad fold 3"
    failed = [t for t in progress.tasks if t.state == "failed"]
    assert [(t.task_id, t.attempt, t.error) for t in failed] == [
        ("fold-3", 0, "ValueError: bad fold 3")
    ]


def test_workflow_timeout_fails_the_run_and_kills_its_tasks(
    tmp_path, temporal_env, mf_env
):
    module = load_module(FLOW, tmp_path / "out", workflow_timeout=5)
    assert module.WORKFLOW_TIMEOUT == 5
    started = time.monotonic()

    async def wait_for_the_task(handle):
        async def running():
            return _pids(TASKS)

        return await _until(running)

    handle, (pids, _), error = _run(
        temporal_env, module, module.PARAMS(width=1, sleep=120.0), wait_for_the_task
    )
    ended = time.monotonic()
    assert pids, "the task ran"
    assert isinstance(error, WorkflowFailureError)
    assert isinstance(error.cause, TemporalTimeout)
    assert ended - started < 30
    message = describe_failure(error.cause, timedelta(seconds=5))
    assert message.startswith("the run took longer than its workflow timeout of 5 s")
    described = temporal_env.run(handle.describe())
    assert described.status == WorkflowExecutionStatus.TIMED_OUT
    assert "**Workflow timeout** 5 s" in temporal_env.run(described.static_details())
    deadline = time.monotonic() + 10
    while _pids(TASKS) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _pids(TASKS), "the task's process is killed"
    pathspec = f"VisibilityFlow/temporal-{handle.result_run_id}/fold/fold-0"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        metadata = _task(pathspec).metadata_dict
        if metadata.get("attempt_ok") == "False":
            break
        time.sleep(0.2)
    assert metadata.get("attempt_ok") == "False", metadata
    assert not _task(pathspec).successful


def test_workflow_timeout_is_a_generation_option(tmp_path):
    from helpers import codegen

    done = codegen(FLOW, "-o", tmp_path, "--workflow-timeout", "5")
    assert done.returncode == 0, done.stderr
    source = (tmp_path / "visibility_flow_workflow.py").read_text()
    assert "\nWORKFLOW_TIMEOUT = 5\n" in source
    assert "--workflow-timeout=5" in source  # in the regenerate command
    refused = codegen(FLOW, "-o", tmp_path, "--workflow-timeout", "0")
    assert refused.returncode == 2
    assert "--workflow-timeout must be at least 1" in refused.stderr


def test_search_attributes_are_registered_once(temporal_env):
    assert (
        temporal_env.run(ensure_search_attributes(temporal_env.client, "default")) == []
    ), "the dev server starts with them"


class _Refusing:
    """A client whose server lists no search attributes and refuses to add them."""

    namespace = "prod"

    class operator_service:  # noqa: N801 - mimics the client's attribute
        @staticmethod
        async def list_search_attributes(request):
            return ListSearchAttributesResponse()

        @staticmethod
        async def add_search_attributes(request):
            raise RPCError("permission denied", RPCStatusCode.PERMISSION_DENIED, b"")


def test_a_server_that_refuses_gets_the_command_in_one_line():
    with pytest.raises(SearchAttributesMissing) as refused:
        asyncio.run(ensure_search_attributes(_Refusing(), "prod"))  # type: ignore[arg-type]
    message = str(refused.value)
    assert "\n" not in message
    assert message.endswith(f"`{register_commands('prod')}`")
    assert register_commands("prod") == (
        "temporal operator search-attribute create --namespace prod "
        "--name MetaflowFlow --name MetaflowDeployment --name MetaflowRunId "
        "--name MetaflowUser --name MetaflowProject --name MetaflowBranch "
        "--type Keyword && temporal operator search-attribute create --namespace "
        "prod --name MetaflowTags --type KeywordList"
    )
    assert "permission denied" in message


def test_compensations_show_their_progress(tmp_path, temporal_env, mf_env):
    module = load_module(
        Path(__file__).parent / "flows" / "saga_linear_flow.py", tmp_path / "out"
    )
    params = module.PARAMS(ledger=str(tmp_path / "ledger"), fail="end", fail_undo="a")

    async def when_done(handle):
        progress = await handle.query(module.WORKFLOW.progress)
        return progress, await handle.query("__temporal_workflow_metadata")

    handle, (_, (progress, metadata)), error = _run(
        temporal_env, module, params, after=when_done
    )
    assert isinstance(error, WorkflowFailureError)
    assert progress.state == "failed"
    assert [line.split(":")[0] for line in progress.compensations] == [
        "undo_b undoing b/b",
        "undo_a undoing a/a",
        "undo_start undoing start/start",
    ]
    details = metadata.current_details
    assert "**Compensations** 3 of 3 done" in details
    assert "- undo_a undoing a/a: failed: RuntimeError: undo_a failed on purpose" in (
        details
    )
    summaries = temporal_env.run(_summaries(temporal_env.client, handle.id))
    assert summaries["activity_task_scheduled_event_attributes"][-3:] == [
        "compensation: undo_b undoes b/b",
        "compensation: undo_a undoes a/a",
        "compensation: undo_start undoes start/start",
    ]
    run_id = f"temporal-{handle.result_run_id}"
    undo = _task(f"SagaLinearFlow/{run_id}/_compensate_b/b").metadata_dict
    assert undo["temporal-workflow-id"] == handle.id


def test_scheduled_runs_start_visible_and_with_the_timeout(tmp_path, temporal_env):
    from helpers import EXAMPLES

    from mf_temporal_codegen.runtime.deployment import Deployment
    from mf_temporal_codegen.runtime.schedules import desired, sync_schedule

    module = load_module(
        EXAMPLES / "scheduled.py", tmp_path / "out", workflow_timeout=60
    )
    deployment = Deployment(f"vis-{uuid.uuid4().hex[:8]}", "q-vis", project=None)
    action = desired(module, deployment, "q-vis").action
    attributes = {p.key.name: p.value for p in action.typed_search_attributes}
    assert attributes["MetaflowFlow"] == "ScheduledFlow"
    assert attributes["MetaflowDeployment"] == deployment.name
    assert action.execution_timeout == timedelta(seconds=60)
    assert action.static_summary.startswith("ScheduledFlow")
    client = temporal_env.client

    def sync(module):
        return temporal_env.run(sync_schedule(client, module, deployment, "q-vis"))

    try:
        assert sync(module) == "created"
        assert sync(module) == "unchanged"
        longer = load_module(
            EXAMPLES / "scheduled.py", tmp_path / "out2", workflow_timeout=120
        )
        assert sync(longer) == "updated"
        described = temporal_env.run(
            client.get_schedule_handle(deployment.name).describe()
        )
        assert described.schedule.action.execution_timeout == timedelta(seconds=120)
        assert sync(longer) == "unchanged"
    finally:
        temporal_env.run(client.get_schedule_handle(deployment.name).delete())
