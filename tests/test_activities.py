"""The Metaflow activities, the worker/trigger entry points and ``run`` on real flows.

Activities run through Temporal's ActivityEnvironment against the flows in
tests/flows; results are checked with Metaflow's own Client API.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import os
import re
import shutil
import sys
import time
import typing
import uuid
from pathlib import Path
from typing import Any

import pytest
from metaflow import Run, Task, namespace
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from mf_temporal_codegen.runtime import launcher as launcher_mod
from mf_temporal_codegen.runtime import worker as worker_mod
from mf_temporal_codegen.runtime.activities import MetaflowActivities
from mf_temporal_codegen import run_command
from mf_temporal_codegen.run_command import run_embedded
from mf_temporal_codegen.runtime.payloads import FlowRef, InitRequest, StepRequest
from mf_temporal_codegen.runtime.params import (
    MAX_ENV_ENTRY_BYTES,
    ParamError,
    parse_params,
)
from mf_temporal_codegen.runtime.worker import main, running_worker, start_workflow

FLOWS = Path(__file__).parent / "flows"


@pytest.fixture(autouse=True)
def _all_namespaces():
    namespace(None)


class Harness:
    """Calls the activities like a worker would, one attempt at a time."""

    def __init__(self, flow: FlowRef):
        self.flow = flow
        self.run_id = f"temporal-{uuid.uuid4().hex[:10]}"
        self.events: list[dict] = []
        self.heartbeats = 0
        self.acts = MetaflowActivities(FLOWS, on_event=self.events.append)

    def env(self, attempt: int = 1) -> ActivityEnvironment:
        env = ActivityEnvironment()
        env.info = dataclasses.replace(env.info, attempt=attempt)
        env.on_heartbeat = lambda *_: setattr(self, "heartbeats", self.heartbeats + 1)
        return env

    def init(self, attempt: int = 1, **params: str) -> str:
        req = InitRequest(self.flow, self.run_id, "t-params", params)
        return asyncio.run(self.env(attempt).run(self.acts.init, req))

    def step(self, step: str, task_id: str, inputs, attempt: int = 1, **kw):
        req = StepRequest(self.flow, self.run_id, step, task_id, tuple(inputs), **kw)
        return asyncio.run(self.env(attempt).run(self.acts.step, req))

    @property
    def pathspec(self) -> str:
        return f"{self.flow.name}/{self.run_id}"


def test_linear_flow_parameters_retries_and_logs(mf_env):
    h = Harness(FlowRef("LinearFlow", "linear_flow.py"))
    params = h.init(alpha="3", **{"greeting-text": "yo", "weights": '{"b": 2}'})
    assert params == f"{h.run_id}/_parameters/t-params"
    # A retried init finds the finished _parameters task and does not run again.
    assert h.init(attempt=2, alpha="99") == params
    assert [e["event"] for e in h.events] == ["started", "finished"]

    start = h.step("start", "t-0-1", [params])
    assert (start.path, start.attempt, start.num_splits) == (
        f"{h.run_id}/start/t-0-1",
        0,
        None,
    )
    with pytest.raises(ApplicationError) as failed:
        h.step("middle", "t-mid", [start.path], max_user_code_retries=2)
    err = failed.value
    # the workflow, not Temporal, retries user code: it starts the next attempt
    assert err.type == "MetaflowTaskFailed" and err.non_retryable
    assert err.details[0]["attempt"] == 0
    assert f"LinearFlow/{h.run_id}/middle/t-mid (attempt 0)" in err.message
    assert "exit code 1" in err.message and "flaky on the first attempt" in err.message
    middle = h.step(
        "middle", "t-mid", [start.path], first_attempt=1, max_user_code_retries=2
    )
    assert middle.attempt == 1
    h.step("end", "t-end", [middle.path], env={"FROM_ENVIRONMENT_DECO": "yes"})

    run = Run(h.pathspec)
    assert run.successful and run.data.x == 31
    assert sorted(s.id for s in run) == ["end", "middle", "start"]
    assert run["start"].task.id == "t-0-1"
    assert "start says yo" in run["start"].task.stdout
    end = run["end"].task
    assert (end.data.alpha, end.data.greeting, end.data.weights) == (3, "yo", {"b": 2})
    assert end.stdout == "end x 31 env yes\n"
    mid = run["middle"].task
    assert mid.current_attempt == 1 and mid.stdout == "middle attempt 1\n"
    first = Task(mid.pathspec, attempt=0)
    assert not first.successful and first.stdout == "middle attempt 0\n"
    assert "flaky on the first attempt" in first.stderr
    events = [(e["event"], e["step"], e["attempt"]) for e in h.events]
    assert ("failed", "middle", 0) in events and ("finished", "middle", 1) in events


def test_fork_launcher_is_pluggable(mf_env):
    forkserver = pytest.importorskip("mf_temporal_codegen.runtime.forkserver")
    h = Harness(FlowRef("LinearFlow", "linear_flow.py"))
    h.acts = MetaflowActivities(FLOWS, launcher=forkserver.ForkServerLauncher())
    try:
        start = h.step("start", "t", [h.init(**{"greeting-text": "forked"})])
    finally:
        h.acts.launcher.close()
    assert Task(f"{h.pathspec}/{start.step}/t").stdout == "start says forked\n"


def test_foreach_reads_back_num_splits_and_joins_in_order(mf_env):
    h = Harness(FlowRef("ForeachFlow", "foreach_flow.py"))
    start = h.step("start", "t", [h.init()], read_num_splits=True)
    assert start.num_splits == 3
    bodies = [h.step("body", f"t-{i}", [start.path], split_index=i) for i in range(3)]
    join = h.step("join", "t", [b.path for b in bodies])
    h.step("end", "t", [join.path])
    run = Run(h.pathspec)
    assert run.successful
    assert run["join"].task.data.values == ["A", "B", "C"]
    assert sorted(t.id for t in run["body"]) == ["t-0", "t-1", "t-2"]


@pytest.mark.parametrize("level", ["low", "high"])
def test_switch_reads_back_chosen_step(mf_env, level):
    h = Harness(FlowRef("SwitchFlow", "switch_flow.py"))
    start = h.step("start", "t", [h.init(level=level)], read_transition=True)
    assert start.next_step == level
    chosen = h.step(level, "t", [start.path])
    h.step("end", "t", [chosen.path])
    assert Run(h.pathspec).data.picked == level


def test_failing_step_is_recorded_and_raises(mf_env):
    h = Harness(FlowRef("TroubleFlow", "trouble_flow.py"))
    start = h.step("start", "t", [h.init()])
    with pytest.raises(ApplicationError) as failed:
        h.step("boom", "t-boom", [start.path], first_attempt=2)
    err = failed.value
    assert f"TroubleFlow/{h.run_id}/boom/t-boom (attempt 2)" in err.message
    # the user's exception line first (from Metaflow's record of the attempt)
    assert err.message.startswith("ValueError: boom goes the step\n")
    assert err.details[0] == {
        "pathspec": f"TroubleFlow/{h.run_id}/boom/t-boom",
        "attempt": 2,
        "exit_code": 1,
        "exception": "ValueError: boom goes the step",
    }
    task = Task(f"{h.pathspec}/boom/t-boom")
    assert not task.successful and task.current_attempt == 2
    assert task.stdout == "about to fail\n"
    assert "boom goes the step" in task.stderr


def _processes_with(marker: str) -> dict[int, int]:
    """pid -> process group of processes whose command line contains ``marker``."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if marker.encode() in cmdline:
                found[int(pid)] = os.getpgid(int(pid))
        except (OSError, ProcessLookupError):
            pass
    return found


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_cancel_kills_the_process_group(mf_env, monkeypatch):
    monkeypatch.setattr(launcher_mod, "HEARTBEAT_SECONDS", 0.2)
    h = Harness(FlowRef("TroubleFlow", "trouble_flow.py"))
    start = h.step("start", "t", [h.init()])
    env = h.env()

    async def scenario() -> int:
        req = StepRequest(h.flow, h.run_id, "nap", "t-nap", (start.path,))
        task = asyncio.ensure_future(env.run(h.acts.step, req))
        deadline = time.monotonic() + 30
        while not (procs := _processes_with(f"nap\0--run-id\0{h.run_id}\0")):
            assert time.monotonic() < deadline, "the step never started"
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        env.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        (pgid,) = set(procs.values())
        return pgid

    pgid = asyncio.run(scenario())
    deadline = time.monotonic() + 5
    while _group_alive(pgid):
        assert time.monotonic() < deadline, "the step's process group survived"
        time.sleep(0.1)
    assert h.heartbeats > 0
    assert h.events[-1]["event"] == "failed" and h.events[-1]["step"] == "nap"


