"""A worker pool on three simulated hosts sharing only the Temporal server, an S3
API (moto on loopback) and the metadata directory (the NFS stand-in of Metaflow's
local metadata): each host has its own copy of the checkout, HOME and TMPDIR, and
its own worker process. Tasks spread over the hosts; a Client in a fourth directory
reads every task, artifacts and logs, equal to a native S3 run of the same flow."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from helpers import ROOT, generate_into
from pool import host_env, workers
from s3 import keys

pytestmark = pytest.mark.e2e

FLOW = ROOT / "tests" / "flows" / "multi_host_flow.py"
WORKER = "out.multi_host_flow_worker"
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
    client_dir = tmp_path / "host4"
    env4 = host_env(tmp_path, "host4", s3_endpoint, shared)
    (client_dir / "work").mkdir()
    with workers(
        tmp_path,
        checkout,
        HOSTS,
        WORKER,
        temporal_env.address,
        queue,
        s3_endpoint,
        shared,
    ) as repos:
        triggered = subprocess.run(
            [sys.executable, "-m", WORKER, "trigger"]
            + ["--address", temporal_env.address, "--task-queue", queue],
            cwd=repos[0],
            env=host_env(tmp_path, "host1-trigger", s3_endpoint, shared),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert triggered.returncode == 0, triggered.stdout + triggered.stderr
        ours = triggered.stdout.split("pathspec: ", 1)[1].split()[0]

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
