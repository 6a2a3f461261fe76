"""Shared helpers for the test-suite."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

from mf_temporal_codegen.pipeline import generate
from mf_temporal_codegen.write import write_all

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
# Examples that are one flow per file and run under `python flow.py run`.
EXAMPLE_FILES = sorted(p for p in EXAMPLES.glob("*.py"))


def generate_into(flow_file: Path, outdir: Path, **options) -> dict[Path, str]:
    """Generate the modules of ``flow_file`` into ``outdir`` and write them."""
    from mf_temporal_codegen.pipeline import Options

    files = generate([flow_file], outdir, Options(**options))
    write_all(files)
    return files


def import_generated(outdir: Path, module_name: str):
    """Import a generated module by name with ``outdir`` on sys.path (as the
    Temporal sandbox re-imports it by name)."""
    if str(outdir) not in sys.path:
        sys.path.insert(0, str(outdir))
    sys.modules.pop(module_name, None)
    importlib.invalidate_caches()
    return importlib.import_module(module_name)


def codegen(*args: str | Path) -> subprocess.CompletedProcess:
    """The real CLI, run from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "mf_temporal_codegen", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def metaflow_check(
    flow: Path, tmp_path: Path, *top_level: str
) -> subprocess.CompletedProcess:
    """`python FLOW <top_level> check` with an isolated Metaflow home and datastore."""
    env = dict(
        os.environ,
        USERNAME="tester",
        METAFLOW_HOME=str(tmp_path / "home"),
        METAFLOW_DEFAULT_DATASTORE="local",
        METAFLOW_DATASTORE_SYSROOT_LOCAL=str(tmp_path),
    )
    return subprocess.run(
        [sys.executable, str(ROOT / flow), "--no-pylint", *top_level, "check"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def free_port() -> int:
    """A TCP port nothing listens on now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TemporalServer:
    """A ``temporal server start-dev`` process on a fixed port and database file, so
    a test can stop it (any signal) and start it again with its state."""

    def __init__(self, db: Path, port: int | None = None):
        self.db = db
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        import time

        from mf_temporal_codegen.runtime.devserver import (
            search_attribute_args,
            temporal_cli,
        )

        self.proc = subprocess.Popen(
            [
                temporal_cli(),
                "server",
                "start-dev",
                "--headless",
                "--log-level",
                "error",
                "--ip",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--db-filename",
                str(self.db),
                *search_attribute_args(),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert (
                self.proc.poll() is None
            ), f"temporal server exited with {self.proc.returncode}"
            ready = subprocess.run(
                [
                    temporal_cli(),
                    "operator",
                    "namespace",
                    "describe",
                    "default",
                    "--address",
                    self.address,
                ],
                capture_output=True,
            )
            if ready.returncode == 0:
                return
            time.sleep(0.5)
        raise AssertionError(
            f"temporal server on {self.address} not ready within {timeout}s"
        )

    def stop(self, sig: int | None = None) -> None:
        """End the server with ``sig`` (default SIGTERM) and wait for it."""
        import signal

        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM if sig is None else sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
