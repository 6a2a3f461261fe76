"""Values only Metaflow can compute: generated code names them, Metaflow evaluates
them (deploy-time defaults before init, step facts when each run starts, the
@project name when the worker starts), and a worker refuses a stale module."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from e2e import artifacts_by_step, load_module, run_locally, run_on_temporal
from helpers import ROOT, generate_into

from mf_temporal_codegen.runtime import specs as orch
from mf_temporal_codegen.runtime.module_check import problems
from mf_temporal_codegen.runtime.worker import StaleModule, check_flow, deployment_of

FLOW_DIR = ROOT / "tests" / "flows" / "deferred"


@pytest.fixture
def flow_copy(tmp_path, monkeypatch) -> Path:
    """The deferred flow's folder copied to tmp, and the cwd there (tasks run in the
    worker's working directory, as `python flow.py run` runs them)."""
    folder = tmp_path / "proj"
    shutil.copytree(FLOW_DIR, folder)
    monkeypatch.chdir(folder)
    return folder / "deferred_flow.py"


def _source(module) -> str:
    return Path(module.__file__).read_text()


def test_generated_module_names_what_metaflow_evaluates(flow_copy, tmp_path):
    module = load_module(flow_copy, tmp_path / "out")
    text = _source(module)
    # the mutator makes every step take its facts from Metaflow, and says so once
    assert "@retry_everything (deferred_flow.py:" in text
    for spec in ("START", "GREET", "FLAKY", "END"):
        assert getattr(module, spec).from_metaflow, spec
    assert '@retry(times=config_expr("cfg.retries")) (deferred_flow.py:' in text
    assert "@environment(vars=" in text and "SHARED_ENV" in text
    # deploy-time function default: evaluated by Metaflow before init
    assert module.FLOW.deploy_time_defaults == ("home", "who")
    assert "Default: default_who (deferred_flow.py:" in text
    assert "Default: cfg.alpha (deferred_flow.py:" in text
    assert "evaluated by Metaflow when each run starts" in text
    # IncludeFile is a path
    assert module.PARAMS().notes == "notes.txt"
    # @project(name=config_expr(...)): named by Metaflow when the worker starts
    assert module.PROJECT.name is None and module.TASK_QUEUE is None
    assert 'config_expr("cfg.project")' in text


@pytest.mark.e2e
def test_run_equals_native_run(flow_copy, tmp_path, temporal_env, mf_env):
    module = load_module(flow_copy, tmp_path / "out")
    deployment = temporal_env.run(deployment_of(module))
    assert deployment.name == "deferred_demo.user.tester.DeferredFlow"
    local = run_locally(flow_copy)
    result, _ = run_on_temporal(temporal_env, module)
    assert isinstance(result, orch.RunResult), result
    ours, theirs = artifacts_by_step(result.pathspec), artifacts_by_step(local)
    assert ours == theirs
    start = ours["start"][0]
    assert start["values"] == (
        0.25,
        "who-of-DeferredFlow",
        "nowhere",
        "line one\nline two\n",
    )
    assert ours["greet"][0]["greeting"] == "hello/"
    assert ours["end"][0]["project"] == "deferred_demo"
    # attempts as natively: @retry(times=config_expr) -> 3 attempts of start, the
    # mutator's @retry(times=1) -> 2 attempts of flaky
    from metaflow import Run

    for pathspec in (result.pathspec, local):
        run = Run(pathspec)
        assert run["start"].task.current_attempt == 2
        assert run["flaky"].task.current_attempt == 1


@pytest.mark.e2e
def test_include_file_and_defaults_given_at_trigger(
    flow_copy, tmp_path, temporal_env, mf_env
):
    module = load_module(flow_copy, tmp_path / "out")
    (flow_copy.parent / "other.txt").write_text("other notes\n")
    params = module.PARAMS(who="given", notes="other.txt", alpha="0.5")
    result, _ = run_on_temporal(temporal_env, module, params)
    assert isinstance(result, orch.RunResult), result
    local = run_locally(
        flow_copy, "--who", "given", "--notes", "other.txt", "--alpha", "0.5"
    )
    assert artifacts_by_step(result.pathspec) == artifacts_by_step(local)
    assert artifacts_by_step(local)["start"][0]["values"][1:] == (
        "given",
        "nowhere",
        "other notes\n",
    )


@pytest.mark.e2e
def test_worker_refuses_a_stale_module(flow_copy, tmp_path, temporal_env, mf_env):
    module = load_module(flow_copy, tmp_path / "out")
    temporal_env.run(check_flow(module))  # fresh: no problem
    text = flow_copy.read_text().replace(
        "self.next(self.flaky)",
        "self.next(self.extra)\n\n    @step\n    def extra(self):\n        self.next(self.flaky)",
    )
    flow_copy.write_text(text)
    with pytest.raises(StaleModule) as err:
        temporal_env.run(check_flow(module))
    message = str(err.value)
    assert "is stale: the flow's graph changed" in message
    assert module.REGENERATE in message
    assert "Metaflow:  extra linear -> flaky" in message
    # the worker command line refuses to start, exit 2, no traceback
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "out.deferred_flow_worker",
            "--address",
            temporal_env.address,
        ],
        cwd=flow_copy.parent,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "is stale" in done.stderr and "Traceback" not in done.stderr


def _fake_module(**specs):
    import types

    module = types.ModuleType("gen")
    module.GRAPH = ("start start -> end", "end end")
    module.REGENERATE = "mf-temporal-codegen flow.py -o out"
    for name, spec in specs.items():
        setattr(module, name.upper(), spec)
    return module


