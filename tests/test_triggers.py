"""``@trigger`` and ``@trigger_on_finish`` on a real dev server: subscriptions that
``temporal create`` keeps on the server, ``mf-temporal-codegen publish`` and
``TemporalEvent`` starting one run per event id with Parameters from the payload,
``current.trigger`` in every task, a successful upstream run starting its
downstream deployment once on the same ``@project`` branch only, a failed one
starting nothing; and what the generator writes and refuses."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import codegen
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from mf_temporal_codegen.plugin import managed, records
from mf_temporal_codegen.runtime import subscriptions
from mf_temporal_codegen.runtime.events import TemporalEvent

pytestmark = pytest.mark.e2e

FLOWS = Path(__file__).parent / "flows" / "triggers"
BAD = Path(__file__).parent / "bad_inputs"


@pytest.fixture
def repo(tmp_path, mf_env, temporal_env, monkeypatch) -> Path:
    """A checkout with the trigger flows, the server in TEMPORAL_ADDRESS."""
    work = tmp_path / "repo"
    work.mkdir()
    for flow in FLOWS.glob("*.py"):
        shutil.copy(flow, work / flow.name)
    monkeypatch.setenv("TEMPORAL_ADDRESS", temporal_env.address)
    monkeypatch.setenv("METAFLOW_HOME", str(tmp_path / "mfhome"))
    monkeypatch.chdir(work)
    return work


def mf(cwd: Path, flow: str, *args: str, ok: bool = True):
    done = subprocess.run(
        [sys.executable, flow, "--no-pylint", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if ok:
        assert done.returncode == 0, done.stdout + done.stderr
    done.stdout += done.stderr
    return done


def publish(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "mf_temporal_codegen", "publish", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def wait_subscribed(temporal_env, event: str, deployment: str, timeout=30.0):
    """Until the subscription shows in visibility queries (publish lists them)."""
    deadline = time.monotonic() + timeout
    while True:
        found = temporal_env.run(subscriptions.subscribers(temporal_env.client, event))
        if any(s.deployment == deployment for s in found):
            return
        assert time.monotonic() < deadline, f"{deployment} not subscribed to {event}"
        time.sleep(0.3)


def result_of(temporal_env, workflow_id: str, timeout: float = 120):
    """The result of workflow ``workflow_id`` once it exists and ended."""
    handle = temporal_env.client.get_workflow_handle(workflow_id)
    deadline = time.monotonic() + timeout
    while True:
        try:
            return temporal_env.run(handle.result(), timeout=timeout)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND or time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def exists(temporal_env, workflow_id: str) -> bool:
    handle = temporal_env.client.get_workflow_handle(workflow_id)
    try:
        temporal_env.run(handle.describe())
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


def runs_of(temporal_env, flow: str, deployment: str) -> list:
    query = f"WorkflowType = '{flow}' AND MetaflowDeployment = '{deployment}'"

    async def listed():
        return [e async for e in temporal_env.client.list_workflows(query)]

    return temporal_env.run(listed())


def remove(temporal_env, *deployments: str) -> None:
    """What `temporal delete` does, without a Metaflow start per deployment."""
    for name in deployments:
        managed.stop(name)
        temporal_env.run(records.remove(temporal_env.client, name))
        temporal_env.run(subscriptions.remove(temporal_env.client, name))


def test_an_event_starts_one_run_per_id_with_its_payload(repo, temporal_env):
    from metaflow import Run, namespace

    namespace(None)
    created = mf(repo, "event_flow.py", "temporal", "create", "--worker")
    assert "Triggers: each event data_ready starts a run" in created.stdout
    try:
        wait_subscribed(temporal_env, "data_ready", "EventFlow")
        done = publish(
            repo, "data_ready", "--payload", "alpha=hello", "--payload", "n=3",
            "--payload", "unrelated=x", "--id", "evt-1",
        )  # fmt: skip
        line = done.stdout.strip()
        assert line.startswith("EventFlow: EventFlow/temporal-") and "started" in line
        pathspec = line.split()[1]
        result = result_of(temporal_env, "EventFlow/event/evt-1")
        assert result["pathspec"] == pathspec

        start = Run(pathspec)["start"].task
        assert start["param"].data == ("hello", 3)
        seen = start["seen"].data
        assert (seen["name"], seen["id"], seen["type"]) == (
            "data_ready",
            "evt-1",
            "event",
        )
        assert seen["events"] == 1 and seen["timestamp"] is not None
        assert Run(pathspec)["end"].task["end_saw"].data == "data_ready"
        # as on Argo, the start task records the event: Run.trigger reads it
        assert Run(pathspec).trigger.event.id == "evt-1"

        # the same id again (the CLI, then the Python API): nothing new starts
        again = publish(repo, "data_ready", "--payload", "alpha=other", "--id", "evt-1")
        assert "already started by this event" in again.stdout
        assert pathspec in again.stdout
        repeated = TemporalEvent("data_ready").publish({"alpha": "third"}, id="evt-1")
        assert [(s.duplicate, s.pathspec) for s in repeated] == [(True, pathspec)]
        listed = mf(repo, "event_flow.py", "temporal", "list-runs").stdout
        assert listed.count("temporal-") == 1 and pathspec.split("/")[1] in listed
    finally:
        mf(repo, "event_flow.py", "temporal", "delete", ok=False)
    assert (
        temporal_env.run(subscriptions.load(temporal_env.client, "EventFlow")) is None
    )
    gone = publish(repo, "data_ready", "--id", "evt-2")
    assert "no deployment waits for data_ready" in gone.stdout


def test_a_finished_run_starts_its_downstream_on_its_branch_once(repo, temporal_env):
    from metaflow import Run, namespace

    namespace(None)
    up_b1, up_b2 = "trig.test.b1.UpstreamFlow", "trig.test.b2.UpstreamFlow"
    down_b1, down_b2 = "trig.test.b1.DownstreamFlow", "trig.test.b2.DownstreamFlow"
    try:
        for flow in ("upstream_flow.py", "downstream_flow.py"):
            for branch in ("b1", "b2"):
                mf(repo, flow, "--branch", branch, "temporal", "create", "--worker")
        sub = temporal_env.run(subscriptions.load(temporal_env.client, down_b2))
        assert sub.event == f"metaflow.{up_b2}.end" and sub.type == "run"
        wait_subscribed(temporal_env, f"metaflow.{up_b1}.end", down_b1)
        wait_subscribed(temporal_env, f"metaflow.{up_b2}.end", down_b2)

        id_file = repo / "run-id"
        downstream = {}
        for branch, up, down, other in (
            ("b1", up_b1, down_b1, down_b2),
            ("b2", up_b2, down_b2, down_b1),
        ):
            mf(
                repo, "upstream_flow.py", "--branch", branch, "temporal", "trigger",
                "--run-id-file", str(id_file),
            )  # fmt: skip
            upstream = f"UpstreamFlow/{id_file.read_text()}"
            downstream[branch] = f"{down}/event/{upstream}/end/end"
            result = result_of(temporal_env, downstream[branch])
            start = Run(result["pathspec"])["start"].task
            assert start["upstream"].data == upstream
            assert start["upstream_value"].data == 42
            assert start["seen"].data == {
                "name": f"metaflow.{up}.end",
                "id": f"{upstream}/end/end",
                "type": "run",
            }
            # the upstream run announced before it ended: nothing on the other branch
            assert not exists(temporal_env, f"{other}/event/{upstream}/end/end")
        assert [e.id for e in runs_of(temporal_env, "DownstreamFlow", down_b2)] == [
            downstream["b2"]
        ]
        downstream_id = downstream["b1"]

        # a failed upstream run starts nothing
        mf(
            repo, "upstream_flow.py", "--branch", "b1", "temporal", "trigger",
            "--fail", "true", "--run-id-file", str(id_file),
        )  # fmt: skip
        failed = id_file.read_text()
        failed_id = [
            e.id
            for e in runs_of(temporal_env, "UpstreamFlow", up_b1)
            if e.run_id == failed.removeprefix("temporal-")
        ]
        status = temporal_env.run(
            temporal_env.client.get_workflow_handle(failed_id[0]).describe()
        ).status
        deadline = time.monotonic() + 120
        while status == WorkflowExecutionStatus.RUNNING:
            assert time.monotonic() < deadline
            time.sleep(0.5)
            status = temporal_env.run(
                temporal_env.client.get_workflow_handle(failed_id[0]).describe()
            ).status
        assert status == WorkflowExecutionStatus.FAILED
        time.sleep(3)
        assert not exists(
            temporal_env, f"{down_b1}/event/UpstreamFlow/{failed}/end/end"
        )
        assert [e.id for e in runs_of(temporal_env, "DownstreamFlow", down_b1)] == [
            downstream_id
        ]
    finally:
        remove(temporal_env, up_b1, down_b1, up_b2, down_b2)


def test_the_worker_registers_what_metaflow_evaluates(repo, temporal_env):
    """A computed event (config_expr): the module leaves it to Metaflow, the plain
    generated worker registers it when it starts, without `temporal create`."""
    done = codegen(repo / "computed_flow.py", "-o", repo / "gen")
    assert done.returncode == 0, done.stderr
    log = repo / "worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "gen.computed_flow_worker", "worker"],
            cwd=repo,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while "Ctrl-C to stop" not in log.read_text():
            assert (
                worker.poll() is None and time.monotonic() < deadline
            ), log.read_text()
            time.sleep(0.3)
        assert "event subscription of ComputedFlow: created" in log.read_text()
        sub = temporal_env.run(subscriptions.load(temporal_env.client, "ComputedFlow"))
        assert (sub.event, sub.type, sub.task_queue) == (
            "computed_event",
            "event",
            "metaflow-ComputedFlow",
        )
        wait_subscribed(temporal_env, "computed_event", "ComputedFlow")
        started = temporal_env.run(
            TemporalEvent("computed_event").publish_async(client=temporal_env.client)
        )
        assert len(started) == 1 and not started[0].duplicate, started
        result = result_of(temporal_env, started[0].workflow_id)
        assert result["pathspec"] == started[0].pathspec
    finally:
        worker.terminate()
        worker.wait(120)
        temporal_env.run(subscriptions.remove(temporal_env.client, "ComputedFlow"))


def _import(path: Path):
    spec = importlib.util.spec_from_file_location(f"_trig_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_generated_module_spells_the_subscription_out(tmp_path):
    out = tmp_path / "out"
    for flow, extra in (
        ("event_flow.py", []),
        ("downstream_flow.py", ["--branch", "b1"]),
        ("computed_flow.py", []),
    ):
        done = codegen(FLOWS / flow, "-o", out, *extra)
        assert done.returncode == 0, done.stderr
    event = (out / "event_flow_workflow.py").read_text()
    assert "# @trigger(event={'name': 'data_ready', 'parameters': ['alpha', " in event
    assert "(event_flow.py:7): each event data_ready published" in event
    assert (
        'rt.EventTrigger("data_ready", parameters={"alpha": "alpha", "count": "n"})'
        in event
    )
    module = _import(out / "event_flow_workflow.py")
    assert module.TRIGGERS.events[0].parameters == {"alpha": "alpha", "count": "n"}

    downstream = (out / "downstream_flow_workflow.py").read_text()
    assert "(metaflow.trig.test.b1.UpstreamFlow.end)" in downstream
    assert 'flows=(rt.FlowTrigger("UpstreamFlow"),)' in downstream

    computed = (out / "computed_flow_workflow.py").read_text()
    assert '# @trigger(event=config_expr("settings.event")) (computed_flow.py:6):' in (
        computed
    )
    assert "evaluated by\n# Metaflow where the worker or `temporal create` loads" in (
        computed
    )
    assert "events=(rt.EventTrigger(None),)" in computed

    # a flow without triggers has no TRIGGERS
    codegen(FLOWS / "upstream_flow.py", "-o", out, "--branch", "b1")
    assert "TRIGGERS" not in (out / "upstream_flow_workflow.py").read_text()


@pytest.mark.parametrize(
    "name, where, message",
    [
        (
            "trigger_event_type.py",
            "4:16",
            "Incorrect format for event attribute in @trigger decorator: got 3",
        ),
        (
            "trigger_two_events.py",
            "4:17",
            "@trigger(events=) with 2 events: not supported yet",
        ),
    ],
)
def test_bad_triggers_are_refused_with_their_position(name, where, message, tmp_path):
    out = tmp_path / "out"
    done = codegen(BAD / name, "-o", out)
    assert done.returncode == 2
    first, hint = done.stderr.splitlines()[:2]
    assert first == f"{BAD / name}:{where}: error: {message}"
    assert hint.startswith("  hint: ")
    assert not out.exists()
