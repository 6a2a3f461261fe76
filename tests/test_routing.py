"""Routing: a step generated with ``--queue STEP=QUEUE`` runs its tasks on that task
queue, so only a worker pool serving it (``worker --queue QUEUE``: activities only)
runs them; the flow's own worker runs the workflow and the other steps."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest
from e2e import load_module
from helpers import ROOT, codegen
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import CancelledError

from mf_temporal_codegen.runtime.worker import running_worker

pytestmark = pytest.mark.e2e
FLOW = ROOT / "tests" / "flows" / "routing_flow.py"


def _pool_env(name: str) -> dict[str, str]:
    return {**os.environ, "WORKER_POOL": name}


def _scheduled_queues(history) -> dict[str, str]:
    """Activity id -> the task queue its first activity task was scheduled on."""
    queues: dict[str, str] = {}
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            queues.setdefault(attrs.activity_id, attrs.task_queue.name)
    return queues


def test_generated_spec_shows_the_queue(tmp_path: Path):
    result = codegen(FLOW, "-o", tmp_path / "out", "--queue", "train=special")
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "out" / "routing_flow_workflow.py").read_text()
    assert 'TRAIN = rt.StepSpec("train", task_queue="special")\n' in text
    assert 'START = rt.StepSpec("start")\n' in text
    assert 'END = rt.StepSpec("end")\n' in text
    assert "--queue=train=special" in text  # the regenerate command


def test_unknown_step_is_an_error(tmp_path: Path):
    out = tmp_path / "out"
    result = codegen(FLOW, "-o", out, "--queue", "nosuch=q")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == (
        f"{FLOW}:9:7: error: --queue nosuch=q: flow " "RoutingFlow has no step nosuch"
    ), result.stderr
    assert lines[1] == "  hint: name one of its steps: end, start, train"
    assert not out.exists()


GPU_FLOW = """\
from metaflow import FlowSpec, resources, step, config_expr

GPUS = 2