@dataclasses.dataclass(frozen=True)
class _Params:
    count: int
    ratio: float = 0.5
    flag: bool = False
    name_with_dash: str = "x"
    config: Any = None


def test_parse_params_types_and_errors():
    parsed = parse_params(
        _Params,
        ["count=3", "ratio=2", "flag=Yes", "name-with-dash=a=b", 'config={"k": [1]}'],
    )
    assert parsed == _Params(3, 2.0, True, "a=b", {"k": [1]})
    for pairs, message in [
        ([], "missing required parameter(s): count"),
        (["count=1", "nope=1"], "unknown parameter 'nope'"),
        (["count=x"], "count: 'x' is not valid int"),
        (["count=1", "flag=maybe"], "flag: 'maybe' is not valid true/false"),
        (["count=1", "config={"], "config: '{' is not valid JSON"),
        (["count"], "expected NAME=VALUE"),
    ]:
        with pytest.raises(
            ParamError, match=message.replace("(", r"\(").replace(")", r"\)")
        ):
            parse_params(_Params, pairs)


@dataclasses.dataclass(frozen=True)
class _OptionalParams:
    # string annotations (this module has `from __future__ import annotations`), as
    # generated PARAMS have
    note: str | None = None
    count: int | None = None
    ratio: "Optional[float]" = None  # noqa: F821 - only read as text
    flag: bool | None = None
    settings: Any = None
    anything: Any | None = None


