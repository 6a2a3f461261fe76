"""Run a generated worker entry module as a user does: ``python -m out.<flow>_worker``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class WorkerProcess:
    """A running ``python -m PACKAGE.MODULE`` whose output goes to a file."""

    def __init__(self, proc: subprocess.Popen, log: Path):
        self.proc = proc
        self.log = log

    def output(self) -> str:
        return self.log.read_text()

    def wait_for(self, text: str, timeout: float = 60) -> str:
        """Wait until ``text`` appears in the output; the output so far."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.output()
            if text in out:
                return out
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"worker exited with {self.proc.returncode}:\n{out}"
                )
            time.sleep(0.2)
        raise AssertionError(f"no {text!r} within {timeout}s:\n{self.output()}")

    def stop(self) -> int:
        """SIGTERM (a graceful shutdown), then the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def run_module(
    cwd: Path, module: str, *args: str, env: dict | None = None, timeout: float = 300
):
    """``python -m module args`` to completion (e.g. the trigger)."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@contextmanager
def worker_process(
    cwd: Path, module: str, *args: str, env: dict | None = None
) -> Iterator[WorkerProcess]:
    """A worker started in ``cwd`` for the block, stopped with SIGTERM after it."""
    log = cwd / f"worker-{time.monotonic_ns()}.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
    worker = WorkerProcess(proc, log)
    try:
        yield worker
    finally:
        worker.stop()
