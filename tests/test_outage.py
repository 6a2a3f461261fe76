"""Durability of the generated worker and trigger: a Temporal server that goes away
for two minutes mid-run (stopped, or killed) and comes back with its database, and a
worker stopped with SIGTERM while a task runs. Each test runs its own dev server
(``--db-filename``), worker and trigger as separate processes, as a user does, and
reads the run back through the Client API."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import TemporalServer, generate_into
from worker_process import worker_process

pytestmark = pytest.mark.e2e
OUTAGE = 120
WORKER = "out.outage_flow_worker"
FLOW = """\
import time

from metaflow import FlowSpec, Parameter, step


class OutageFlow(FlowSpec):
    seconds = Parameter("seconds", default=3)

    @step
    def start(self):
        self.items = list(range(4))
        self.next(self.body, foreach="items")

    @step
    def body(self):
        print("body", self.input, "started", flush=True)
        time.sleep(self.seconds)
        self.square = self.input**2
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.square for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    OutageFlow()
"""


@pytest.fixture
def project(tmp_path, mf_env) -> Path:
    """A directory with the flow and its generated modules (tasks run there)."""
    (tmp_path / "outage_flow.py").write_text(FLOW)
    generate_into(tmp_path / "outage_flow.py", tmp_path / "out")
    return tmp_path


@pytest.fixture
def server(tmp_path):
    server = TemporalServer(tmp_path / "temporal.db")
    server.start()
    yield server
    server.stop()


def _trigger(project: Path, server: TemporalServer, *params: str) -> subprocess.Popen:
    """``trigger`` started in the background, its output going to ``proc.log``."""
    log = project / f"trigger-{time.monotonic_ns()}.log"
    args = [arg for param in params for arg in ("--param", param)]
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                WORKER,
                "trigger",
                "--address",
                server.address,
                *args,
            ],
            cwd=project,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
    proc.log = log
    return proc


def _output(proc: subprocess.Popen) -> str:
    return proc.log.read_text()


def _wait_for_tasks(project: Path, count: int, timeout: float = 120) -> None:
    """Until ``count`` body tasks have started (Metaflow's local metadata records
    an attempt when it begins)."""
    deadline = time.monotonic() + timeout
    pattern = ".metaflow/OutageFlow/*/body/*/_meta/sysmeta_attempt_[0-9]*.json"
    while time.monotonic() < deadline:
        started = {path.parent.parent for path in (project / "mfroot").glob(pattern)}
        if len(started) >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"fewer than {count} body tasks started within {timeout}s")


def _assert_finished(pathspec: str) -> None:
    from metaflow import Run, namespace

    namespace(None)
    run = Run(pathspec)
    assert run.successful, pathspec
    assert sorted(t["square"].data for t in run["body"]) == [0, 1, 4, 9]
    assert run["join"].task["total"].data == 14


def _pathspec(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("pathspec: ")]
    assert len(lines) == 1, output
    return lines[0].removeprefix("pathspec: ")


@pytest.mark.parametrize(
    "how", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "killed"]
)
def test_trigger_and_worker_ride_out_a_two_minute_outage(project, server, how):
    address = ("--address", server.address)
    with worker_process(project, WORKER, *address) as worker:
        worker.wait_for("worker for OutageFlow")
        trigger = _trigger(project, server)
        _wait_for_tasks(project, 1)
        server.stop(how)
        down = time.monotonic()
        time.sleep(OUTAGE)
        assert trigger.poll() is None, _output(trigger)
        assert worker.proc.poll() is None, worker.output()
        server.start()
        back = time.monotonic()
        trigger.wait(240)
        finished = time.monotonic()
        out = _output(trigger)
        assert trigger.returncode == 0, out
        worker_out = worker.output()
    print(
        f"outage {back - down:.0f}s; run finished {finished - back:.0f}s after the server came back"
    )
    assert worker.proc.returncode == 0, worker_out
    unreachable = f"server unreachable at {server.address}; waiting (retrying)..."
    assert out.count(unreachable) == 1, out
    assert out.count(f"server at {server.address} is back") == 1, out
    assert "Traceback" not in out and "Traceback" not in worker_out, out + worker_out
    assert worker_out.count(unreachable) == 1, worker_out
    _assert_finished(_pathspec(out))


def test_trigger_gives_up_on_a_server_that_stays_down(project, tmp_path):
    address = TemporalServer(tmp_path / "none.db").address  # nothing listens there
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            WORKER,
            "trigger",
            "--address",
            address,
            "--wait-for-server",
            "8",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=180,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 1, done.stdout + done.stderr
    assert (
        done.stderr.count(f"server unreachable at {address}; waiting (retrying)...")
        == 1
    )
    assert f"error: cannot reach Temporal at {address} (retried for 8s)" in done.stderr
    assert "Traceback" not in done.stderr
    assert 5 < elapsed < 40, elapsed


def test_sigterm_drains_running_tasks(project, server):
    """SIGTERM with a grace: no new tasks, the running ones finish and are recorded;
    the worker exits 0, and a second worker (same version) finishes the run."""
    address = ("--address", server.address)
    with worker_process(project, WORKER, *address, "--grace-seconds", "30") as first:
        first.wait_for("worker for OutageFlow")
        trigger = _trigger(project, server, "seconds=6")
        _wait_for_tasks(project, 4)
        stopped = time.monotonic()
        first.proc.send_signal(signal.SIGTERM)
        assert first.proc.wait(60) == 0, first.output()
        drained = time.monotonic() - stopped
    out = first.output()
    assert "shutting down: no new tasks; running ones get 30s to finish" in out, out
    assert "Traceback" not in out, out
    assert 1 < drained < 30, (drained, out)
    with worker_process(project, WORKER, *address) as second:
        second.wait_for("worker for OutageFlow")
        trigger.wait(180)
    trigger_out = _output(trigger)
    assert trigger.returncode == 0, trigger_out
    pathspec = _pathspec(trigger_out)
    _assert_finished(pathspec)

    from metaflow import Run

    # The drained tasks finished on the first worker: one attempt each.
    assert [t.current_attempt for t in Run(pathspec)["body"]] == [0, 0, 0, 0]
    print(f"drain took {drained:.1f}s")
