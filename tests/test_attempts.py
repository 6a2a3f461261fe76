"""Attempts of a Metaflow task: user-code failures spend @retry, lost ones do not.

The workflow side runs on the real dev server with scripted stand-ins for the step
activity; the activity side (settling a lost attempt through its lease) runs the real
Metaflow tasks through Temporal's ActivityEnvironment.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from helpers import import_generated, generate_into
from metaflow import Task, namespace
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from mf_temporal_codegen.contract import MAX_ATTEMPTS, TASK_FAILED, TASK_NOT_RECORDED
from mf_temporal_codegen.runtime import scope
from mf_temporal_codegen.runtime.activities import MetaflowActivities
from mf_temporal_codegen.runtime.attempts import (
    ENDED,
    LEASE_TTL_SECONDS,
    RUNNING,
    Lease,
)
from mf_temporal_codegen.runtime.payloads import (
    FlowRef,
    InitRequest,
    StepRequest,
    TaskResult,
)

FLOWS = Path(__file__).parent / "flows"


class Script:
    """A stand-in ``metaflow_step``: per step, the outcome of each successive try
    (``lost``: the try dies like a lost worker; ``fail``: user code fails; ``ok``)."""

    def __init__(self, **outcomes: list[str]):
        self.outcomes = {step: list(seq) for step, seq in outcomes.items()}
        self.calls: list[tuple[str, int, int, int]] = []

    @activity.defn(name="metaflow_init")
    async def init(self, req: InitRequest) -> str:
        return f"{req.run_id}/_parameters/{req.task_id}"

    @activity.defn(name="metaflow_step")
    async def step(self, req: StepRequest) -> TaskResult:
        tries = activity.info().attempt - 1
        attempt = req.first_attempt + tries
        self.calls.append((req.step, req.first_attempt, req.lost_attempts, attempt))
        outcome = (
            self.outcomes.get(req.step, []).pop(0)
            if self.outcomes.get(req.step)
            else "ok"
        )
        if outcome == "lost":
            raise RuntimeError("worker lost")
        if outcome == "fail":
            raise ApplicationError(
                "user code failed",
                {"attempt": attempt},
                type=TASK_FAILED,
                non_retryable=True,
            )
        path = f"{req.run_id}/{req.step}/{req.task_id}"
        return TaskResult(req.step, req.task_id, path, attempt=attempt)


@pytest.fixture(scope="module")
def retry_module(tmp_path_factory):
    out = tmp_path_factory.mktemp("attempts") / "out"
    generate_into(FLOWS / "faults" / "retry_flow.py", out)
    return import_generated(out, "retry_flow_workflow")


def _run(temporal_env, module, script: Script):
    queue = f"attempts-{uuid.uuid4().hex[:8]}"

    async def go():
        async with Worker(
            temporal_env.client,
            task_queue=queue,
            workflows=list(module.WORKFLOWS),
            activities=[script.init, script.step],
        ):
            try:
                return await temporal_env.client.execute_workflow(
                    module.WORKFLOW.run,
                    args=[module.PARAMS(), None],
                    id=f"attempts-{uuid.uuid4().hex[:8]}",
                    task_queue=queue,
                )
            except WorkflowFailureError as exc:
                return exc

    return temporal_env.run(go(), timeout=120)


@pytest.fixture
def fast_lost_retries(monkeypatch):
    monkeypatch.setattr(scope, "LOST_RETRY_INTERVAL", timedelta(milliseconds=100))
    monkeypatch.setattr(scope, "LOST_RETRY_MAX_INTERVAL", timedelta(milliseconds=100))


def test_lost_attempts_do_not_spend_retries(
    temporal_env, retry_module, fast_lost_retries
):
    # start has no @retry: two lost tries and it still succeeds, as attempt 2;
    # middle (@retry(times=2)): lost, fail, lost, fail, ok uses both retries
    script = Script(
        start=["lost", "lost", "ok"], middle=["lost", "fail", "lost", "fail", "ok"]
    )
    result = _run(temporal_env, retry_module, script)
    assert not isinstance(result, Exception), result
    # (step, first attempt of the activity, attempts lost before it, attempt run)
    assert script.calls == [
        ("start", 0, 0, 0),
        ("start", 0, 0, 1),
        ("start", 0, 0, 2),
        ("middle", 0, 0, 0),
        ("middle", 0, 0, 1),
        ("middle", 2, 1, 2),
        ("middle", 2, 1, 3),
        ("middle", 4, 2, 4),
        ("end", 0, 0, 0),
    ]


def test_user_failures_beyond_retries_fail_the_step(temporal_env, retry_module):
    script = Script(middle=["fail", "fail", "fail", "ok"])
    result = _run(temporal_env, retry_module, script)
    assert isinstance(result, WorkflowFailureError)
    assert "step middle failed" in str(result.cause)
    assert [c[3] for c in script.calls if c[0] == "middle"] == [0, 1, 2]


def test_lost_attempts_stop_at_metaflows_cap(
    temporal_env, retry_module, fast_lost_retries
):
    script = Script(start=["lost"] * 10)
    result = _run(temporal_env, retry_module, script)
    assert isinstance(result, WorkflowFailureError)
    assert [c[3] for c in script.calls] == list(range(MAX_ATTEMPTS))


class Harness:
    """The real step activity, one try at a time (``attempt``: the activity's try)."""

    def __init__(self, flow: FlowRef):
        namespace(None)
        self.flow = flow
        self.run_id = f"temporal-{uuid.uuid4().hex[:10]}"
        self.events: list[dict] = []
        self.heartbeats = 0
        self.acts = MetaflowActivities(FLOWS, on_event=self.events.append)

    def step(self, step: str, inputs, attempt: int = 1, **kw) -> TaskResult:
        env = ActivityEnvironment()
        env.info = dataclasses.replace(env.info, attempt=attempt)
        env.on_heartbeat = lambda *_: setattr(self, "heartbeats", self.heartbeats + 1)
        req = StepRequest(self.flow, self.run_id, step, step, tuple(inputs), **kw)
        return asyncio.run(env.run(self.acts.step, req))

    def params(self) -> str:
        env = ActivityEnvironment()
        req = InitRequest(self.flow, self.run_id, "p", {})
        return asyncio.run(env.run(self.acts.init, req))

    def lease(self, step: str, attempt: int):
        task = asyncio.run(
            self.acts._task(self.flow, self.run_id, step, step, {}, attempt)
        )
        return task.leases()

    def started(self) -> list[str]:
        return [e["step"] for e in self.events if e["event"] == "started"]


def test_a_lost_attempt_that_finished_is_reported_not_rerun(mf_env):
    h = Harness(FlowRef("LinearFlow", "linear_flow.py"))
    first = h.step("start", [h.params()])
    # the completion was lost (worker died after the task ended): Temporal retries
    again = h.step("start", [h.params()], attempt=2)
    assert again == first and h.started().count("start") == 1
    assert h.lease("start", 0).read(0).state == ENDED


def test_a_lost_attempt_that_failed_counts_as_a_user_failure(mf_env):
    h = Harness(FlowRef("LinearFlow", "linear_flow.py"))
    start = h.step("start", [h.params()])
    with pytest.raises(ApplicationError):
        h.step("middle", [start.path], max_user_code_retries=2)
    # its failure report was lost: the retry reports it instead of running again
    with pytest.raises(ApplicationError) as failed:
        h.step("middle", [start.path], attempt=2, max_user_code_retries=2)
    assert failed.value.type == TASK_FAILED and failed.value.details[0]["attempt"] == 0
    assert h.started().count("middle") == 1


def test_a_dead_attempt_is_waited_for_then_recorded_failed(mf_env):
    h = Harness(FlowRef("LinearFlow", "linear_flow.py"))
    start = h.step("start", [h.params()])
    with pytest.raises(ApplicationError):
        h.step("middle", [start.path], max_user_code_retries=2)
    # make attempt 0 look like a task whose worker died a moment ago, killing it
    # mid-run (started, no done marker, lease fresh and never closed): the retry
    # waits until the lease is closed, records attempt 0 failed and runs attempt 1,
    # the lost attempt not counted against @retry
    task_dir = mf_env / ".metaflow" / "LinearFlow" / h.run_id / "middle" / "middle"
    (task_dir / "0.DONE.lock").unlink()
    leases = h.lease("middle", 0)
    leases.write(0, RUNNING)
    began = time.monotonic()
    closer = threading.Timer(2.0, leases.write, (0, ENDED))
    closer.start()
    middle = h.step("middle", [start.path], attempt=2, max_user_code_retries=2)
    assert time.monotonic() - began >= 2.0 and h.heartbeats >= 1
    assert middle.attempt == 1
    task = Task(f"LinearFlow/{middle.path}")
    assert task.successful and task.current_attempt == 1
    assert Task(task.pathspec, attempt=0).metadata_dict["attempt_ok"] == "False"


def test_a_lease_not_refreshed_is_dead():
    now = time.time()
    assert Lease(RUNNING, now).alive(now)
    assert not Lease(RUNNING, now - LEASE_TTL_SECONDS).alive(now)
    assert not Lease(ENDED, now).alive(now)


def test_an_attempt_that_never_started_keeps_its_number(mf_env):
    h = Harness(FlowRef("LinearFlow", "linear_flow.py"))
    params = h.params()
    # the lost try wrote its lease, then its worker died before the task started
    h.lease("start", 0).write(0, ENDED)
    result = h.step("start", [params], attempt=2)
    assert result.attempt == 0
    assert Task(f"LinearFlow/{result.path}").successful


def test_exit_0_without_metaflows_record_is_not_success(mf_env):
    # the file runs LinearFlow, so nothing is recorded for a flow named otherwise
    h = Harness(FlowRef("LinearFlow", "linear_flow.py"))
    params = h.params()
    h.flow = FlowRef("NotTheFlowInTheFile", "linear_flow.py")
    with pytest.raises(ApplicationError) as failed:
        h.step("start", [params])
    assert failed.value.type == TASK_NOT_RECORDED and failed.value.non_retryable
    assert "recorded no completion" in failed.value.message