def _described(**steps):
    facts = {
        "retries": 0,
        "error_retries": 0,
        "retry_delay_seconds": 0,
        "timeout_seconds": 0,
        "env": {},
    }
    return {
        "graph": ["end end", "start start -> end"],
        "steps": {name: {**facts, **steps.get(name, {})} for name in ("start", "end")},
        "compensations": {},
    }


def test_module_check_reports_contradicted_static_facts():
    module = _fake_module(start=orch.StepSpec("start"), end=orch.StepSpec("end"))
    assert problems(module, _described()) == []
    found = problems(
        module, _described(start={"retries": 3, "retry_delay_seconds": 120})
    )
    assert len(found) == 2
    assert found[0].startswith(
        "step start: the generated module has retries=0, Metaflow says retries=3"
    )
    assert "regenerate with `mf-temporal-codegen flow.py -o out`" in found[0]
    # facts the module leaves to Metaflow are not compared
    dynamic = _fake_module(
        start=orch.StepSpec("start", from_metaflow=True), end=orch.StepSpec("end")
    )
    assert problems(dynamic, _described(start={"retries": 3})) == []


def test_module_check_reports_a_changed_graph_and_compensations():
    module = _fake_module(
        start=orch.StepSpec("start", compensation="undo"), end=orch.StepSpec("end")
    )
    described = _described()
    found = problems(module, described)
    assert found == [
        "compensations: the generated module has {'start': 'undo'}, the flow has {}; "
        "regenerate with `mf-temporal-codegen flow.py -o out`"
    ]
    described["graph"] = ["end end", "start start -> middle", "middle linear -> end"]
    (stale,) = problems(module, described)
    assert (
        "generated: start start -> end" in stale
        and "Metaflow:  middle linear -> end" in stale
    )
    old = _fake_module(start=orch.StepSpec("start"))
    del old.GRAPH
    assert "too old to be checked" in problems(old, described)[0]


MUTATING = """
from metaflow import FlowSpec, StepMutator, step, user_step_decorator


class add_retry(StepMutator):
    def mutate(self, mutable_step):
        mutable_step.add_decorator("retry", deco_kwargs={"times": 2})


@user_step_decorator
def timed(step_name, flow, inputs=None, attributes=None):
    yield


class MyFlow(FlowSpec):
    @add_retry
    @step
    def start(self):
        self.next(self.end)

    @timed
    @step
    def end(self):
        pass


if __name__ == "__main__":
    MyFlow()
"""


def test_step_mutators_leave_facts_to_metaflow_user_decorators_do_not(
    tmp_path, temporal_env
):
    flow = tmp_path / "mutating.py"
    flow.write_text(MUTATING)
    module = load_module(flow, tmp_path / "out")
    assert module.START.from_metaflow and not module.END.from_metaflow
    assert (
        "@add_retry (mutating.py:16) may change its decorators (a StepMutator)"
        in _source(module)
    )
    # what Metaflow says agrees with the module (the mutator's retry is not compared)
    described = temporal_env.run(check_flow(module))
    assert described["steps"]["start"]["retries"] == 2


SCHEDULED = """
from metaflow import Config, FlowSpec, config_expr, schedule, step


@schedule(cron=config_expr("cfg.cron"), timezone=config_expr("cfg.tz"))
class ConfigScheduledFlow(FlowSpec):
    cfg = Config("cfg", default_value={"cron": "0 6 * * ? *", "tz": "Europe/Paris"})

    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ConfigScheduledFlow()
"""


def test_a_schedule_from_a_config_is_evaluated_when_the_worker_starts(
    tmp_path, monkeypatch
):
    import asyncio

    from mf_temporal_codegen.runtime.worker import evaluated_schedule

    monkeypatch.chdir(tmp_path)
    flow = tmp_path / "config_scheduled.py"
    flow.write_text(SCHEDULED)
    module = load_module(flow, tmp_path / "out")
    assert module.SCHEDULE.cron is None
    assert "evaluated by\n# Metaflow when the worker starts" in _source(module)
    described = asyncio.run(check_flow(module))
    schedule = evaluated_schedule(described)
    assert (schedule.cron, schedule.timezone) == ("0 6 * * ? *", "Europe/Paris")


def test_a_deferred_decorator_over_several_lines_stays_a_comment(tmp_path):
    """A decorator Metaflow evaluates, written over several lines, is quoted in the
    generated comment line by line (it used to end the comment after its first line)."""
    flow = tmp_path / "multi_line_env.py"
    flow.write_text(
        "from metaflow import Config, FlowSpec, config_expr, environment, step\n\n\n"
        "class MultiLineEnvFlow(FlowSpec):\n"
        '    cfg = Config("cfg", default_value={"v": 1})\n\n'
        "    @environment(\n"
        "        vars={\n"
        '            "V": config_expr("str(cfg.v)"),\n'
        "        }\n"
        "    )\n"
        "    @step\n"
        "    def start(self):\n"
        "        self.next(self.end)\n\n"
        "    @step\n"
        "    def end(self):\n"
        "        pass\n\n\n"
        'if __name__ == "__main__":\n'
        "    MultiLineEnvFlow()\n"
    )
    sources = generate_into(flow, tmp_path / "out")
    workflow = next(t for p, t in sources.items() if p.name.endswith("_workflow.py"))
    compile(workflow, "multi_line_env_workflow.py", "exec")
    assert '#           "V": config_expr("str(cfg.v)"),' in workflow