class GpuFlow(FlowSpec):
    @resources(gpu=GPUS)
    @step
    def start(self):
        self.next(self.middle)

    @resources(gpu=0, cpu=4)
    @step
    def middle(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    GpuFlow()
"""


def test_gpu_queue_routes_the_steps_that_ask_for_gpus(tmp_path: Path):
    flow = tmp_path / "gpu_flow.py"
    flow.write_text(GPU_FLOW)
    out = tmp_path / "out"
    result = codegen(flow, "-o", out, "--gpu-queue", "gpu", "--queue", "end=big")
    assert result.returncode == 0, result.stderr
    text = (out / "gpu_flow_workflow.py").read_text()
    assert 'START = rt.StepSpec("start", task_queue="gpu")\n' in text
    assert 'MIDDLE = rt.StepSpec("middle")\n' in text
    assert 'END = rt.StepSpec("end", task_queue="big")\n' in text


def test_gpu_queue_refuses_a_computed_gpu_count(tmp_path: Path):
    flow = tmp_path / "gpu_flow.py"
    flow.write_text(GPU_FLOW.replace("gpu=GPUS", 'gpu=config_expr("c.gpus")'))
    result = codegen(flow, "-o", tmp_path / "out", "--gpu-queue", "gpu")
    assert result.returncode == 2, result.stderr
    first, hint = result.stderr.splitlines()[:2]
    assert first.startswith(
        f"{flow}:7:20: error: --gpu-queue gpu: step start's "
    ), first
    assert "is computed" in first
    assert hint.startswith("  hint: ") and "--queue start=gpu" in hint
    # without --gpu-queue the computed count is Metaflow's business, as before
    assert codegen(flow, "-o", tmp_path / "out").returncode == 0


@pytest.mark.parametrize("value", ["=q", "train=", " pool"])
def test_queue_must_be_step_equals_queue_or_a_queue(value: str, tmp_path: Path):
    result = codegen(FLOW, "-o", tmp_path / "out", "--queue", value)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0] == (
        f"mf-temporal-codegen: error: --queue {value!r} is not STEP=QUEUE or QUEUE"
    ), result.stderr
    assert len(lines) == 2 and lines[1].startswith("  hint: ")


def test_routed_step_runs_only_on_its_pool(tmp_path, temporal_env, mf_env):
    special = f"special-{uuid.uuid4().hex[:8]}"
    module = load_module(FLOW, tmp_path / "out", queues=(("train", special),))
    assert module.TRAIN.task_queue == special and module.START.task_queue is None
    main = f"q-{uuid.uuid4().hex[:10]}"
    client = temporal_env.client

    async def go():
        async with (
            running_worker(
                client,
                module,
                task_queue=main,
                launcher="subprocess",
                fail_fast=True,
                env=_pool_env("main"),
            ),
            running_worker(
                client,
                module,
                task_queue=special,
                launcher="subprocess",
                check=False,
                search_attributes=False,
                env=_pool_env("special"),
                activities_only=True,
            ),
        ):
            handle = await client.start_workflow(
                module.WORKFLOW.run,
                args=[module.PARAMS(), None],
                id=f"RoutingFlow-{uuid.uuid4().hex[:8]}",
                task_queue=main,
            )
            return await handle.result(), await handle.fetch_history()

    result, history = temporal_env.run(go(), timeout=600)
    from metaflow import Run, namespace

    namespace(None)
    run = Run(result.pathspec)
    pools = {step: run[step].task["pool"].data for step in ("start", "train", "end")}
    assert pools == {"start": "main", "train": "special", "end": "main"}
    queues = _scheduled_queues(history)
    assert queues["train/train"] == special
    assert queues["start/start"] == queues["end/end"] == main


def test_routed_step_waits_for_its_pool(tmp_path, temporal_env, mf_env):
    """Nobody serves the routed step's queue: the run stops after start, its train
    activity waiting (scheduled, never started) on that queue; cancelling ends it."""
    special = f"special-{uuid.uuid4().hex[:8]}"
    module = load_module(FLOW, tmp_path / "out", queues=(("train", special),))
    main = f"q-{uuid.uuid4().hex[:10]}"
    client = temporal_env.client

    async def go():
        async with running_worker(
            client,
            module,
            task_queue=main,
            launcher="subprocess",
            fail_fast=True,
            check=False,
            env=_pool_env("main"),
        ):
            handle = await client.start_workflow(
                module.WORKFLOW.run,
                args=[module.PARAMS(), None],
                id=f"RoutingFlow-{uuid.uuid4().hex[:8]}",
                task_queue=main,
            )
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 300
            while "train/train" not in _scheduled_queues(await handle.fetch_history()):
                assert loop.time() < deadline, "train was never scheduled"
                await asyncio.sleep(0.5)
            await asyncio.sleep(5)  # the main worker could have picked it up by now
            described = await handle.describe()
            pending = [
                (a.activity_id, a.state)
                for a in described.raw_description.pending_activities
            ]
            history = await handle.fetch_history()
            await handle.cancel()
            try:
                await handle.result()
            except WorkflowFailureError as exc:
                return pending, history, exc
            raise AssertionError("the cancelled run succeeded")

    pending, history, failure = temporal_env.run(go(), timeout=600)
    assert pending == [
        ("train/train", PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED)
    ]
    assert _scheduled_queues(history)["train/train"] == special
    started = [
        e
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    # only start's activity (and init's) started; train's never did
    assert len(started) == len(_scheduled_queues(history)) - 1
    assert isinstance(failure.cause, CancelledError), failure


def test_worker_command_serves_a_pool(tmp_path, temporal_env, mf_env):
    """``worker --queue QUEUE`` as a user starts it, beside the flow's own worker
    (both versioned, as the ``worker`` command always is)."""
    from helpers import generate_into
    from worker_process import run_module, worker_process

    special = f"special-{uuid.uuid4().hex[:8]}"
    generate_into(FLOW, tmp_path / "out", queues=(("train", special),))
    module = "out.routing_flow_worker"
    address = ("--address", temporal_env.address, "--launcher", "subprocess")
    with worker_process(
        tmp_path, module, *address, env={"WORKER_POOL": "main"}
    ) as main, worker_process(
        tmp_path, module, "worker", *address, "--queue", special,
        env={"WORKER_POOL": "special"},
    ) as pool:  # fmt: skip
        main.wait_for("worker for RoutingFlow")
        out = pool.wait_for("worker pool for RoutingFlow")
        assert f"task queues {special}: routed steps' tasks only" in out
        done = run_module(
            tmp_path, module, "trigger", "--address", temporal_env.address
        )
    assert done.returncode == 0, (
        done.stdout + done.stderr + main.output() + pool.output()
    )
    pathspec = done.stdout.strip().splitlines()[-1].removeprefix("pathspec: ")
    from metaflow import Run, namespace

    namespace(None)
    run = Run(pathspec)
    pools = {step: run[step].task["pool"].data for step in ("start", "train", "end")}
    assert pools == {"start": "main", "train": "special", "end": "main"}


def test_run_command_serves_the_routed_queues(tmp_path, temporal_env, mf_env):
    """``mf-temporal-codegen run --queue ...``: one process serves the flow's and
    the routed steps' queues, so the run finishes."""
    import subprocess
    import sys

    special = f"special-{uuid.uuid4().hex[:8]}"
    done = subprocess.run(
        [
            sys.executable, "-m", "mf_temporal_codegen", "run", str(FLOW),
            "--queue", f"train={special}", "--address", temporal_env.address,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,  # without its pool the run would wait at train forever
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"also serving the routed steps' task queues: {special}" in done.stdout
    pathspec = done.stdout.splitlines()[-1].removeprefix("pathspec: ")
    from metaflow import Run, namespace

    namespace(None)
    assert Run(pathspec)["train"].task["pool"].data is None  # (no WORKER_POOL)
    assert Run(pathspec).successful
