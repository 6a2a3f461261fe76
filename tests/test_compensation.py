"""Saga compensation on a real dev server: every shape in which a run can fail, and
cancellation. The test flows (tests/flows/saga_*.py) append what their steps and
``@compensate`` methods do to a ledger file, so order and multiplicity are checked
directly; the compensation tasks are also checked through the Client API."""

from __future__ import annotations

import subprocess
import time

import pytest
from e2e import load_module, run_on_temporal
from helpers import ROOT
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError

pytestmark = pytest.mark.e2e
FLOWS = ROOT / "tests" / "flows"


def _run(pathspec):
    from metaflow import Run, namespace

    namespace(None)
    return Run(pathspec)


def _ledger(path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _undos(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("undo ")]


def _replays(temporal_env, module, handle) -> None:
    """The workflow code replays its own history without nondeterminism."""
    from temporalio.worker import Replayer

    async def replay():
        history = await handle.fetch_history()
        await Replayer(workflows=module.WORKFLOWS).replay_workflow(history)

    temporal_env.run(replay())


def _start(temporal_env, module, params, **kwargs):
    result, handle = run_on_temporal(temporal_env, module, params, **kwargs)
    assert isinstance(result, WorkflowFailureError), result
    return result, handle, f"{module.FLOW.name}/temporal-{handle.result_run_id}"


def test_failure_at_the_last_step_undoes_every_step_last_first(
    tmp_path, temporal_env, mf_env
):
    ledger = tmp_path / "ledger"
    module = load_module(FLOWS / "saga_linear_flow.py", tmp_path / "out")
    error, _, pathspec = _start(temporal_env, module, module.PARAMS(ledger=str(ledger)))
    assert "step end failed" in str(error.cause)
    assert _undos(_ledger(ledger)) == [
        "undo b succeeded 111",
        "undo a succeeded",
        "undo start succeeded",
    ]
    assert "compensations (last registered first)" in str(error.cause)
    run = _run(pathspec)
    assert [s.id for s in run] == ["end", "b", "a", "start"]  # hidden steps stay hidden
    undo_b = run["_compensate_b"]["b"]  # the id of the task it undoes
    assert undo_b.successful
    # the compensation task reads the undone task's artifacts and stores its own
    assert undo_b["value"].data == 111 and undo_b["undone_value"].data == 111
    assert undo_b.metadata_dict["compensates"] == f"{pathspec}/b/b"
    assert "undo b succeeded 111" not in undo_b.stdout  # it wrote to the ledger
    assert not run["end"].task.successful


def test_a_failing_compensation_is_recorded_and_the_others_still_run(
    tmp_path, temporal_env, mf_env
):
    ledger = tmp_path / "ledger"
    module = load_module(FLOWS / "saga_linear_flow.py", tmp_path / "out")
    params = module.PARAMS(ledger=str(ledger), fail_undo="a")
    error, _, pathspec = _start(temporal_env, module, params)
    # three attempts of undo_a (each a Metaflow attempt), then undo_start still runs
    assert _undos(_ledger(ledger)) == [
        "undo b succeeded 111",
        "undo a succeeded",
        "undo a succeeded",
        "undo a succeeded",
        "undo start succeeded",
    ]
    message = str(error.cause)
    assert (
        "undo_a undoing a/a: failed" in message
        and "undo_start undoing start/start: done" in message
    )
    undo_a = _run(pathspec)["_compensate_a"]["a"]
    assert not undo_a.successful
    assert "undo_a failed on purpose" in undo_a.stderr
    assert undo_a.current_attempt == 2  # attempts 0, 1, 2


def test_failed_branch_undoes_itself_and_the_finished_branch_is_undone_too(
    tmp_path, temporal_env, mf_env
):
    ledger = tmp_path / "ledger"
    module = load_module(FLOWS / "saga_branch_flow.py", tmp_path / "out")
    error, _, _ = _start(temporal_env, module, module.PARAMS(ledger=str(ledger)))
    assert "step right failed" in str(error.cause)
    assert _ledger(ledger)[:3] == ["do start", "do left", "do right"]
    assert _undos(_ledger(ledger)) == [
        "undo right failed",
        "undo left succeeded",
        "undo start succeeded",
    ]


def test_foreach_split_failure_undoes_every_split_once(tmp_path, temporal_env, mf_env):
    ledger = tmp_path / "ledger"
    module = load_module(FLOWS / "saga_foreach_flow.py", tmp_path / "out")
    error, handle, pathspec = _start(
        temporal_env, module, module.PARAMS(ledger=str(ledger))
    )
    assert "step work failed" in str(error.cause) and "split 2 failed" in str(
        error.cause
    )
    _replays(temporal_env, module, handle)
    lines = _ledger(ledger)
    undos = _undos(lines)
    # split 2 failed first while 0, 1, 3, 4 were still busy: all five are undone,
    # each exactly once, the failed split first and start last
    assert undos[0] == "undo work work-2 failed 2"
    assert undos[-1] == "undo start succeeded"
    undone = sorted(line.split()[2] for line in undos[:-1])
    assert undone == ["work-0", "work-1", "work-2", "work-3", "work-4"]
    for line in undos[1:-1]:
        _, _, task, status, item = line.split()
        # a sibling that finished is undone with its artifacts; one that was killed
        # by the cancellation reads the task it started from
        assert (status, item) in (("succeeded", task[5:]), ("unfinished", "-")), line
    run = _run(pathspec)
    assert len(list(run["_compensate_work"])) == 5


def test_nested_foreach_failure_undoes_every_cell_once(tmp_path, temporal_env, mf_env):
    ledger = tmp_path / "ledger"
    module = load_module(FLOWS / "saga_nested_flow.py", tmp_path / "out")
    error, handle, _ = _start(temporal_env, module, module.PARAMS(ledger=str(ledger)))
    assert "cell b1 failed" in str(error.cause)
    _replays(temporal_env, module, handle)
    lines = _ledger(ledger)
    begun = sorted(line.split()[2] for line in lines if line.startswith("begin work"))
    undone = sorted(line.split()[2] for line in _undos(lines))
    assert undone == [
        "work-0-0",
        "work-0-1",
        "work-0-2",
        "work-1-0",
        "work-1-1",
        "work-1-2",
    ]
    assert len(begun) == 6
    assert "undo work work-1-1 failed b1" in lines


def test_loop_failure_undoes_iterations_last_first(tmp_path, temporal_env, mf_env):
    ledger = tmp_path / "ledger"
    module = load_module(FLOWS / "saga_loop_flow.py", tmp_path / "out")
    error, handle, _ = _start(temporal_env, module, module.PARAMS(ledger=str(ledger)))
    assert "iteration 3 failed" in str(error.cause)
    _replays(temporal_env, module, handle)
    assert _undos(_ledger(ledger)) == [
        "undo loop loop-i2 failed 3",
        "undo loop loop-i1 succeeded 2",
        "undo loop loop succeeded 1",
    ]


def _pids(pattern: str) -> list[str]:
    done = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return done.stdout.split()


def test_cancel_mid_foreach_kills_tasks_undoes_and_ends_canceled(
    tmp_path, temporal_env, mf_env
):
    """Cancel while four splits run: tasks killed, undone, the run ends CANCELED."""
    import asyncio
    import uuid

    from mf_temporal_codegen.runtime.worker import build_worker

    ledger = tmp_path / "ledger"
    module = load_module(FLOWS / "saga_foreach_flow.py", tmp_path / "out")
    params = module.PARAMS(ledger=str(ledger), width=4, fail_index=-1, delay=120.0)
    queue = f"q-{uuid.uuid4().hex[:10]}"
    timings = {}

    async def go():
        worker = build_worker(temporal_env.client, module, task_queue=queue)
        async with worker:
            handle = await temporal_env.client.start_workflow(
                module.WORKFLOW.run,
                args=[params, None],
                id=f"cancel-{uuid.uuid4().hex[:8]}",
                task_queue=queue,
            )
            deadline = time.monotonic() + 120
            while sum(line.startswith("begin work") for line in _ledger(ledger)) < 4:
                assert time.monotonic() < deadline, _ledger(ledger)
                await asyncio.sleep(0.2)
            await asyncio.sleep(1)
            timings["cancel"] = time.monotonic()
            await handle.cancel()
            while _pids("saga_foreach_flow.py.* step work "):
                await asyncio.sleep(0.1)
            timings["killed"] = time.monotonic()
            try:
                await handle.result()
            except Exception as exc:  # noqa: BLE001 - asserted below
                timings["error"] = exc
            timings["ended"] = time.monotonic()
            return (await handle.describe()).status, handle.result_run_id, handle

    status, run_id, handle = temporal_env.run(go(), timeout=300)
    assert status == WorkflowExecutionStatus.CANCELED
    _replays(temporal_env, module, handle)
    assert (
        timings["killed"] - timings["cancel"] < 5
    ), "tasks must be killed within a few seconds"
    assert timings["ended"] - timings["cancel"] < 30
    undos = _undos(_ledger(ledger))
    assert sorted(line.split()[2] for line in undos[:-1]) == [
        "work-0",
        "work-1",
        "work-2",
        "work-3",
    ]
    assert all(line.split()[3] == "unfinished" for line in undos[:-1]), undos
    assert undos[-1] == "undo start succeeded"
    run = _run(f"SagaForeachFlow/temporal-{run_id}")
    for task in run["work"]:
        assert not task.successful and not task.finished
        assert task.metadata_dict.get("attempt_ok") == "False", task.pathspec
