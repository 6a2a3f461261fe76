"""Worker Versioning of generated workers on a real dev server: the build id follows
the generated module, and the documented upgrade works mid-run: the old worker keeps
its pinned run (child workflows included) on the old graph while new runs go to the
new worker, ``versions`` says when the old worker can stop, an old worker restarted
does not take new runs back, and a stale module refuses to serve."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import generate_into, import_generated
from worker_process import run_module, worker_process

from mf_temporal_codegen.runtime import RunOptions, versioning
from mf_temporal_codegen.runtime.worker import start_workflow

pytestmark = pytest.mark.e2e
WORKER = "out.upgrade_flow_worker"
QUEUE = "metaflow-UpgradeFlow"
V1 = """\
import time

from metaflow import FlowSpec, Parameter, step


class UpgradeFlow(FlowSpec):
    seconds = Parameter("seconds", default=0)

    @step
    def start(self):
        self.items = list(range(4))
        self.next(self.body, foreach="items")

    @step
    def body(self):
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
    UpgradeFlow()
"""
# v2 adds a step between join and end
V2 = V1.replace(
    "self.next(self.end)\n\n    @step\n    def end",
    (
        "self.next(self.extra)\n\n"
        "    @step\n    def extra(self):\n        self.added = True\n        self.next(self.end)\n\n"
        "    @step\n    def end"
    ),
)


def _release(root: Path, source: str) -> Path:
    """A checkout of the flow with its generated modules, as a deployment has."""
    root.mkdir()
    (root / "upgrade_flow.py").write_text(source)
    generate_into(root / "upgrade_flow.py", root / "out")
    return root


def _build_id(release: Path) -> str:
    return versioning.build_id_of(
        (release / "out" / "upgrade_flow_workflow.py").read_bytes()
    )


def _steps(pathspec: str) -> set[str]:
    from metaflow import Run, namespace

    namespace(None)
    run = Run(pathspec)
    assert run.successful, pathspec
    return {step.id for step in run}


def _ran_on(temporal_env, build: str, workflow_type: str) -> int:
    """Workflows of ``workflow_type`` (any status) that ran on version ``build``."""
    query = f'TemporalWorkerDeploymentVersion = "{QUEUE}:{build}" AND WorkflowType = "{workflow_type}"'
    return temporal_env.run(temporal_env.client.count_workflows(query)).count


def test_build_id_follows_the_module_bytes_and_the_runtime_api(tmp_path, monkeypatch):
    release = _release(tmp_path / "v1", V1)
    module = import_generated(release / "out", "upgrade_flow_workflow")
    source = (release / "out" / "upgrade_flow_workflow.py").read_bytes()
    build = versioning.build_id(module)
    assert len(build) == versioning.BUILD_ID_LENGTH and int(build, 16) >= 0
    assert (
        build == versioning.build_id_of(source) == versioning.build_id_of(bytes(source))
    )
    # the same bytes elsewhere (a copy of the release): the same build id
    shutil.copytree(release, tmp_path / "copy")
    assert _build_id(tmp_path / "copy") == build
    assert _build_id(_release(tmp_path / "v2", V2)) != build
    assert versioning.build_id_of(source + b"\n") != build
    monkeypatch.setattr(versioning, "RUNTIME_API", versioning.RUNTIME_API + 1)
    assert versioning.build_id_of(source) != build
    assert (
        versioning.deployment_name("metaflow-proj.user.dev.Flow")
        == "metaflow-proj/user/dev/Flow"
    )


def test_upgrade_mid_run_keeps_the_old_run_on_the_old_version(
    tmp_path, temporal_env, mf_env
):
    v1, v2 = _release(tmp_path / "v1", V1), _release(tmp_path / "v2", V2)
    old, new = _build_id(v1), _build_id(v2)
    address = ("--address", temporal_env.address)
    module = import_generated(v1 / "out", "upgrade_flow_workflow")
    with worker_process(v1, WORKER, *address) as first:
        out = first.wait_for("worker for UpgradeFlow")
        assert (
            f"version {old} of deployment {QUEUE}: current, new runs start here" in out
        )
        # Run A: tiny chunks, so its foreach runs in child workflows too.
        options = RunOptions(inline_activity_limit=1, chunk_activity_limit=2)
        run_a = temporal_env.run(
            start_workflow(
                temporal_env.client,
                module,
                module.PARAMS(seconds=12),
                task_queue=QUEUE,
                options=options,
            )
        )
        with worker_process(v2, WORKER, *address) as second:
            out = second.wait_for("worker for UpgradeFlow")
            assert (
                f"version {new} of deployment {QUEUE}: current, new runs start here"
                in out
            )
            shown = run_module(v2, WORKER, "versions", *address, timeout=120)
            assert shown.returncode == 0, shown.stdout + shown.stderr
            lines = shown.stdout.splitlines()
            assert lines[0] == f"deployment {QUEUE} (this module: {new})"
            assert (
                f"{old}  registered" in lines[1]
                and "runs in flight: 1  draining" in lines[1]
            ), shown.stdout
            assert (
                f"{new} (this module)" in lines[2]
                and "runs in flight: 0  current" in lines[2]
            ), shown.stdout
            # Run B goes to the new version and has the new step.
            done = run_module(v2, WORKER, "trigger", *address, timeout=240)
            assert done.returncode == 0, done.stdout + done.stderr
            run_b = done.stdout.strip().splitlines()[-1].removeprefix("pathspec: ")
            assert _steps(run_b) == {"start", "body", "join", "extra", "end"}
            result_a = temporal_env.run(run_a.result(), timeout=240)
            assert _steps(result_a.pathspec) == {"start", "body", "join", "end"}
            # Run A, its two chunk children, and run B, each on its own version.
            assert _ran_on(temporal_env, old, "UpgradeFlow") == 1
            assert _ran_on(temporal_env, old, "UpgradeFlow.foreach_body") == 2
            assert _ran_on(temporal_env, new, "UpgradeFlow.foreach_body") == 0
            assert _ran_on(temporal_env, new, "UpgradeFlow") == 1
            shown = run_module(v2, WORKER, "versions", *address, timeout=120)
            assert (
                "runs in flight: 0  drained: its workers can be stopped" in shown.stdout
            ), shown.stdout
        assert first.stop() == 0
        # An old worker started again serves old runs only: new runs stay on v2.
        with worker_process(v1, WORKER, *address) as again:
            out = again.wait_for("worker for UpgradeFlow")
        assert (
            f"version {old} of deployment {QUEUE}: serving its pinned runs; " in out
        ), out
        assert f"newer current version {new}" in out, out
        shown = run_module(v1, WORKER, "versions", *address, timeout=120)
        assert (
            f"{new}  registered" in shown.stdout
            and "current: new runs start here" in shown.stdout
        )


def test_worker_refuses_a_stale_module(tmp_path, temporal_env, mf_env):
    release = _release(tmp_path / "v1", V1)
    # the flow changes, the module is not regenerated
    (release / "upgrade_flow.py").write_text(V2)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", WORKER, "--address", temporal_env.address],
        cwd=release,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert (
        "is stale" in done.stderr
        and "regenerate with `mf-temporal-codegen" in done.stderr
    ), done.stderr
    assert "Traceback" not in done.stderr and "worker for" not in done.stdout
    assert time.monotonic() - started < 60
