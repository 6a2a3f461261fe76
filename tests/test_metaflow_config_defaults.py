"""A module generated without ``--datastore``/``--metadata`` runs every task with the
worker's Metaflow config, as ``python flow.py run`` would there (issue #14): on a
worker whose environment says ``METAFLOW_DEFAULT_DATASTORE=s3`` (a moto S3 server on
loopback) a foreach run stores everything in S3 under the configured sysroot and
nothing in the local datastore, and the Client reads each task's artifacts equal to a
native ``run`` with the same environment."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from e2e import load_module, run_on_temporal
from helpers import EXAMPLES
from s3 import BUCKET, CREDENTIALS, keys

pytestmark = pytest.mark.e2e

SYSROOT = f"s3://{BUCKET}/metaflow"
FLOW_FILE = EXAMPLES / "foreach.py"
FLOW = "ForeachFlow"
# The Client in a fresh interpreter: this one imported Metaflow's config before the
# environment said s3 (it reads it once, at import).
READ_RUNS = textwrap.dedent("""\
    import json, sys
    from metaflow import Run, namespace

    namespace(None)
    found = {}
    for pathspec in sys.argv[1:]:
        steps, stores = {}, set()
        for step in Run(pathspec):
            tasks = []
            for task in step:
                meta = task.metadata_dict
                stores.add((meta.get("ds-type"), meta.get("ds-root")))
                tasks.append(
                    {a.id: a.data for a in task if not a.id.startswith("_")}
                )
            steps[step.id] = sorted(tasks, key=repr)
        found[pathspec] = {
            "successful": Run(pathspec).successful,
            "steps": steps,
            "stores": sorted(map(list, stores)),
        }
    print(json.dumps(found, sort_keys=True))
    """)


def test_tasks_use_the_workers_metaflow_config(
    s3_endpoint, temporal_env, mf_env, tmp_path, monkeypatch
):
    # the worker's environment: Metaflow's config says s3 (metadata stays local)
    monkeypatch.setenv("METAFLOW_HOME", str(tmp_path / "no-metaflow-home"))
    monkeypatch.setenv("METAFLOW_DEFAULT_DATASTORE", "s3")
    monkeypatch.setenv("METAFLOW_DEFAULT_METADATA", "local")
    monkeypatch.setenv("METAFLOW_DATASTORE_SYSROOT_S3", SYSROOT)
    monkeypatch.setenv("METAFLOW_S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-creds"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    # ... which a worker started with it reads when it imports Metaflow (this test
    # process imported it before): its own S3 client (read-back, leases, logs)
    from metaflow import metaflow_config

    monkeypatch.setitem(
        metaflow_config.DATATOOLS_CLIENT_PARAMS, "endpoint_url", s3_endpoint
    )
    monkeypatch.chdir(mf_env)
    local_runs = mf_env / ".metaflow" / FLOW

    module = load_module(FLOW_FILE, tmp_path / "out")
    assert "--datastore" not in " ".join(module.FLOW.top_level)
    source = Path(module.__file__).read_text()
    assert "# Metaflow settings pinned here (given when generating): none." in source

    result, _ = run_on_temporal(temporal_env, module)
    assert not isinstance(result, BaseException), result
    assert result.status == "completed"
    ours = result.pathspec
    run_id = ours.split("/", 1)[1]

    # everything the run stored is in S3 under the configured sysroot ...
    stored = keys(s3_endpoint, f"metaflow/{FLOW}/{run_id}/")
    assert stored
    for step in ("_parameters", "start", "square", "join", "end"):
        assert any(k.split("/")[3] == step for k in stored), step
    assert sum(k.endswith("/0.data.json") for k in stored) == 8  # init + 7 tasks
    assert keys(s3_endpoint, f"metaflow/{FLOW}/data/")  # the artifacts' content
    # ... and nothing but the local metadata (METAFLOW_DEFAULT_METADATA=local) is on
    # the local disk: no task files, no artifacts, no logs, no leases
    written = [p for p in (local_runs / run_id).rglob("*") if p.is_file()]
    assert written
    assert all("_meta" in p.relative_to(local_runs).parts for p in written), written
    assert not (local_runs / "data").exists()
    assert not list((tmp_path / "out").rglob(".metaflow"))

    # the same flow run natively with the same environment
    id_file = Path(tempfile.mkdtemp()) / "run-id"
    native = subprocess.run(
        [sys.executable, str(FLOW_FILE), "--no-pylint", "run"]
        + ["--max-workers", "4", "--run-id-file", str(id_file)],
        cwd=mf_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert native.returncode == 0, native.stdout + native.stderr
    theirs = f"{FLOW}/{id_file.read_text().strip()}"
    assert keys(s3_endpoint, f"metaflow/{theirs}/")

    read = subprocess.run(
        [sys.executable, "-c", READ_RUNS, ours, theirs],
        cwd=mf_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert read.returncode == 0, read.stderr
    runs = json.loads(read.stdout)
    assert runs[ours]["successful"] and runs[theirs]["successful"]
    assert runs[ours]["stores"] == runs[theirs]["stores"] == [["s3", SYSROOT]]
    assert runs[ours]["steps"] == runs[theirs]["steps"]
    assert len(runs[ours]["steps"]["square"]) == 4
    assert runs[ours]["steps"]["end"][0]["total"] == 30
