"""A worker pool on three simulated hosts sharing only the Temporal server, an S3
API (moto on loopback) and the metadata directory (the NFS stand-in of Metaflow's
local metadata): each host has its own copy of the checkout, HOME and TMPDIR, and
its own worker process. Tasks spread over the hosts; a Client in a fourth directory
reads every task, artifacts and logs, equal to a native S3 run of the same flow."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from helpers import ROOT, generate_into
from s3 import BUCKET, CREDENTIALS, keys

pytestmark = pytest.mark.e2e

FLOW = ROOT / "tests" / "flows" / "multi_host_flow.py"
WORKER = "out.multi_host_flow_worker"
READY = "Ctrl-C to stop"
HOSTS = ("host1", "host2", "host3")

READ = textwrap.dedent("""\
    import json, sys
    from metaflow import Run, namespace

    namespace(None)
    found = {}
    for pathspec in sys.argv[1:]:
        run, steps, hosts, logs = Run(pathspec), {}, {}, {}
        for step in run:
            tasks = []
            for task in step:
                data = {a.id: a.data for a in task if not a.id.startswith("_")}
                hosts[f"{step.id}/{task.id}"] = data.pop("host")
                if step.id == "work":
                    logs[str(data["item"])] = task.stdout
                tasks.append(data)
            steps[step.id] = sorted(tasks, key=repr)
        found[pathspec] = {"ok": run.successful, "steps": steps, "hosts": hosts,
                           "logs": logs}
    print(json.dumps(found, sort_keys=True, default=repr))
    """)


def host_env(root: Path, name: str, s3_endpoint: str, shared: Path) -> dict[str, str]:
    home, tmp = root / name / "home", root / name / "tmp"
    home.mkdir(parents=True)
    tmp.mkdir()
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


def test_three_hosts_share_only_temporal_s3_and_metadata(
    tmp_path, s3_endpoint, temporal_env
):
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    shutil.copy(FLOW, checkout / FLOW.name)
    generate_into(checkout / FLOW.name, checkout / "out")
    shared = tmp_path / "shared-metadata"
    shared.mkdir()
    queue = "multi-host"
    workers, logs = [], []
    try:
        for name in HOSTS:
            repo = tmp_path / name / "repo"
            shutil.copytree(checkout, repo)
            log = tmp_path / f"{name}.log"
            logs.append(log)
            with log.open("wb") as out:
                workers.append(
                    subprocess.Popen(
                        [sys.executable, "-m", WORKER, "worker"]
                        + ["--address", temporal_env.address, "--task-queue", queue],
                        cwd=repo,
                        env=host_env(tmp_path, name, s3_endpoint, shared),
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
        deadline = time.monotonic() + 120
        for worker, log in zip(workers, logs):
            while READY not in log.read_text(errors="replace"):
                assert worker.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.3)
        client_dir = tmp_path / "host4"
        env4 = host_env(tmp_path, "host4", s3_endpoint, shared)
        (client_dir / "work").mkdir()
        triggered = subprocess.run(
            [sys.executable, "-m", WORKER, "trigger"]
            + ["--address", temporal_env.address, "--task-queue", queue],
            cwd=tmp_path / "host1" / "repo",
            env=host_env(tmp_path, "host1-trigger", s3_endpoint, shared),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert triggered.returncode == 0, triggered.stdout + triggered.stderr
        ours = triggered.stdout.split("pathspec: ", 1)[1].split()[0]
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(60)
            except subprocess.TimeoutExpired:
                worker.kill()

    # a native run of the same flow, S3 and the shared metadata too
    id_file = Path(tempfile.mkdtemp()) / "run-id"
    native = subprocess.run(
        [sys.executable, str(checkout / FLOW.name), "--no-pylint", "run"]
        + ["--max-workers", "8", "--run-id-file", str(id_file)],
        cwd=client_dir / "work",
        env={**env4, "SIMULATED_HOST": "native"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert native.returncode == 0, native.stdout + native.stderr
    theirs = f"MultiHostFlow/{id_file.read_text().strip()}"

    read = subprocess.run(
        [sys.executable, "-c", READ, ours, theirs],
        cwd=client_dir / "work",
        env=env4,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert read.returncode == 0, read.stderr
    runs = json.loads(read.stdout)
    mine, native_run = runs[ours], runs[theirs]
    assert mine["ok"] and native_run["ok"]
    assert mine["steps"] == native_run["steps"]
    assert len(mine["steps"]["work"]) == 30
    assert mine["steps"]["gather"][0]["total"] == sum(i * i for i in range(30))
    for i in range(30):
        assert f"square of {i} is {i * i}" in mine["logs"][str(i)]
    ran_on = {host for host in mine["hosts"].values()}
    assert ran_on <= set(HOSTS) and len(ran_on) >= 2, mine["hosts"]
    # nothing but the shared metadata lives on local disks: no local datastore on
    # any host, every task's data in S3
    for name in HOSTS:
        assert not list((tmp_path / name).rglob(".metaflow")), name
    assert keys(s3_endpoint, f"metaflow/{ours}/")
    print("tasks per host:", {h: list(mine["hosts"].values()).count(h) for h in HOSTS})
