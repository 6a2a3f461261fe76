"""End-to-end behaviour of generated workflows beyond plain equality with Metaflow:
typed parameters, run ids, failures."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from e2e import artifacts_by_step, load_module, run_locally, run_on_temporal
from helpers import EXAMPLES, ROOT
from temporalio.client import WorkflowFailureError

pytestmark = pytest.mark.e2e
FLOWS = ROOT / "tests" / "flows"


def _client_run(pathspec):
    from metaflow import Run, namespace

    namespace(None)
    return Run(pathspec)


def test_parameters_of_every_type(tmp_path, temporal_env, mf_env):
    flow = EXAMPLES / "parameters.py"
    local = run_locally(
        flow,
        "--count",
        "7",
        "--scale",
        "2.5",
        "--verbose",
        "True",
        "--config",
        '{"a": 2, "b": [1, 2]}',
        "--learning-rate",
        "0.5",
        "--who",
        "temporal",
    )
    module = load_module(flow, tmp_path / "out")
    params = module.PARAMS(
        count=7,
        scale=2.5,
        verbose=True,
        config={"a": 2, "b": [1, 2]},
        learning_rate=0.5,
        who="temporal",
    )
    result, _ = run_on_temporal(temporal_env, module, params)
    assert not isinstance(result, BaseException), result
    assert artifacts_by_step(result.pathspec) == artifacts_by_step(local)
    start = _client_run(result.pathspec)["start"].task
    assert (start["count"].data, start["verbose"].data) == (7, True)


def test_run_ids_are_unique_for_runs_and_long_flow_names(
    tmp_path, temporal_env, mf_env
):
    ids = []
    for name in (
        "a_flow_with_a_rather_long_name_one",
        "a_flow_with_a_rather_long_name_two",
    ):
        module = load_module(FLOWS / f"{name}.py", tmp_path / "out")
        for _ in range(2):
            result, _ = run_on_temporal(temporal_env, module)
            assert not isinstance(result, BaseException), result
            ids.append(result.run_id)
            assert _client_run(result.pathspec)["start"].task["value"].data in (1, 2)
    assert len(set(ids)) == 4
    assert all(
        i.startswith("temporal-") and len(i) == len("temporal-") + 36 for i in ids
    )


def _pids_running(pattern: str) -> list[str]:
    done = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return done.stdout.split()


def test_failing_step_fails_the_workflow_and_cancels_siblings(
    tmp_path, temporal_env, mf_env
):
    module = load_module(FLOWS / "failing_branch_flow.py", tmp_path / "out")
    started = time.monotonic()
    error, handle = run_on_temporal(temporal_env, module)
    elapsed = time.monotonic() - started
    assert isinstance(error, WorkflowFailureError)
    message = str(error.cause)
    assert "step boom failed" in message
    assert "FailingBranchFlow/temporal-" in message and "/boom/boom" in message
    assert "boom failed on purpose" in message
    assert elapsed < 40, "the sibling branch must be cancelled, not awaited"
    run = _client_run(f"FailingBranchFlow/temporal-{handle.result_run_id}")
    assert not run.successful
    steps = {s.id for s in run}
    assert "join" not in steps and "end" not in steps
    assert not run["boom"].task.successful
    time.sleep(3)
    assert not _pids_running(
        "failing_branch_flow.py.*step slow"
    ), "the cancelled task must be killed"


def test_wide_foreach_runs_in_chunked_child_workflows(tmp_path, temporal_env, mf_env):
    from mf_temporal_codegen.runtime import RunOptions

    flow = EXAMPLES / "foreach_multistep.py"
    local = run_locally(flow)
    module = load_module(flow, tmp_path / "out")
    options = RunOptions(max_workers=2, inline_activity_limit=2, chunk_activity_limit=3)
    result, handle = run_on_temporal(temporal_env, module, options=options)
    assert not isinstance(result, BaseException), result
    assert artifacts_by_step(result.pathspec) == artifacts_by_step(local)

    async def children():
        names = []
        async for wf in temporal_env.client.list_workflows(
            f'WorkflowType = "{module.FLOW.name}.foreach_load"'
        ):
            names.append(wf.id)
        return names

    # 3 splits x 3 body steps, 3 activities per chunk: one child per split.
    deadline = time.monotonic() + 20
    found = []
    while time.monotonic() < deadline and len(found) < 3:
        found = [
            n for n in temporal_env.run(children()) if n.startswith(handle.id + "/")
        ]
        time.sleep(0.5)
    assert len(found) == 3, found


def test_long_loop_moves_to_a_child_workflow_that_continues_as_new(
    tmp_path, temporal_env, mf_env
):
    """With a tiny history limit the loop hands over to a child workflow at once,
    and the child continues as new after every iteration; the run is unchanged."""
    from mf_temporal_codegen.runtime import RunOptions

    flow = EXAMPLES / "recursive_switch.py"
    local = run_locally(flow)
    module = load_module(flow, tmp_path / "out")
    result, handle = run_on_temporal(
        temporal_env, module, options=RunOptions(loop_history_limit=5)
    )
    assert not isinstance(result, BaseException), result
    assert artifacts_by_step(result.pathspec) == artifacts_by_step(local)
    assert result.tasks == {"end": 1, "loop": 3, "start": 1}

    async def loop_runs():
        runs = []
        query = f'WorkflowType = "{module.FLOW.name}.loop"'
        async for wf in temporal_env.client.list_workflows(query):
            if wf.id.startswith(handle.id + "/"):
                runs.append(wf.status.name)
        return sorted(runs)

    deadline = time.monotonic() + 20
    runs = []
    while time.monotonic() < deadline and len(runs) < 2:
        runs = temporal_env.run(loop_runs())
        time.sleep(0.5)
    # iteration 1 in the first execution, iteration 2 after continue-as-new
    assert runs == ["COMPLETED", "CONTINUED_AS_NEW"]


def test_retry_catch_and_timeout_attempts_match_metaflow(
    tmp_path, temporal_env, mf_env
):
    """Each retry is a new attempt of the same task, as under `python flow.py run`;
    @catch keeps the exception (and gets an extra attempt for a crashed process);
    a task that overruns @timeout is retried."""
    from metaflow import Task

    flow = FLOWS / "retry_flow.py"
    local = run_locally(flow)
    module = load_module(flow, tmp_path / "out")
    # user-code attempts: @retry(times=3); @catch adds 3 for platform errors
    assert (module.FLAKY.retries, module.FLAKY.error_retries) == (3, 0)
    assert (module.CRASHY.retries, module.CRASHY.error_retries) == (0, 3)
    result, _ = run_on_temporal(temporal_env, module)
    assert not isinstance(result, BaseException), result
    skip = ("failure", "crash")
    assert artifacts_by_step(result.pathspec, skip) == artifacts_by_step(local, skip)
    ours, theirs = _client_run(result.pathspec), _client_run(local)
    attempts = {"start": 0, "flaky": 2, "caught": 1, "crashy": 1, "slow": 1, "end": 0}
    # a task @catch rescued is finished but not `successful`, in Metaflow too
    caught = {"caught", "crashy"}
    for run in (ours, theirs):
        assert run.successful
        for step, last in attempts.items():
            tasks = list(run[step])
            assert len(tasks) == 1, step  # retries are attempts of one task
            task = tasks[0]
            assert task.current_attempt == last, (run, step)
            assert (task.finished, task.successful) == (True, step not in caught), step
    flaky = ours["flaky"].task
    for attempt in (0, 1):
        earlier = Task(flaky.pathspec, attempt=attempt)
        assert not earlier.successful
        assert f"transient failure {attempt}" in earlier.stderr
    assert "flaky attempt 2" in flaky.stdout
    caught = ours["caught"].task
    assert caught["failure"].data.type == "builtins.ValueError"
    assert "always fails, attempt 1" in str(caught["failure"].data.exception)
    crash = ours["crashy"].task["crash"].data
    assert crash.type == "metaflow.plugins.catch_decorator.FailureHandledByCatch"
    slow = Task(ours["slow"].task.pathspec, attempt=0)
    assert "TimeoutException" in slow.stderr or "timed out" in slow.stderr.lower()


def _fresh_copy(folder, tmp_path, name):
    import shutil

    copy = tmp_path / name
    shutil.copytree(folder, copy)
    return copy


def test_configs_are_resolved_once_per_run_and_reach_every_task(
    tmp_path, temporal_env, mf_env, monkeypatch
):
    """The start step rewrites the config file: later tasks still see the values the
    run started with, on Temporal as under `python flow.py run` (both started in
    the flow's folder: the config file and the one the step writes are relative)."""
    folder = FLOWS / "config"
    monkeypatch.chdir(_fresh_copy(folder, tmp_path, "local"))
    local = run_locally(Path("config_flow.py").resolve())
    copy = _fresh_copy(folder, tmp_path, "temporal")
    monkeypatch.chdir(copy)
    module = load_module(copy / "config_flow.py", tmp_path / "out")
    result, _ = run_on_temporal(temporal_env, module)
    assert not isinstance(result, BaseException), result
    ours = artifacts_by_step(result.pathspec)
    assert ours == artifacts_by_step(local)
    assert ours["join"][0]["seen"] == [
        ("original", "fast", 1, "original"),
        ("original", "fast", 2, "original"),
    ]
    assert ours["end"][0]["final"] == ("original", "fast")


def test_generation_time_config_overrides_reach_every_task(
    tmp_path, temporal_env, mf_env, monkeypatch
):
    """--config NAME PATH and --config-value NAME VALUE at generation time: read when
    each run starts (by Metaflow's init), then the same values in every task. PATH is
    relative to the flow's folder in the module, wherever the worker runs."""
    copy = _fresh_copy(FLOWS / "config", tmp_path, "temporal")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    shutil.copy(copy / "settings.json", "settings.json")  # the flow's default config
    module = load_module(
        copy / "config_flow.py",
        tmp_path / "out",
        configs=(("settings", copy / "prod.json"),),
        config_values=(("mode", "careful"),),
    )
    assert module.FLOW.init_options == (
        "--config",
        "settings",
        "prod.json",
        "--config-value",
        "mode",
        "careful",
    )
    result, _ = run_on_temporal(temporal_env, module)
    assert not isinstance(result, BaseException), result
    ours = artifacts_by_step(result.pathspec)
    assert ours["start"][0]["seen"] == ["prod"]
    assert ours["join"][0]["seen"] == [("prod", "careful", 3, "prod")]
    assert ours["end"][0]["final"] == ("prod", "careful")


def test_card_and_project_decorators_reach_the_task(
    tmp_path, temporal_env, mf_env, monkeypatch
):
    """Decorators Metaflow applies inside the task work unchanged: @card renders a
    card the Client API finds, @project names the project in `current`."""
    from metaflow.cards import get_cards

    # Metaflow's card command stores local cards under the .metaflow folder found
    # from the task's cwd: tasks run where the worker was started, so start it (as
    # one runs `python examples/decorated.py run`) where the datastore is.
    monkeypatch.chdir(mf_env)
    module = load_module(EXAMPLES / "decorated.py", tmp_path / "out")
    result, _ = run_on_temporal(temporal_env, module)
    assert not isinstance(result, BaseException), result
    run = _client_run(result.pathspec)
    cards = get_cards(run["start"].task)
    assert len(cards) == 1 and "DecoratedFlow" in cards[0].get()
    assert run["start"].task["project_name"].data == "demo_project"
    assert "project:demo_project" in run.system_tags


def test_tasks_run_where_the_run_was_started(
    tmp_path, temporal_env, mf_env, monkeypatch
):
    """Started from the project root with a relative PYTHONPATH, the flow (in a
    subfolder) reads a data file by a path relative to that root: on Temporal as
    under `PYTHONPATH=lib python pipelines/relative_flow.py run` from there."""
    project = _fresh_copy(FLOWS / "relative_paths", tmp_path, "project")
    monkeypatch.chdir(project)
    monkeypatch.setenv("PYTHONPATH", "lib")
    flow = project / "pipelines" / "relative_flow.py"
    local = run_locally(flow)
    module = load_module(flow, tmp_path / "out")
    for launcher in ("subprocess", "fork"):
        result, _ = run_on_temporal(temporal_env, module, launcher=launcher)
        assert not isinstance(result, BaseException), result
        skip = ("failure", "task")  # task ids: ours are not Metaflow's numbers
        ours = artifacts_by_step(result.pathspec, skip)
        assert ours == artifacts_by_step(local, skip), launcher
        start = ours["start"][0]
        assert start["shouted"] == ["ALPHA!", "BETA!", "GAMMA!"]
        assert (start["argv0"], start["helper_file"]) == (
            "pipelines/relative_flow.py",
            "lib/relative_helper.py",
        )
        assert start["flow_dir_first"] and ours["join"][0]["tasks_differ"]


def test_merge_artifacts_conflict_between_branches_fails_as_natively(
    tmp_path, temporal_env, mf_env
):
    """Each branch of a split is its own task (its own `current.task_id`), so a join's
    merge_artifacts sees the same conflicts as under `python flow.py run`."""
    import re
    import sys
    from pathlib import Path

    flow = FLOWS / "merge_conflict_flow.py"
    id_file = tmp_path / "run-id"
    native = subprocess.run(
        [
            sys.executable,
            str(flow),
            "--no-pylint",
            "--metadata=local",
            "--datastore=local",
            "run",
            "--run-id-file",
            str(id_file),
        ],
        cwd=Path.cwd(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert native.returncode != 0
    conflicts = re.compile(r"conflicting values:.*?\s\[([^\]]*)\]\.", re.S)

    def conflicting(text):
        return set(conflicts.search(text).group(1).split(", "))

    theirs = conflicting(native.stdout + native.stderr)
    assert theirs == {"task", "value"}  # the task ids differ too
    module = load_module(flow, tmp_path / "out")
    error, handle = run_on_temporal(temporal_env, module)
    assert isinstance(error, WorkflowFailureError)
    assert "step join failed" in str(error.cause)
    assert conflicting(str(error.cause)) == theirs
    for pathspec in (
        f"MergeConflictFlow/{id_file.read_text()}",
        f"MergeConflictFlow/temporal-{handle.result_run_id}",
    ):
        run = _client_run(pathspec)
        join = run["join"].task
        assert not join.successful
        # (a MergeArtifactsException)
        assert (
            join.exception.type
            == "metaflow.exception.UnhandledInMergeArtifactsException"
        )
        assert run["a"].task["task"].data != run["b"].task["task"].data
    ours = _client_run(f"MergeConflictFlow/temporal-{handle.result_run_id}")
    assert [ours[s].task.id for s in ("start", "a", "b", "join")] == [
        "start",
        "a",
        "b",
        "join",
    ]


_ARTIFACTS_SCRIPT = """
import json, sys
from metaflow import Run, namespace
namespace(None)
out = {}
for step in Run(sys.argv[1]):
    out[step.id] = sorted(
        (json.dumps({a.id: a.data for a in task if not a.id.startswith("_") and a.id != "task"},
                    sort_keys=True) for task in step))
print(json.dumps(out, sort_keys=True))
"""


def test_run_command_runs_tasks_in_the_users_directory(tmp_path, monkeypatch):
    """`mf-temporal-codegen run pipelines/flow.py` from the project root, no datastore
    configured: tasks run there, the local datastore is created there as
    `python pipelines/flow.py run` creates it, and the printed pathspec opens with
    metaflow.Run from that directory, with the same artifacts as the native run."""
    import json
    import sys

    project = _fresh_copy(FLOWS / "relative_paths", tmp_path, "project")
    env = {k: v for k, v in os.environ.items() if not k.startswith("METAFLOW_")}
    env.update(
        PYTHONPATH="lib", USERNAME="tester", METAFLOW_HOME=str(tmp_path / "home")
    )
    cli = Path(sys.executable).with_name("mf-temporal-codegen")
    done = subprocess.run(
        [str(cli), "run", "pipelines/relative_flow.py", "--tag", "via-run"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1].startswith("pathspec: RelativePathsFlow/temporal-")
    ours = lines[-1].split(" ", 1)[1]
    run_id = ours.split("/")[1]
    assert (project / ".metaflow" / "RelativePathsFlow" / run_id).is_dir()
    # task output, live and prefixed as `python flow.py run` prints it
    assert any(
        f" [{run_id}/start/start (pid " in line and line.endswith("] read 3 words")
        for line in lines
    ), lines
    assert any(
        f" [{run_id}/end/end (pid " in line and line.endswith("] still there: True")
        for line in lines
    ), lines
    native = run_locally(
        project / "pipelines" / "relative_flow.py", cwd=project, env=env
    )

    def artifacts(pathspec):
        read = subprocess.run(
            [sys.executable, "-c", _ARTIFACTS_SCRIPT, pathspec],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert read.returncode == 0, read.stderr
        return json.loads(read.stdout)

    assert artifacts(ours) == artifacts(native)
    assert '"ALPHA!"' in artifacts(ours)["start"][0]
    tags = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from metaflow import Run, namespace; namespace(None); "
            "print(sorted(Run(sys.argv[1]).user_tags))",
            ours,
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert tags.stdout.strip() == "['via-run']", tags.stderr  # a generation option
