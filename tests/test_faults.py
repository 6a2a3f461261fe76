"""Fault injection on a real dev server: a worker killed mid-foreach loses nothing.

A run of ``FaultFlow`` (a foreach of 3 s tasks) has its worker SIGKILLed while tasks
run; the tasks die with it, and a restarted worker (or a second one already running)
finishes the run. Checked through Metaflow's Client API and a log the tasks write:
every task has exactly one successful attempt, every attempt cut off is recorded
failed, no two attempts of one task ran at the same time, and no task process
outlived its worker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
from helpers import generate_into
from worker_process import worker_process

pytestmark = [pytest.mark.e2e, pytest.mark.faults]
FLOW = Path(__file__).parent / "flows" / "faults" / "fault_flow.py"
MODULE = "out.fault_flow_worker"
WIDTH = 6


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"no {what} within {timeout}s")


def _attempt_log(path: Path) -> dict[str, dict[int, dict[str, float]]]:
    """task -> attempt -> {"start": t, "end": t} from the tasks' own log."""
    attempts: dict[str, dict[int, dict[str, float]]] = defaultdict(dict)
    for line in path.read_text().splitlines():
        task, attempt, event, at, _pid = line.split()
        attempts[task].setdefault(int(attempt), {})[event] = float(at)
    return attempts


def _attempt_outcomes(task) -> dict[int, str | None]:
    """attempt -> Metaflow's recorded ``attempt_ok`` ("True"/"False"; None: never
    recorded, i.e. left "running") for every attempt Metaflow knows of."""
    from metaflow import Task

    attempts = {int(m.value) for m in task.metadata if m.name == "attempt"}
    return {
        k: Task(task.pathspec, attempt=k).metadata_dict.get("attempt_ok")
        for k in attempts
    }


def _check_run(pathspec: str, log: Path, killed_at: float) -> None:
    from metaflow import Run, namespace

    namespace(None)
    run = Run(pathspec)
    assert run.successful
    assert run["join"].task.data.total == sum(i * i for i in range(WIDTH))
    bodies = list(run["body"])
    assert len(bodies) == WIDTH
    logged = _attempt_log(log)
    cut_off = 0
    for task in bodies:
        outcomes = _attempt_outcomes(task)
        key = f"body/{task.id}"
        # attempts are numbered 0..n without gaps; only the last one succeeded
        assert sorted(outcomes) == list(range(len(outcomes))), (key, outcomes)
        assert outcomes.pop(max(outcomes)) == "True", (key, outcomes)
        assert set(outcomes.values()) <= {"False"}, (key, outcomes)
        cut_off += len(outcomes)
        # no two attempts overlapped: each started after the previous one ended
        # (or, for one cut off by the kill, after the kill)
        times = logged[key]
        for attempt in sorted(times)[1:]:
            previous = times[attempt - 1]
            assert times[attempt]["start"] >= previous.get("end", killed_at), (
                key,
                times,
            )
        assert task.successful and task.data.square == int(task.index) ** 2
    assert cut_off >= 1, "the kill cut off no task"


def _trigger(tmp_path: Path, address: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", MODULE, "trigger", "--address", address],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _kill_mid_foreach(worker, log: Path) -> float:
    """SIGKILL the worker once two body tasks are running; when it died."""
    _wait(
        lambda: log.exists() and log.read_text().count(" start ") >= 2, 120, "two tasks"
    )
    return _kill(worker)


def _kill(worker) -> float:
    """SIGKILL the worker; check that every process it started died with it (the
    kernel kills them: PR_SET_PDEATHSIG); when it died."""
    children = _descendants(worker.proc.pid)
    assert children, "the worker runs no task"
    worker.proc.send_signal(signal.SIGKILL)
    worker.proc.wait(10)
    killed_at = time.time()
    _wait(lambda: not [p for p in children if _alive(p)], 5, "task processes gone")
    return killed_at


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid``."""
    parents = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


@pytest.mark.parametrize("launcher", ["subprocess", "fork"])
def test_worker_killed_mid_foreach_then_restarted(
    launcher, tmp_path, temporal_env, mf_env, monkeypatch
):
    log = tmp_path / "attempts.log"
    monkeypatch.setenv("FAULT_LOG", str(log))
    generate_into(FLOW, tmp_path / "out")
    args = ("--address", temporal_env.address, "--launcher", launcher)
    args += ("--max-concurrent-activities", "3")
    with worker_process(tmp_path, MODULE, *args) as first:
        first.wait_for("worker for FaultFlow")
        trigger = _trigger(tmp_path, temporal_env.address)
        killed_at = _kill_mid_foreach(first, log)
    with worker_process(tmp_path, MODULE, *args) as second:
        second.wait_for("worker for FaultFlow")
        out, err = trigger.communicate(timeout=300)
    assert trigger.returncode == 0, err
    assert "Traceback" not in err
    pathspec = out.strip().splitlines()[-1].removeprefix("pathspec: ")
    _check_run(pathspec, log, killed_at)


def test_second_worker_takes_over(tmp_path, temporal_env, mf_env, monkeypatch):
    log = tmp_path / "attempts.log"
    monkeypatch.setenv("FAULT_LOG", str(log))
    generate_into(FLOW, tmp_path / "out")
    args = ("--address", temporal_env.address, "--max-concurrent-activities", "3")
    with worker_process(tmp_path, MODULE, *args) as standby:
        standby.wait_for("worker for FaultFlow")
        with worker_process(tmp_path, MODULE, *args) as doomed:
            doomed.wait_for("worker for FaultFlow")
            trigger = _trigger(tmp_path, temporal_env.address)
            _wait(
                lambda: log.exists() and log.read_text().count(" start ") >= 4,
                120,
                "tasks on both workers",
            )
            killed_at = _kill(doomed)
        out, err = trigger.communicate(timeout=300)
    assert trigger.returncode == 0, err
    pathspec = out.strip().splitlines()[-1].removeprefix("pathspec: ")
    _check_run(pathspec, log, killed_at)