@dataclasses.dataclass(frozen=True)
class _TypedParams:
    note: typing.Optional[str] = None
    count: int | None = None


def test_parse_params_optional_and_any():
    parsed = parse_params(
        _OptionalParams,
        [
            "note=test_str",
            "count=3",
            "ratio=0.5",
            "flag=no",
            'settings={"a": 1}',
            "anything=[1]",
        ],
    )
    assert parsed == _OptionalParams("test_str", 3, 0.5, False, {"a": 1}, [1])
    assert parse_params(_OptionalParams, ["note={not json"]).note == "{not json"
    assert parse_params(_TypedParams, ["note=x", "count=2"]) == _TypedParams("x", 2)
    with pytest.raises(ParamError, match="count: 'x' is not valid int"):
        parse_params(_OptionalParams, ["count=x"])
    with pytest.raises(ParamError, match="settings: 'nope' is not valid JSON"):
        parse_params(_OptionalParams, ["settings=nope"])


def test_values_metaflow_cannot_carry_are_refused():
    with pytest.raises(ParamError, match="note: the value contains a NUL byte"):
        parse_params(_OptionalParams, ["note=a\0b"])
    room = MAX_ENV_ENTRY_BYTES - len("METAFLOW_INIT_NOTE=")
    assert parse_params(_OptionalParams, ["note=" + "x" * room]).note == "x" * room
    with pytest.raises(
        ParamError, match=r"note: the value is 131,073 bytes, more than"
    ):
        parse_params(_OptionalParams, ["note=" + "é" * 65536 + "x"])
    with pytest.raises(ParamError, match="settings: the value is"):
        parse_params(_OptionalParams, ['settings=["' + "x" * room + '"]'])


def test_trigger_refuses_a_too_long_value_before_starting(capsys):
    from flows import linear_workflow as module

    # nothing listens there: the value is refused before any connection
    argv = [
        "trigger",
        "--address",
        "127.0.0.1:1",
        "--param",
        "greeting_text=" + "x" * 140_000,
    ]
    assert main(module, argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        "error: parameter greeting_text: the value is"
    )


