"""Metaflow's Deployer API on Temporal, on a real dev server: ``create`` →
``trigger`` → ``status`` / ``run`` → ``terminate`` → ``delete``; ``from_deployment``,
``list_deployed_flows`` and ``get_triggered_run`` from a fresh process that has only
the server's address."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_metaflow_cli import FLOW, _wait_gone, processes_under, record_of

pytestmark = pytest.mark.e2e

NAME = "deploytest.test.dep.DeployFlow"


@pytest.fixture
def work(tmp_path, mf_env, temporal_env, monkeypatch) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(FLOW, repo / FLOW.name)
    monkeypatch.setenv("TEMPORAL_ADDRESS", temporal_env.address)
    monkeypatch.setenv("METAFLOW_HOME", str(tmp_path / "mfhome"))
    monkeypatch.chdir(repo)
    return repo


def test_deployer_cycle_and_a_fresh_process(work, temporal_env):
    from metaflow import Deployer

    deployed = Deployer(
        str(work / FLOW.name), branch="dep", show_output=False
    ).temporal()
    deployed = deployed.create(worker=True)
    try:
        assert deployed.name == NAME and deployed.flow_name == "DeployFlow"
        run = deployed.trigger(count=3)
        run.wait_for_completion(check_interval=1, timeout=240)
        assert run.status == "SUCCEEDED"
        assert run.run.successful and run.run["join"].task.data.total == 0 + 1 + 4

        failing = deployed.trigger(fail=True)
        failing.wait_for_completion(check_interval=1, timeout=240)
        assert failing.status == "FAILED"

        slow = deployed.trigger(sleep=120)
        slow.wait_for_run(check_interval=1, timeout=120)
        assert slow.status == "RUNNING"
        assert slow.terminate()
        slow.wait_for_completion(check_interval=1, timeout=120)
        assert slow.status == "CANCELLED"

        # another process, with only the server's address and the deployment's name
        script = textwrap.dedent(f"""
            import json
            from metaflow import DeployedFlow
            names = [f.name for f in DeployedFlow.list_temporal()]
            flow = DeployedFlow.from_temporal({NAME!r})
            run = flow.trigger(count=4)
            run.wait_for_completion(check_interval=1, timeout=240)
            again = DeployedFlow.get_triggered_temporal_run({NAME!r}, run.pathspec.split("/")[1])
            print(json.dumps({{
                "names": names,
                "status": run.status,
                "again": again.status,
                "total": run.run["join"].task.data.total,
                "pathspec": run.pathspec,
            }}))
            """)
        fresh = work.parent / "elsewhere"
        fresh.mkdir()
        done = subprocess.run(
            [sys.executable, "-c", script],
            cwd=fresh,
            capture_output=True,
            text=True,
            timeout=400,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        seen = json.loads(done.stdout.strip().splitlines()[-1])
        assert NAME in seen["names"]
        assert seen["status"] == seen["again"] == "SUCCEEDED"
        assert seen["total"] == 0 + 1 + 4 + 9
        assert seen["pathspec"].startswith("DeployFlow/temporal-")
    finally:
        assert deployed.delete()
    assert record_of(temporal_env, NAME) is None
    _wait_gone(lambda: processes_under(work))
