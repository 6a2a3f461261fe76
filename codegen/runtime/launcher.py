"""Launchers start one Metaflow command (``flow.py <top> step ...``) and wait for it.

A launcher owns the process: it runs it in its own session, streams its stdout and
stderr into mflog-formatted files (what Metaflow's log store expects), calls
``heartbeat`` while it runs, and kills the whole process group when the waiting
coroutine is cancelled. ``SubprocessLauncher`` is the reference mode: a fresh
interpreter per task, exactly like Metaflow's orchestrators.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from metaflow.mflog import TASK_LOG_SOURCE
from metaflow.mflog.mflog import decorate

from .lifetime import die_with_parent

HEARTBEAT_SECONDS = 1.0
# Seconds a task gets between SIGTERM and SIGKILL when it is cancelled.
KILL_GRACE_SECONDS = 2.0


class Launcher:
    """Runs a Metaflow command line; subclasses decide how the process starts."""

    name = "abstract"

    async def spawn(
        self, argv: Sequence[str], env: Mapping[str, str], cwd: Path
    ) -> asyncio.subprocess.Process:
        """Start the process with piped stdout/stderr in a new session."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the launcher keeps between tasks (nothing by default)."""

    async def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        stdout_log: Path,
        stderr_log: Path,
        heartbeat: Callable[[], None] = lambda: None,
        on_line: Callable[[str, bytes, int], None] | None = None,
    ) -> int:
        """Run ``argv`` (``flow.py`` first) to completion and return its exit code.

        ``on_line(stream, line, pid)`` (if given) sees every line as it is logged,
        ``stream`` being ``"stdout"`` or ``"stderr"``."""
        proc = await self.spawn(argv, env, cwd)
        if proc.stdout is None or proc.stderr is None:  # spawn must pipe both
            await _kill_group(proc)
            raise RuntimeError(
                f"{type(self).__name__}.spawn did not pipe stdout/stderr"
            )
        pumps = [
            asyncio.create_task(
                _pump(
                    proc.stdout,
                    stdout_log,
                    sys.stdout.buffer,
                    on_line,
                    "stdout",
                    proc.pid,
                )
            ),
            asyncio.create_task(
                _pump(
                    proc.stderr,
                    stderr_log,
                    sys.stderr.buffer,
                    on_line,
                    "stderr",
                    proc.pid,
                )
            ),
        ]
        try:
            while True:
                try:
                    code = await asyncio.wait_for(
                        asyncio.shield(proc.wait()), HEARTBEAT_SECONDS
                    )
                    break
                except asyncio.TimeoutError:
                    heartbeat()
            await asyncio.gather(*pumps)
            return code
        except BaseException:
            await _kill_group(proc)
            for pump in pumps:
                pump.cancel()
            raise


class SubprocessLauncher(Launcher):
    """A fresh ``python`` per task (the reference mode)."""

    name = "subprocess"

    def __init__(self, python: str = sys.executable):
        self.python = python

    async def spawn(self, argv, env, cwd):
        return await asyncio.create_subprocess_exec(
            self.python,
            *argv,
            cwd=str(cwd),
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            preexec_fn=functools.partial(die_with_parent, os.getpid()),
        )


async def _pump(
    stream: asyncio.StreamReader, log: Path, echo, on_line=None, name="", pid=0
) -> None:
    """Copy lines to ``log`` in mflog format, raw to the worker's own stream (with
    MF_TEMPORAL_ECHO_TASKS=1), and to ``on_line``."""
    source = TASK_LOG_SOURCE.encode("ascii")
    with open(log, "ab", buffering=0) as out:
        while True:
            line = await _readline(stream)
            if not line:
                return
            out.write(decorate(source, line))
            if ECHO_TASK_OUTPUT:
                echo.write(line)
                echo.flush()
            if on_line is not None:
                on_line(name, line, pid)


async def _readline(stream: asyncio.StreamReader) -> bytes:
    """The next line however long it is (``readline`` fails past the stream's limit,
    while Metaflow's runtime reads lines of any length); b"" at the end."""
    parts = []
    while True:
        try:
            parts.append(await stream.readuntil(b"\n"))
        except asyncio.IncompleteReadError as end:
            parts.append(end.partial)
        except asyncio.LimitOverrunError as long:
            parts.append(await stream.readexactly(max(long.consumed, 1)))
            continue
        return b"".join(parts)


# Whether workers mirror task output on their own stdout/stderr.
ECHO_TASK_OUTPUT = os.environ.get("MF_TEMPORAL_ECHO_TASKS", "") == "1"


async def _kill_group(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the task's process group, SIGKILL it after a grace period."""
    if proc.returncode is not None:
        return
    for sig, grace in ((signal.SIGTERM, KILL_GRACE_SECONDS), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        if grace is None:
            break
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), grace)
            return
        except asyncio.TimeoutError:
            continue
    await proc.wait()