def test_worker_and_trigger(mf_env, temporal_env, capsys):
    # tests/ is on sys.path (pytest's rootdir conftest), so the workflow sandbox can
    # re-import the module by name.
    from flows import linear_workflow as module

    queue = f"test-{uuid.uuid4().hex[:8]}"

    async def start_worker():
        # Workers must be created on the loop that runs them.
        # (a hand-written module: no facts for the start-up check to compare)
        running = running_worker(
            temporal_env.client, module, task_queue=queue, check=False
        )
        await running.__aenter__()
        return running

    running = temporal_env.run(start_worker())
    try:
        base = ["trigger", "--address", temporal_env.address, "--task-queue", queue]
        assert main(module, base + ["--param", "nope=1"]) == 2
        assert "unknown parameter 'nope'" in capsys.readouterr().err
        assert (
            main(
                module,
                ["trigger", "--address", "127.0.0.1:1", "--wait-for-server", "0"],
            )
            == 1
        )
        assert "cannot reach Temporal at 127.0.0.1:1" in capsys.readouterr().err
        wid = f"linear-{uuid.uuid4().hex[:8]}"
        args = [
            "--param",
            "alpha=4",
            "--param",
            "greeting_text=hey",
            "--workflow-id",
            wid,
        ]
        assert main(module, base + args) == 0
    finally:
        temporal_env.run(running.__aexit__(None, None, None))
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == f"pathspec: LinearFlow/temporal-{wid}"
    run = Run(f"LinearFlow/temporal-{wid}")
    assert run.successful and run.data.x == 41
    assert run["middle"].task.current_attempt == 1


def _use_fake_generator(monkeypatch, module_file: str) -> None:
    """Stand in for the real generator: copy a hand-written module and its flow."""

    def generate_to_dir(flow_file: Path, outdir: Path, options=None) -> list[Path]:
        shutil.copy(flow_file, outdir / flow_file.name)
        return [Path(shutil.copy(FLOWS / module_file, outdir / module_file))]

    monkeypatch.setattr(run_command, "generate_modules", generate_to_dir)

    async def no_check(module, workdir=None):  # hand-written: nothing to check against
        return {}

    monkeypatch.setattr(worker_mod, "check_flow", no_check)


def _embedded(
    flow: str, params: list[str], address: str | None
) -> tuple[int, list[str]]:
    out = io.StringIO()
    code = asyncio.run(run_embedded(FLOWS / flow, params, address=address, out=out))
    return code, out.getvalue().splitlines()


def test_run_embedded_starts_everything_and_stops_it(mf_env, monkeypatch):
    _use_fake_generator(monkeypatch, "linear_workflow.py")
    code, lines = _embedded("linear_flow.py", ["alpha=2"], address=None)
    assert code == 0, lines
    assert lines[-1].startswith("pathspec: LinearFlow/temporal-")
    assert any(
        line.startswith("workflow LinearFlow-")
        and "/namespaces/default/workflows/LinearFlow-" in line
        for line in lines
    )
    assert "▶ _parameters t-params (attempt 0)" in lines
    assert "▶ start (attempt 0)" in lines
    assert any(line.startswith("✗ middle attempt 0 failed") for line in lines)
    assert any(line.startswith("✓ middle ") for line in lines)
    run = Run(lines[-1].split(" ", 1)[1])
    assert run.data.x == 21
    # every line a task prints, live, prefixed as `python flow.py run` prefixes it
    prefix = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \[%s \(pid \d+\)\] "
    for path, text in [
        (f"{run.id}/start/start", "start says hi"),
        (f"{run.id}/middle/middle", "middle attempt 0"),
        (f"{run.id}/middle/middle", "middle attempt 1"),
        (f"{run.id}/end/end", "end x 21 env None"),
    ]:
        pattern = re.compile(prefix % re.escape(path) + re.escape(text) + "$")
        assert any(pattern.match(line) for line in lines), (path, text)
    assert any("flaky on the first attempt" in line for line in lines)  # stderr too
    assert run["end"].task.stdout == "end x 21 env None\n"  # and in the log store
    ui_port = re.search(r"http://127.0.0.1:(\d+)/", "\n".join(lines)).group(1)
    assert not _processes_with(f"--ui-port\0{ui_port}\0")
    assert not any("mf_temporal_run_" in p for p in sys.path)


