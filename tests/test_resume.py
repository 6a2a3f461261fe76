"""Resume on Temporal (``RunOptions.resume``), on a real dev server, checked through
the Metaflow Client: what the origin finished is cloned (Metaflow's
``clone_task_helper``: ``origin-task-id`` recorded, artifacts shared), the rest runs
again, per foreach split; the resumed artifacts equal a native ``python flow.py
resume`` of the same failure."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from e2e import artifacts_by_step, load_module, run_on_temporal
from helpers import ROOT
from temporalio.client import WorkflowFailureError

from mf_temporal_codegen.runtime import RunOptions
from mf_temporal_codegen.runtime.specs import Resume
from mf_temporal_codegen.runtime.worker import running_worker

pytestmark = pytest.mark.e2e
FLOW = ROOT / "tests" / "flows" / "resume" / "resume_flow.py"
# every execution draws a new token: equal only where a task was cloned
NOT_COMPARED = ("failure", "token")


@pytest.fixture
def module(tmp_path, mf_env):
    return load_module(FLOW, tmp_path / "out")


@pytest.fixture
def marker(tmp_path) -> Path:
    path = tmp_path / "fail-while-here"
    path.write_text("")
    return path


def _run(pathspec: str):
    from metaflow import Run, namespace

    namespace(None)
    return Run(pathspec)


def tasks_of(pathspec: str) -> dict[str, dict[str, str | None]]:
    """step -> task id -> the origin task id it was cloned from (None: it ran)."""
    found: dict[str, dict[str, str | None]] = {}
    for step in _run(pathspec):
        for task in step:
            found.setdefault(step.id, {})[task.id] = task.metadata_dict.get(
                "origin-task-id"
            )
    return found


def succeeded_of(pathspec: str) -> dict[str, set[str]]:
    return {step.id: {t.id for t in step if t.successful} for step in _run(pathspec)}


def executed(tasks: dict[str, dict[str, str | None]]) -> set[str]:
    return {f"{s}/{t}" for s, ids in tasks.items() for t, o in ids.items() if not o}


def cloned(tasks: dict[str, dict[str, str | None]]) -> set[str]:
    return {f"{s}/{t}" for s, ids in tasks.items() for t, o in ids.items() if o}


def fail_on_temporal(temporal_env, module, marker: Path, fail_at: str):
    params = module.PARAMS(marker=str(marker), fail_at=fail_at)
    result, handle = run_on_temporal(temporal_env, module, params)
    assert isinstance(result, WorkflowFailureError), result
    return f"ResumeFlow/temporal-{handle.first_execution_run_id}"


def resume_on_temporal(temporal_env, module, origin: str, **resume):
    origin_id = origin.split("/")[1]
    result, _ = run_on_temporal(
        temporal_env,
        module,
        module.PARAMS(),
        options=RunOptions(resume=Resume(origin_id, **resume)),
    )
    assert not isinstance(result, Exception), result
    return result.pathspec


def native(*args: str, fails: bool = False) -> str:
    """``python resume_flow.py <args>`` here (run or resume); the run's pathspec."""
    id_file = Path(tempfile.mkdtemp()) / "run-id"
    done = subprocess.run(
        [sys.executable, str(FLOW), "--no-pylint", "--metadata=local"]
        + ["--datastore=local", *args, "--run-id-file", str(id_file)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert (done.returncode != 0) == fails, done.stdout + done.stderr
    return f"ResumeFlow/{id_file.read_text().strip()}"


@pytest.mark.parametrize(
    "fail_at",
    ["end", "join", "outer:y", "inner:y1"],
    ids=["linear", "after-a-branch", "in-a-foreach", "in-a-nested-foreach"],
)
def test_resume_after_a_failure_equals_metaflow_resume(
    module, marker, fail_at, temporal_env
):
    origin = fail_on_temporal(temporal_env, module, marker, fail_at)
    local_origin = native(
        "run", "--marker", str(marker), "--fail_at", fail_at, fails=True
    )
    marker.unlink()
    resumed = resume_on_temporal(temporal_env, module, origin)
    local = native("resume", "--origin-run-id", local_origin.split("/")[1])

    assert _run(resumed).successful
    assert _run(resumed).origin_pathspec == origin
    assert artifacts_by_step(resumed, NOT_COMPARED) == artifacts_by_step(
        local, NOT_COMPARED
    )
    # Metaflow's rule, task by task: a task the origin finished is cloned when all
    # its inputs were; everything else ran again
    tasks, before = tasks_of(resumed), succeeded_of(origin)
    for step, ids in tasks.items():
        for task, origin_task in ids.items():
            if origin_task:
                assert origin_task == task and task in before.get(step, ())
                origin_token = _run(origin)[step][task]["token"].data
                assert _run(resumed)[step][task]["token"].data == origin_token
    failed_step, _, split = fail_at.partition(":")
    assert any(t.startswith(failed_step + "/") for t in executed(tasks))
    assert "start/start" in cloned(tasks)
    if split:  # only the failed split of the foreach ran again
        again = {t for t in executed(tasks) if t.startswith(failed_step + "/")}
        assert len(again) == 1, again
        assert len(tasks[failed_step]) == (2 if failed_step == "outer" else 4)


def test_resume_after_a_cancel(module, marker, temporal_env):
    """A cancelled run: the tasks it killed are failed, the rest cloned."""
    params = module.PARAMS(marker=str(marker), fail_at="inner:y1", sleep=300)
    result, handle = _cancel_when_running(temporal_env, module, params, "inner-1-1")
    assert isinstance(result, WorkflowFailureError), result
    origin = f"ResumeFlow/temporal-{handle.first_execution_run_id}"
    assert not _run(origin)["inner"]["inner-1-1"].successful
    marker.unlink()
    resumed = resume_on_temporal(temporal_env, module, origin)
    tasks = tasks_of(resumed)
    assert _run(resumed).successful
    assert "inner/inner-1-1" in executed(tasks)
    assert {"start/start", "a/a", "b/b", "join/join", "prepare/prepare"} <= cloned(
        tasks
    )
    assert not executed(tasks) & {
        "start/start",
        "a/a",
        "b/b",
        "join/join",
        "prepare/prepare",
    }


def _cancel_when_running(temporal_env, module, params, task: str):
    """Start ``params``' run, cancel it once task ``inner/task`` has started."""
    from metaflow.exception import MetaflowNotFound

    async def go():
        queue = f"q-{uuid.uuid4().hex[:10]}"
        async with running_worker(
            temporal_env.client, module, task_queue=queue, launcher="subprocess"
        ):
            handle = await temporal_env.client.start_workflow(
                module.WORKFLOW.run,
                args=[params, None],
                id=f"resume-cancel-{uuid.uuid4().hex[:8]}",
                task_queue=queue,
            )
            run = f"ResumeFlow/temporal-{handle.first_execution_run_id}"
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                try:
                    if task in {t.id for t in _run(run)["inner"]}:
                        break
                except (MetaflowNotFound, KeyError):
                    pass
                await asyncio.sleep(0.5)
            await handle.cancel()
            try:
                return await handle.result(), handle
            except Exception as exc:
                return exc, handle

    return temporal_env.run(go(), timeout=600)


def test_step_to_rerun_runs_it_and_what_follows(module, temporal_env):
    result, handle = run_on_temporal(temporal_env, module, module.PARAMS())
    origin = result.pathspec
    resumed = resume_on_temporal(temporal_env, module, origin, step_to_rerun="outer")
    tasks = tasks_of(resumed)
    assert cloned(tasks) == {
        "start/start",
        "a/a",
        "b/b",
        "join/join",
        "prepare/prepare",
    }
    assert {t.split("/")[0] for t in executed(tasks)} == {
        "outer",
        "inner",
        "inner_join",
        "outer_join",
        "end",
    }
    assert _run(resumed)["end"].task["cells"].data == ["x0", "x1", "y0", "y1"]


def test_a_changed_parameter_clones_nothing(module, marker, temporal_env):
    """Every task reads every parameter: with another value nothing is reused."""
    origin = fail_on_temporal(temporal_env, module, marker, "end")
    resumed = resume_on_temporal(
        temporal_env, module, origin, parameters={"fail_at": "nowhere"}
    )
    tasks = tasks_of(resumed)
    assert not cloned(tasks)
    assert _run(resumed)["start"].task["fail_at"].data == "nowhere"
    # the parameters not given keep the origin's values
    assert _run(resumed)["start"].task["marker"].data == str(marker)
    assert _run(resumed).origin_pathspec == origin


def test_resume_of_an_unknown_run_fails_clearly(module, temporal_env):
    result, _ = run_on_temporal(
        temporal_env,
        module,
        module.PARAMS(),
        options=RunOptions(resume=Resume("temporal-nothing-here")),
    )
    assert isinstance(result, WorkflowFailureError)
    message = str(result.cause.cause if result.cause.cause else result.cause)
    assert "temporal-nothing-here has no finished task" in message, message


def test_resume_through_the_deployer_and_the_cli(
    tmp_path, mf_env, temporal_env, monkeypatch
):
    """``DeployedFlow.resume`` (which runs ``python flow.py temporal resume``) and
    the command itself: latest run by default, STEP-TO-RERUN, a bad step refused."""
    from metaflow import Deployer

    monkeypatch.setenv("TEMPORAL_ADDRESS", temporal_env.address)
    monkeypatch.setenv("METAFLOW_HOME", str(tmp_path / "mfhome"))
    repo = tmp_path / "repo"
    repo.mkdir()
    flow = repo / FLOW.name
    flow.write_text(FLOW.read_text())
    marker = tmp_path / "fail-while-here"
    marker.write_text("")
    monkeypatch.chdir(repo)
    deployed = Deployer(str(flow), show_output=False).temporal().create(worker=True)
    try:
        failing = deployed.trigger(marker=str(marker), fail_at="inner:y1")
        failing.wait_for_completion(check_interval=1, timeout=240)
        assert failing.status == "FAILED"
        marker.unlink()
        resumed = deployed.resume(origin_run_id=failing.pathspec.split("/")[1])
        resumed.wait_for_completion(check_interval=1, timeout=240)
        assert resumed.status == "SUCCEEDED"
        tasks = tasks_of(resumed.pathspec)
        assert {t for t in executed(tasks) if t.startswith("inner/")} == {
            "inner/inner-1-1"
        }
        assert resumed.run.origin_pathspec == failing.pathspec

        # the command line: the latest run by default, a step to rerun
        cli = [sys.executable, flow.name, "--no-pylint", "temporal", "resume"]
        id_file = tmp_path / "run-id"
        done = subprocess.run(
            [*cli, "prepare", "--run-id-file", str(id_file)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"resuming run-id {resumed.pathspec.split('/')[1]}." in done.stderr
        again = f"ResumeFlow/{id_file.read_text()}"
        _wait_successful(again)
        assert cloned(tasks_of(again)) == {"start/start", "a/a", "b/b", "join/join"}

        bad = subprocess.run(
            [*cli, "nosuchstep"], capture_output=True, text=True, timeout=300
        )
        assert bad.returncode != 0
        assert "invalid step name nosuchstep" in bad.stdout + bad.stderr
    finally:
        deployed.delete()


def _wait_successful(pathspec: str, timeout: float = 240) -> None:
    from metaflow.exception import MetaflowNotFound

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if _run(pathspec).successful:
                return
        except MetaflowNotFound:
            pass
        time.sleep(1)
    raise AssertionError(f"{pathspec} did not succeed in {timeout}s")


def test_compensations_run_for_resumed_tasks_only(tmp_path, temporal_env, mf_env):
    """The origin's compensations ran with it; in the resumed run, a failure undoes
    what ran again (b), never what was cloned (start, a)."""
    ledger = tmp_path / "ledger"
    module = load_module(
        ROOT / "tests" / "flows" / "saga_linear_flow.py", tmp_path / "s"
    )
    result, handle = run_on_temporal(
        temporal_env, module, module.PARAMS(ledger=str(ledger))
    )
    assert isinstance(result, WorkflowFailureError), result
    origin_id = f"temporal-{handle.first_execution_run_id}"
    before = len(ledger.read_text().splitlines())
    result, handle = run_on_temporal(
        temporal_env,
        module,
        module.PARAMS(),
        options=RunOptions(resume=Resume(origin_id, step_to_rerun="b")),
    )
    assert isinstance(result, WorkflowFailureError), result
    assert ledger.read_text().splitlines()[before:] == [
        "do b",
        "do end",
        "undo b succeeded 111",
    ]
    resumed = _run(f"SagaLinearFlow/temporal-{handle.first_execution_run_id}")
    assert resumed["a"].task.metadata_dict.get("origin-task-id") == "a"
