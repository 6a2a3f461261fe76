"""Identifiers in generated code are computed once, collision-free; templates fail
loudly on a plan node they do not know."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from e2e import artifacts_by_step, load_module, run_locally, run_on_temporal
from helpers import generate_into

from mf_temporal_codegen import render
from mf_temporal_codegen.plan import Names

FLOW = Path(__file__).parent / "flows" / "collisions.py"


def test_names_get_deterministic_suffixes():
    names = Names(["start", "run", "run_", "flow", "FLOW", "class", "x_tasks"])
    assert [names.var(s) for s in ["start", "run", "run_", "class"]] == [
        "start", "run_", "run__", "class_",
    ]  # fmt: skip
    assert names.const("flow") == "FLOW_STEP" and names.const("FLOW") == "FLOW_STEP_2"
    assert names.local("x_tasks") == "x_tasks_" and names.local("y_tasks") == "y_tasks"


def test_colliding_step_names_generate_distinct_identifiers(tmp_path):
    files = generate_into(FLOW, tmp_path / "out")
    source = next(
        text for path, text in files.items() if path.stem.endswith("_workflow")
    )
    compile(source, "collision_flow_workflow.py", "exec")
    assert 'FLOW_STEP = rt.StepSpec("flow")' in source
    assert "x_tasks = await run.step(X_TASKS, x_tasks_)" in source
    assert re.search(r"x_tasks_ = await run\.foreach\(", source)
    assert "run__task = group_.create_task(self.branch_run, flow)" not in source
    assert "run__task = group.create_task(self.branch_run, flow)" in source


@pytest.mark.e2e
def test_colliding_flow_runs_like_metaflow(tmp_path, temporal_env, mf_env, monkeypatch):
    monkeypatch.chdir(mf_env)
    theirs = artifacts_by_step(run_locally(FLOW))
    module = load_module(FLOW, tmp_path / "out")
    result, _ = run_on_temporal(temporal_env, module)
    assert not isinstance(result, BaseException), result
    assert artifacts_by_step(result.pathspec) == theirs


def test_unknown_plan_node_fails_loudly():
    macros = render._env().get_template("statements.j2").module
    with pytest.raises(TypeError, match="cannot render plan node"):
        macros.block([object()], 0, "flow.py")