def test_run_embedded_reports_a_failed_run(mf_env, monkeypatch, temporal_env):
    _use_fake_generator(monkeypatch, "trouble_workflow.py")
    code, lines = _embedded("trouble_flow.py", [], address=temporal_env.address)
    assert code == 1
    assert any(line.startswith("✗ boom attempt 0 failed") for line in lines)
    assert any(line.startswith("✗ run failed:") for line in lines)
    assert "ValueError: boom goes the step" in lines
    assert lines[-1].startswith("pathspec: TroubleFlow/temporal-")
    assert not Run(lines[-1].split(" ", 1)[1]).successful


def test_run_embedded_rejects_bad_params(mf_env, monkeypatch, temporal_env):
    _use_fake_generator(monkeypatch, "linear_workflow.py")
    code, lines = _embedded("linear_flow.py", ["alpha=two"], temporal_env.address)
    assert code == 2 and "error: parameter alpha: 'two' is not valid int" in lines


def test_run_command_checks_generation_options(capsys):
    from mf_temporal_codegen.cli import main as cli_main

    assert cli_main(["run", str(FLOWS / "linear_flow.py"), "--max-workers", "0"]) == 2
    assert "--max-workers must be at least 1" in capsys.readouterr().err


def test_cancelling_a_run_kills_its_running_task(mf_env, temporal_env):
    from flows import trouble_workflow as module

    queue = f"test-{uuid.uuid4().hex[:8]}"
    wid = f"trouble-{uuid.uuid4().hex[:8]}"

    async def scenario() -> int:
        async with running_worker(
            temporal_env.client, module, task_queue=queue, check=False
        ):
            handle = await start_workflow(
                temporal_env.client,
                module,
                module.PARAMS(branch="nap"),
                task_queue=queue,
                workflow_id=wid,
            )
            deadline = time.monotonic() + 30
            while not (procs := _processes_with(f"nap\0--run-id\0temporal-{wid}\0")):
                assert time.monotonic() < deadline, "the nap step never started"
                await asyncio.sleep(0.2)
            (pgid,) = set(procs.values())
            await handle.cancel()
            with pytest.raises(WorkflowFailureError):
                await handle.result()
            # The cancel reaches the activity with the next heartbeat (every 5 s).
            deadline = time.monotonic() + 15
            while _group_alive(pgid):
                assert time.monotonic() < deadline, "the task survived the cancel"
                await asyncio.sleep(0.2)
            return pgid

    temporal_env.run(scenario())


