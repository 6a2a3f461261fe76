"""Background workers ``temporal create --worker`` starts: one per deployment and host,
its pid and log file kept under Metaflow's home (``$METAFLOW_HOME``, else
``~/.metaflowconfig``) and in the deployment record; replaced by the next ``create
--worker``, stopped by ``delete``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

from .records import ManagedWorker

# how long a new worker may take to serve, and a stopped one to drain and exit
READY_TIMEOUT = 120.0
STOP_TIMEOUT = 90.0
# the line the generated worker prints once it serves (runtime.worker)
READY_LINE = "Ctrl-C to stop"


class WorkerStartError(RuntimeError):
    """The background worker exited or did not serve in time."""


def state_dir() -> Path:
    home = os.environ.get("METAFLOW_HOME") or "~/.metaflowconfig"
    return Path(home).expanduser() / "temporal" / "workers"


def _state_file(deployment: str) -> Path:
    return state_dir() / f"{deployment}.json"


def start(
    deployment: str,
    module: str,
    cwd: Path,
    worker_args: list[str],
    env: dict[str, str] | None = None,
) -> ManagedWorker:
    """Start ``python -m module worker ARGS`` in its own session, after stopping the
    deployment's earlier managed worker on this host; return once it serves."""
    stop(deployment)
    directory = state_dir()
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / f"{deployment}.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", module, "worker", *worker_args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    worker = ManagedWorker(socket.gethostname(), process.pid, str(log))
    _state_file(deployment).write_text(
        json.dumps({**asdict(worker), "module": module}), encoding="utf-8"
    )
    offset = 0
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        text = log.read_text(encoding="utf-8", errors="replace")
        if READY_LINE in text[offset:]:
            return worker
        if process.poll() is not None:
            _state_file(deployment).unlink(missing_ok=True)
            raise WorkerStartError(
                f"the worker exited with code {process.returncode}; its log "
                f"({log}) ends:\n" + _tail(text)
            )
        time.sleep(0.2)
    stop(deployment)
    raise WorkerStartError(
        f"the worker did not serve within {READY_TIMEOUT:g}s; its log is {log}"
    )


def running(deployment: str) -> ManagedWorker | None:
    """The deployment's managed worker on this host, if it is alive."""
    path = _state_file(deployment)
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not _is_ours(state["pid"], state["module"]):
        path.unlink(missing_ok=True)
        return None
    return ManagedWorker(state["host"], state["pid"], state["log"])


def stop(deployment: str) -> ManagedWorker | None:
    """Stop the deployment's managed worker on this host (SIGTERM: it drains, then
    SIGKILL after :data:`STOP_TIMEOUT`); the worker that was stopped, if any."""
    worker = running(deployment)
    if worker is None:
        return None
    try:
        os.killpg(worker.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline and _alive(worker.pid):
        time.sleep(0.2)
    if _alive(worker.pid):
        try:
            os.killpg(worker.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _state_file(deployment).unlink(missing_ok=True)
    return worker


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of this process has exited
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return Path(f"/proc/{pid}").exists() and not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return False


def _is_ours(pid: int, module: str) -> bool:
    """Whether ``pid`` still is the worker started for ``module`` (not a reused pid)."""
    if not _alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return module.encode() in cmdline


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join("  " + line for line in text.splitlines()[-lines:])
