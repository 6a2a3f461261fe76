"""``mf-temporal-codegen replay-check``: histories of runs made with one generated
module replayed against a regenerated one, from the server and from exported files."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from e2e import load_module, run_on_temporal
from helpers import codegen, generate_into
from metaflow.plugins.datastores.local_storage import LocalStorage
from temporalio.worker import Worker

from mf_temporal_codegen.runtime import RunOptions
from mf_temporal_codegen.runtime.devserver import temporal_cli

pytestmark = pytest.mark.e2e

FLOW_V1 = """
from metaflow import FlowSpec, step


class ReplayProbeFlow(FlowSpec):
    @step
    def start(self):
        self.items = [1, 2]
        self.next(self.body, foreach="items")

    @step
    def body(self):
        self.value = self.input * 2
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.value for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ReplayProbeFlow()
"""
# v2: a step added between start and the foreach
FLOW_V2 = FLOW_V1.replace(
    """        self.items = [1, 2]
        self.next(self.body, foreach="items")
""",
    """        self.items = [1, 2]
        self.next(self.prepare)

    @step
    def prepare(self):
        self.next(self.body, foreach="items")
""",
)
# one chunk child workflow per foreach split
CHUNKED = RunOptions(inline_activity_limit=1, chunk_activity_limit=1)


@pytest.fixture(scope="module")
def setup(tmp_path_factory, temporal_env):
    """v1, v1b (the same flow regenerated) and v2 (changed) generated from the flow;
    one finished run of v1 (main workflow and two chunk children) and one left
    running; the server's address."""
    root = tmp_path_factory.mktemp("replay")
    with pytest.MonkeyPatch.context() as mp:
        _metaflow_env(mp, root / "mfroot")
        flow = root / "flows" / "replay_probe_flow.py"
        flow.parent.mkdir()
        flow.write_text(FLOW_V1)
        module = load_module(flow, root / "v1")
        generate_into(flow, root / "v1b")
        result, _ = run_on_temporal(
            temporal_env, module, options=CHUNKED, launcher="default"
        )
        assert not isinstance(result, BaseException), result
        temporal_env.run(_start_partial_run(temporal_env.client, module))
        flow.write_text(FLOW_V2)
        generate_into(flow, root / "v2")
    return root, temporal_env.address


def _metaflow_env(mp: pytest.MonkeyPatch, root: Path) -> None:
    (root / LocalStorage.DATASTORE_DIR).mkdir(parents=True)
    mp.setenv("USERNAME", "tester")
    mp.setenv("METAFLOW_DATASTORE_SYSROOT_LOCAL", str(root))
    mp.setenv("METAFLOW_DEFAULT_METADATA", "local")
    mp.setenv("METAFLOW_DEFAULT_DATASTORE", "local")


async def _start_partial_run(client, module) -> None:
    """A run left running: a worker without activities takes its first workflow
    task (the run schedules its first task), then stops."""
    queue = f"q-{uuid.uuid4().hex[:10]}"
    async with Worker(client, task_queue=queue, workflows=module.WORKFLOWS):
        handle = await client.start_workflow(
            module.WORKFLOW.run,
            args=[module.PARAMS(), None],
            id=f"{module.FLOW.name}-partial-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
        )
        for _ in range(100):
            history = await handle.fetch_history()
            if any(
                e.HasField("activity_task_scheduled_event_attributes")
                for e in history.events
            ):
                return
            await asyncio.sleep(0.1)
    raise AssertionError("the partial run scheduled no task")


def _check(*args):
    done = codegen("replay-check", *args)
    return done.returncode, done.stdout.splitlines(), done.stderr


def test_unchanged_modules_replay_every_run(setup):
    root, address = setup
    for out in ("v1", "v1b"):
        code, lines, err = _check(root / out, "--address", address)
        assert (code, lines) == (0, ["replayed 4 histories: 0 would break"]), err


def test_a_changed_flow_lists_the_runs_it_would_break(setup):
    root, address = setup
    code, lines, err = _check(root / "v2", "--address", address)
    assert code == 1, err
    assert lines[-1] == "replayed 4 histories: 1 would break"
    (broken,) = lines[:-1]
    # the finished main run: its children and the partial run (no task done yet) replay
    assert (
        broken.startswith("would break: ReplayProbeFlow-") and "-partial-" not in broken
    )
    assert ": [TMPRL1100] Nondeterminism error: " in broken


def test_exported_histories_give_the_same_verdicts_offline(setup):
    root, address = setup
    exported = root / "exported"
    code, lines, _ = _check(root / "v1", "--address", address, "--export", exported)
    assert (code, lines) == (0, ["replayed 4 histories: 0 would break"])
    assert len(list(exported.glob("*.json"))) == 4
    online = _check(root / "v2", "--address", address)[:2]
    assert _check(root / "v2", "--histories", exported)[:2] == online
    assert _check(root / "v1", "--histories", exported)[:2] == (
        0,
        ["replayed 4 histories: 0 would break"],
    )


def test_histories_from_the_temporal_cli_and_without_a_recorded_workflow_id(setup):
    """``temporal workflow show --output json`` files replay too; a history whose start
    event lacks the workflow id (older servers) takes it from its file name: the
    child workflow ids derived from it must match."""
    root, address = setup
    code, lines, _ = _check(root / "v2", "--address", address)
    broken = lines[0]
    workflow_id = broken.split()[2]
    folder = root / "from-cli"
    folder.mkdir()
    shown = subprocess.run(
        [
            temporal_cli(),
            "workflow",
            "show",
            "--address",
            address,
            "-w",
            workflow_id,
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    (folder / "main.json").write_text(shown)
    assert _check(root / "v2", "--histories", folder)[:2] == (
        1,
        [broken, "replayed 1 histories: 1 would break"],
    )
    assert _check(root / "v1", "--histories", folder)[0] == 0
    history = json.loads(shown)
    del history["events"][0]["workflowExecutionStartedEventAttributes"]["workflowId"]
    (folder / "main.json").write_text(json.dumps(history))
    assert (
        _check(root / "v1", "--histories", folder)[0] == 1
    )  # named "main": children differ
    (folder / "main.json").rename(folder / f"{quote(workflow_id, safe='')}.json")
    assert _check(root / "v1", "--histories", folder)[:2] == (
        0,
        ["replayed 1 histories: 0 would break"],
    )


def test_usage_errors_exit_2_with_one_line(setup, tmp_path):
    root, _ = setup
    (tmp_path / "empty").mkdir()
    cases = [
        ((root / "nowhere", "--histories", root), "not a directory"),
        ((tmp_path / "empty", "--histories", root), "no generated workflow module"),
        ((root / "v1", "--histories", root / "nowhere"), "not a directory"),
        (
            (root / "v1", "--address", "127.0.0.1:1"),
            "cannot reach Temporal at 127.0.0.1:1",
        ),
        ((root / "v1",), "one of the arguments --address --histories is required"),
        (
            (root / "v1", "--histories", root, "--export", tmp_path),
            "--export needs --address",
        ),
    ]
    for args, message in cases:
        code, lines, err = _check(*args)
        assert (code, lines) == (2, []), (args, err)
        assert len(err.splitlines()) == 1 and message in err, (args, err)
        assert err.startswith("mf-temporal-codegen replay-check: error: ")
