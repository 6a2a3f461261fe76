"""@project and run tags end to end: the generated worker and trigger (as a user runs
them) on a real dev server, checked in the steps and through the Client API."""

from __future__ import annotations

import re

import pytest
from helpers import ROOT, generate_into, import_generated
from worker_process import run_module, worker_process

pytestmark = pytest.mark.e2e
FLOW = ROOT / "tests" / "flows" / "project_flow.py"
DECORATOR = '@project(name="mf_temporal")'

CASES = {
    # id: (generation options, decorator as written, worker/trigger env, branch)
    "branch": (("--branch=foo",), DECORATOR, {}, "test.foo"),
    "production": (("--production",), DECORATOR, {}, "prod"),
    "production_branch": (("--production", "--branch=foo"), DECORATOR, {}, "prod.foo"),
    "attributes": (
        (),
        '@project(name="mf_temporal", branch="attr", production=True)',
        {},
        "prod.attr",
    ),
    "user": ((), DECORATOR, {}, "user.tester"),
    "owner": ((), DECORATOR, {"METAFLOW_OWNER": "alice"}, "user.alice"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_project_branch_reaches_every_step(case, tmp_path, temporal_env, mf_env):
    from metaflow import Run, namespace

    top_level, decorator, env, branch = CASES[case]
    flow = tmp_path / "flows" / "project_flow.py"
    flow.parent.mkdir()
    flow.write_text(FLOW.read_text().replace(DECORATOR, decorator))
    generate_into(flow, tmp_path / "out", top_level=top_level, tags=("gen_tag",))
    module = import_generated(tmp_path / "out", "project_flow_workflow")
    name = f"mf_temporal.{branch}.ProjectFlow"
    queue = f"metaflow-{name}"
    user_branch = branch.startswith("user.")
    assert module.TASK_QUEUE == (None if user_branch else queue)
    assert module.PROJECT.branch == (None if user_branch else branch)

    address = ("--address", temporal_env.address)
    with worker_process(
        tmp_path, "out.project_flow_worker", *address, env=env
    ) as worker:
        out = worker.wait_for("worker for")
        assert f"worker for {name} " in out and f"task queue {queue}," in out
        done = run_module(
            tmp_path,
            "out.project_flow_worker",
            "trigger",
            *address,
            "--tag",
            "trig_tag",
            env=env,
        )
    assert done.returncode == 0, done.stdout + done.stderr + worker.output()
    workflow_id = re.search(
        r"^workflow: (\S+) \(task queue (\S+)\)$", done.stdout, re.M
    )
    assert (
        workflow_id
        and workflow_id[1].startswith(name + "-")
        and workflow_id[2] == queue
    )
    described = temporal_env.run(
        temporal_env.client.get_workflow_handle(workflow_id[1]).describe()
    )
    assert described.task_queue == queue

    namespace(None)
    run = Run(done.stdout.strip().splitlines()[-1].removeprefix("pathspec: "))
    assert run.successful
    expected = {
        "project_name": "mf_temporal",
        "branch_name": branch,
        "project_flow_name": name,
        "is_production": branch.startswith("prod"),
        "is_user_branch": user_branch,
    }
    assert run["end"].task["seen"].data == {"start": expected, "end": expected}
    assert {"gen_tag", "trig_tag"} <= set(run.user_tags)
    assert {"project:mf_temporal", f"project_branch:{branch}"} <= set(run.system_tags)


@pytest.mark.parametrize(
    "env, owner",
    [
        ({"METAFLOW_OWNER": "owner", "METAFLOW_USER": "mf", "USERNAME": "u"}, "owner"),
        ({"METAFLOW_USER": "mf", "SUDO_USER": "sudo", "USERNAME": "u"}, "mf"),
        ({"SUDO_USER": "root", "USERNAME": "u", "USER": "x"}, "u"),
        ({"USER": "x"}, "x"),
        ({"USER": "root"}, "temporal"),
    ],
)
def test_user_branch_owner(env, owner):
    """Metaflow's order (project_decorator.format_name, util.get_username), then the
    user tasks run as when there is none."""
    from mf_temporal_codegen.runtime.deployment import project_owner

    assert project_owner(env) == owner