def test_unpinned_options_come_from_the_metaflow_config(tmp_path):
    """Options the module does not pin: the environment, then the local config (the
    first .metaflow walking up from the task's directory), then the global one
    ($METAFLOW_HOME, a profile), then Metaflow's default; pinned ones win."""
    import json

    from mf_temporal_codegen.runtime.activities import resolved_options

    home, work = tmp_path / "home", tmp_path / "project" / "sub"
    (tmp_path / "project" / ".metaflow").mkdir(parents=True)
    home.mkdir()
    work.mkdir()
    env = {"METAFLOW_HOME": str(home), "METAFLOW_DATASTORE_SYSROOT_LOCAL": "/data"}

    def options(top=(), **extra):
        found = resolved_options(top, {**env, **extra}, work)
        if found[:2] == ["--metadata", "local"]:  # (pinned as two arguments)
            found[:2] = ["--metadata=local"]
        return dict(a[2:].split("=", 1) for a in found)

    assert options() == {
        "metadata": "local",
        "datastore": "local",
        "environment": "local",
        "event-logger": "nullSidecarLogger",
        "monitor": "nullSidecarMonitor",
        "datastore-root": "/data/.metaflow",
    }
    (home / "config.json").write_text(
        json.dumps(
            {
                "METAFLOW_DEFAULT_DATASTORE": "s3",
                "METAFLOW_DATASTORE_SYSROOT_S3": "s3://global/mf",
                "METAFLOW_DEFAULT_METADATA": "service",
                "METAFLOW_DEFAULT_MONITOR": "debugMonitor",
            }
        )
    )
    (home / "config_other.json").write_text(
        json.dumps({"METAFLOW_DEFAULT_EVENT_LOGGER": "debugLogger"})
    )
    (tmp_path / "project" / ".metaflow" / "config.json").write_text(
        json.dumps({"METAFLOW_DATASTORE_SYSROOT_S3": "s3://local/mf"})
    )
    found = options()
    assert (found["datastore"], found["datastore-root"]) == ("s3", "s3://local/mf")
    assert (found["metadata"], found["monitor"]) == ("service", "debugMonitor")
    found = options(METAFLOW_DATASTORE_SYSROOT_S3="s3://env/mf")
    assert found["datastore-root"] == "s3://env/mf"
    assert options(METAFLOW_PROFILE="other")["event-logger"] == "debugLogger"
    assert options(METAFLOW_PROFILE="other")["datastore"] == "local"
    pinned = options(("--metadata", "local", "--datastore=local", "--with=retry"))
    assert (pinned["datastore"], pinned["metadata"]) == ("local", "local")
    assert pinned["datastore-root"] == "/data/.metaflow"
    with pytest.raises(ApplicationError, match="METAFLOW_PROFILE 'missing'"):
        options(METAFLOW_PROFILE="missing")
    with pytest.raises(ApplicationError, match="set METAFLOW_DATASTORE_SYSROOT_GS"):
        options(METAFLOW_DEFAULT_DATASTORE="gs")
    with pytest.raises(ApplicationError, match="unknown Metaflow --metadata 'nope'"):
        options(METAFLOW_DEFAULT_METADATA="nope")


def test_a_worker_resolves_the_options_once(tmp_path, monkeypatch):
    """Every task of a worker gets the same options, even if the config changes
    while it runs (one run's tasks never use two datastores)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("METAFLOW_HOME", str(home))
    monkeypatch.setenv("METAFLOW_DATASTORE_SYSROOT_LOCAL", str(tmp_path))
    for var in ("METAFLOW_DEFAULT_DATASTORE", "METAFLOW_DEFAULT_METADATA"):
        monkeypatch.delenv(var, raising=False)
    acts = MetaflowActivities(FLOWS, workdir=tmp_path)
    flow = FlowRef("LinearFlow", "linear_flow.py")
    first = asyncio.run(acts._task(flow, "r", "start", "t", {}, 0))
    (home / "config.json").write_text('{"METAFLOW_DEFAULT_METADATA": "service"}')
    again = asyncio.run(
        acts._task(flow, "r", "end", "t", {"METAFLOW_DEFAULT_DATASTORE": "s3"}, 0)
    )
    assert first.top == again.top
    assert "--metadata=local" in first.top and "--datastore=local" in first.top
    assert first.store.TYPE == "local"
    fresh = MetaflowActivities(FLOWS, workdir=tmp_path)
    fresh_task = asyncio.run(fresh._task(flow, "r", "start", "t", {}, 0))
    assert "--metadata=service" in fresh_task.top


def test_local_metadata_root_exists_before_the_first_task(tmp_path):
    """With an object-store datastore and local metadata, a fresh host's worker makes
    the local metadata root once, up front: concurrent first tasks would race to
    create it (FileExistsError)."""
    from mf_temporal_codegen.runtime.activities import resolved_options

    work = tmp_path / "fresh-host"
    work.mkdir()
    env = {
        "METAFLOW_HOME": str(tmp_path / "home"),
        "METAFLOW_DEFAULT_DATASTORE": "s3",
        "METAFLOW_DATASTORE_SYSROOT_S3": "s3://bucket/mf",
        "METAFLOW_DEFAULT_METADATA": "local",
    }
    resolved_options((), env, work)
    assert (work / ".metaflow").is_dir()
    again = tmp_path / "other-host"
    again.mkdir()
    resolved_options((), {**env, "METAFLOW_DEFAULT_METADATA": "service"}, again)
    assert not (again / ".metaflow").exists()
