"""Simulated hosts of a worker pool on this machine: each has its own directory,
HOME, TMPDIR and worker process, and shares only the Temporal server, S3 (moto) and
a metadata directory (the NFS stand-in of Metaflow's local metadata)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from s3 import BUCKET, CREDENTIALS

READY = "Ctrl-C to stop"  # a worker's start-up line


def host_env(root: Path, name: str, s3_endpoint: str, shared: Path) -> dict[str, str]:
    """The environment of simulated host ``name`` (directories under ``root``)."""
    home, tmp = root / name / "home", root / name / "tmp"
    home.mkdir(parents=True, exist_ok=True)
    tmp.mkdir(exist_ok=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("METAFLOW_", "AWS_", "TEMPORAL_"))
    }
    return {
        **env,
        **CREDENTIALS,
        "HOME": str(home),
        "TMPDIR": str(tmp),
        "METAFLOW_HOME": str(home / ".metaflowconfig"),
        "SIMULATED_HOST": name,
        "USERNAME": "tester",
        "METAFLOW_DEFAULT_DATASTORE": "s3",
        "METAFLOW_DATASTORE_SYSROOT_S3": f"s3://{BUCKET}/metaflow",
        "METAFLOW_S3_ENDPOINT_URL": s3_endpoint,
        "METAFLOW_DEFAULT_METADATA": "local",
        # the one shared local directory: Metaflow's local metadata (an NFS mount)
        "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(shared),
        "AWS_CONFIG_FILE": str(home / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
    }


@contextmanager
def workers(
    root: Path,
    checkout: Path,
    hosts: Sequence[str],
    worker_module: str,
    address: str,
    queue: str,
    s3_endpoint: str,
    shared: Path,
) -> Iterator[list[Path]]:
    """One worker per host, each in its own copy of ``checkout``, serving ``queue``;
    yields the hosts' checkout copies once every worker serves, stops them after."""
    procs, logs, repos = [], [], []
    try:
        for name in hosts:
            repo = root / name / "repo"
            if not repo.exists():
                shutil.copytree(checkout, repo)
            repos.append(repo)
            log = root / f"{name}.log"
            logs.append(log)
            with log.open("wb") as out:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", worker_module, "worker"]
                        + ["--address", address, "--task-queue", queue],
                        cwd=repo,
                        env=host_env(root, name, s3_endpoint, shared),
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
        deadline = time.monotonic() + 120
        for proc, log in zip(procs, logs):
            while READY not in log.read_text(errors="replace"):
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.3)
        yield repos
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
