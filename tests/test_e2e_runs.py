"""End-to-end behaviour of generated workflows beyond plain equality with Metaflow:
typed parameters, run ids, failures."""

from __future__ import annotations

import subprocess
import time

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
        flow, "--count", "7", "--scale", "2.5", "--verbose", "True",
        "--config", '{"a": 2, "b": [1, 2]}', "--learning-rate", "0.5", "--who", "temporal",
    )
    module = load_module(flow, tmp_path / "out")
    params = module.PARAMS(
        count=7, scale=2.5, verbose=True, config={"a": 2, "b": [1, 2]}, learning_rate=0.5, who="temporal"
    )
    result, _ = run_on_temporal(temporal_env, module, params)
    assert not isinstance(result, BaseException), result
    assert artifacts_by_step(result.pathspec) == artifacts_by_step(local)
    start = _client_run(result.pathspec)["start"].task
    assert (start["count"].data, start["verbose"].data) == (7, True)


def test_run_ids_are_unique_for_runs_and_long_flow_names(tmp_path, temporal_env, mf_env):
    ids = []
    for name in ("a_flow_with_a_rather_long_name_one", "a_flow_with_a_rather_long_name_two"):
        module = load_module(FLOWS / f"{name}.py", tmp_path / "out")
        for _ in range(2):
            result, _ = run_on_temporal(temporal_env, module)
            assert not isinstance(result, BaseException), result
            ids.append(result.run_id)
            assert _client_run(result.pathspec)["start"].task["value"].data in (1, 2)
    assert len(set(ids)) == 4
    assert all(i.startswith("temporal-") and len(i) == len("temporal-") + 36 for i in ids)


def _pids_running(pattern: str) -> list[str]:
    done = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return done.stdout.split()


def test_failing_step_fails_the_workflow_and_cancels_siblings(tmp_path, temporal_env, mf_env):
    module = load_module(FLOWS / "failing_branch_flow.py", tmp_path / "out")
    started = time.monotonic()
    error, handle = run_on_temporal(temporal_env, module)
    elapsed = time.monotonic() - started
    assert isinstance(error, WorkflowFailureError)
    message = str(error.cause)
    assert "step boom failed" in message
    assert "FailingBranchFlow/temporal-" in message and "/boom/t" in message
    assert "boom failed on purpose" in message
    assert elapsed < 40, "the sibling branch must be cancelled, not awaited"
    run = _client_run(f"FailingBranchFlow/temporal-{handle.result_run_id}")
    assert not run.successful
    steps = {s.id for s in run}
    assert "join" not in steps and "end" not in steps
    assert not run["boom"].task.successful
    time.sleep(3)
    assert not _pids_running("failing_branch_flow.py.*step slow"), "the cancelled task must be killed"


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
        async for wf in temporal_env.client.list_workflows(f'WorkflowType = "{module.FLOW.name}.foreach_load"'):
            names.append(wf.id)
        return names

    # 3 splits x 3 body steps, 3 activities per chunk: one child per split.
    deadline = time.monotonic() + 20
    found = []
    while time.monotonic() < deadline and len(found) < 3:
        found = [n for n in temporal_env.run(children()) if n.startswith(handle.id + "/")]
        time.sleep(0.5)
    assert len(found) == 3, found
