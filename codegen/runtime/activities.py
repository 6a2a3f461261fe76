"""The activities generated workflows call: Metaflow's ``init`` and ``step``, and
``compensate`` for ``@compensate`` methods.

Each activity runs the flow file's own command line (as Metaflow's Argo compiler does)
through a pluggable :class:`Launcher`, saves the task's stdout/stderr into Metaflow's log
store so the Client API shows them, and reads back what the workflow needs to continue
(the foreach width, the branch a switch chose) from the finished task's datastore.
A task killed because its activity was cancelled is marked as a failed attempt.
Only references go back to the workflow.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from metaflow import metaflow_config_funcs
from metaflow.datastore import FlowDataStore
from metaflow.datastore.exceptions import DataException
from metaflow.metaflow_environment import MetaflowEnvironment
from metaflow.mflog import TASK_LOG_SOURCE
from metaflow.mflog.mflog import parse
from metaflow.plugins import (
    DATASTORES,
    LOGGING_SIDECARS,
    METADATA_PROVIDERS,
    MONITOR_SIDECARS,
)
from metaflow.util import Path as StreamPath
from metaflow.util import compress_list, decompress_list
from temporalio import activity
from temporalio.exceptions import ApplicationError

from ..compensate import STEP_PREFIX
from .compensation_task import attempt_status
from .launcher import Launcher, SubprocessLauncher
from .payloads import (
    PARAMETERS_TASK_ID,
    CompensateRequest,
    FlowRef,
    InitRequest,
    StepRequest,
    TaskResult,
)

# Top-level options every command gets unless the generated FlowRef overrides them.
DEFAULT_OPTIONS = (
    ("metadata", "local"),
    ("datastore", "local"),
    ("environment", "local"),
    ("event-logger", "nullSidecarLogger"),
    ("monitor", "nullSidecarMonitor"),
)
FAILURE_TYPE = "MetaflowTaskFailed"
STDERR_TAIL_LINES = 20
# Input paths up to this long go on the command line, as Metaflow's own runtime passes
# them; longer ones (wide joins) through ``--input-paths-filename``.
INPUT_PATHS_ARG_LIMIT = 4096
DEFAULT_USER = "temporal"
# How a compensation task starts: our runner, with the flow file as its argument.
COMPENSATION_PROGRAM = ("-m", "mf_temporal_codegen.runtime.compensation_task")
# Runs whose Config values a worker keeps at hand.
CONFIG_CACHE_RUNS = 64


class MetaflowActivities:
    """Activities bound to one generated module directory and one launcher.

    ``base_dir`` is the directory of the generated workflow module: ``FlowRef.file``
    is relative to it. ``env`` is the base environment of every task (default: this
    process's). ``on_event`` receives ``{"event": "started"|"finished"|"failed", ...}``
    dicts for live progress.
    """

    def __init__(
        self,
        base_dir: Path,
        launcher: Launcher | None = None,
        env: Mapping[str, str] | None = None,
        on_event: Callable[[dict], None] | None = None,
    ):
        self.base_dir = Path(base_dir)
        self.launcher = launcher or SubprocessLauncher()
        self.compensation_launcher = SubprocessLauncher()
        # (flow, run id) -> the local config file of its tasks, for the latest runs
        self._config_files: dict[tuple[str, str], str] = {}
        self.env = dict(os.environ if env is None else env)
        self.on_event = on_event
        # Per-task files (logs, long input paths) live here under unique names: a
        # directory per task would cost a mkdir and an rmdir on the event loop.
        self._scratch = tempfile.TemporaryDirectory(prefix="mf-temporal-")

    @activity.defn(name="metaflow_init")
    async def init(self, req: InitRequest) -> str:
        """Create ``run_id/_parameters/task_id`` once per run; return that pathspec."""
        params = {
            "METAFLOW_INIT_" + name.upper().replace("-", "_"): value
            for name, value in req.parameters.items()
        }
        task = self._task(req.flow, req.run_id, "_parameters", req.task_id, params)
        if await asyncio.to_thread(task.is_done):
            return task.path
        task.top += req.flow.init_options
        argv = ["init", "--run-id", req.run_id, "--task-id", req.task_id]
        await self._execute(task, argv + _tag_args(req.flow.tags, req.tags))
        return task.path

    @activity.defn(name="metaflow_step")
    async def step(self, req: StepRequest) -> TaskResult:
        """Run one attempt of a Metaflow task; the attempt is the activity attempt - 1."""
        task = self._task(req.flow, req.run_id, req.step, req.task_id, req.env)
        paths = compress_list(
            [p for item in req.input_paths for p in decompress_list(item)]
        )
        with self._scratch_files("input-paths", "configs") as (paths_file, configs):
            task.top += await self._configs(task, configs)
            argv = ["step", req.step, "--run-id", req.run_id, "--task-id", req.task_id]
            if len(paths) <= INPUT_PATHS_ARG_LIMIT:
                argv += ["--input-paths", paths]
            else:
                await asyncio.to_thread(paths_file.write_text, paths)
                argv += ["--input-paths-filename", str(paths_file)]
            if req.split_index is not None:
                argv += ["--split-index", str(req.split_index)]
            argv += ["--retry-count", str(task.attempt)]
            argv += ["--max-user-code-retries", str(req.max_user_code_retries)]
            await self._execute(task, argv + _tag_args(req.flow.tags, req.tags))
        num_splits, next_step = await asyncio.to_thread(
            task.read_back, req.read_num_splits, req.read_transition
        )
        return TaskResult(
            step=req.step,
            task_id=req.task_id,
            path=task.path,
            num_splits=num_splits,
            next_step=next_step,
            attempt=task.attempt,
        )

    @activity.defn(name="metaflow_compensate")
    async def compensate(self, req: CompensateRequest) -> str:
        """Run one ``@compensate`` method as the task ``_compensate_<step>/<task id>``
        (always in a fresh interpreter); return its pathspec."""
        undo = req.undo
        task = self._task(
            req.flow, req.run_id, STEP_PREFIX + undo.step, undo.task_id, {}
        )
        argv = ["temporal-compensate", "--run-id", req.run_id, "--step", undo.step]
        argv += ["--task-id", undo.task_id, "--handler", undo.handler]
        argv += ["--retry-count", str(task.attempt), "--fallback", undo.fallback]
        with self._scratch_files("configs") as (configs,):
            task.top += await self._configs(task, configs)
            await self._execute(
                task,
                argv + _tag_args(req.flow.tags, req.tags),
                launcher=self.compensation_launcher,
                program=COMPENSATION_PROGRAM,
            )
        return task.pathspec

    async def _configs(self, task: _Task, config_file: Path) -> list[str]:
        """Top-level options that hand the run's Config values (as ``init`` resolved
        them) to a task: ``--config-value NAME kv.NAME`` and a local config file
        (written to ``config_file``), as Metaflow's own runtime passes them."""
        if not task.flow.configs:
            return []
        key = (task.flow.name, task.run_id)
        if key not in self._config_files:
            values = await asyncio.to_thread(task.config_values)
            while len(self._config_files) >= CONFIG_CACHE_RUNS:
                self._config_files.pop(next(iter(self._config_files)))
            self._config_files[key] = json.dumps({"user_configs": values})
        config_file.write_text(self._config_files[key])
        options = [
            arg
            for c in task.flow.configs
            for arg in ("--config-value", c.name, f"kv.{c.name}")
        ]
        return options + ["--local-config-file", str(config_file)]

    def _task(
        self,
        flow: FlowRef,
        run_id: str,
        step: str,
        task_id: str,
        extra_env: Mapping[str, str],
    ) -> _Task:
        flow_file = (self.base_dir / flow.file).resolve()
        env = {**self.env, **extra_env, "PYTHONUNBUFFERED": "1"}
        if not any(
            env.get(var) not in (None, "", "root")
            for var in ("METAFLOW_USER", "SUDO_USER", "USERNAME", "USER")
        ):
            env["USERNAME"] = DEFAULT_USER
        top, store = top_level_options(flow, env, flow_file.parent)
        return _Task(
            flow=flow,
            flow_file=flow_file,
            env=env,
            top=top,
            store=store,
            run_id=run_id,
            step=step,
            task_id=task_id,
            attempt=activity.info().attempt - 1,
        )

    async def _execute(
        self,
        task: _Task,
        command: list[str],
        *,
        launcher: Launcher | None = None,
        program: Sequence[str] = (),
    ) -> None:
        """Run ``[program] flow.py <top> <command>``, save its logs, raise if it
        failed; a task killed by cancellation is recorded as a failed attempt."""
        self._emit(task, "started")
        began = time.monotonic()
        with self._scratch_files("stdout", "stderr") as (out, err):
            logs = {"stdout": out, "stderr": err}
            try:
                code = await (launcher or self.launcher).run(
                    [*program, str(task.flow_file), *task.top, *command],
                    env=task.env,
                    cwd=task.flow_file.parent,
                    stdout_log=logs["stdout"],
                    stderr_log=logs["stderr"],
                    heartbeat=activity.heartbeat,
                )
            except BaseException as exc:
                seconds = time.monotonic() - began
                self._emit(task, "failed", seconds=seconds, error=type(exc).__name__)
                if task.step != "_parameters":
                    await asyncio.shield(asyncio.to_thread(task.record_killed, logs))
                raise
            if task.step != "_parameters":
                await asyncio.to_thread(task.save_logs, logs)
            seconds = time.monotonic() - began
            if code == 0:
                self._emit(task, "finished", seconds=seconds)
                return
            self._emit(task, "failed", seconds=seconds, exit_code=code)
            raise ApplicationError(
                f"Metaflow task {task.pathspec} (attempt {task.attempt}) failed "
                f"with exit code {code}\n" + _tail(logs["stderr"]),
                {"pathspec": task.pathspec, "attempt": task.attempt, "exit_code": code},
                type=FAILURE_TYPE,
            )

    @contextmanager
    def _scratch_files(self, *suffixes: str) -> Iterator[list[Path]]:
        """Fresh file paths for one task attempt, removed afterwards."""
        stem = os.path.join(self._scratch.name, uuid.uuid4().hex)
        paths = [Path(f"{stem}.{suffix}") for suffix in suffixes]
        try:
            yield paths
        finally:
            for path in paths:
                path.unlink(missing_ok=True)

    def _emit(self, task: _Task, event: str, **extra) -> None:
        if self.on_event is not None:
            self.on_event(
                {
                    "event": event,
                    "flow": task.flow.name,
                    "run_id": task.run_id,
                    "step": task.step,
                    "task_id": task.task_id,
                    "attempt": task.attempt,
                    **extra,
                }
            )


@dataclass
class _Task:
    """One attempt of one Metaflow task and where its data lives."""

    flow: FlowRef
    flow_file: Path
    env: dict[str, str]
    top: list[str]
    store: FlowDataStore
    run_id: str
    step: str
    task_id: str
    attempt: int

    @property
    def path(self) -> str:
        return f"{self.run_id}/{self.step}/{self.task_id}"

    @property
    def pathspec(self) -> str:
        return f"{self.flow.name}/{self.path}"

    def is_done(self, attempt: int | None = None) -> bool:
        """Whether ``attempt`` (by default: some attempt) of this task completed
        (its done marker exists)."""
        try:
            self.store.get_task_datastore(
                self.run_id, self.step, self.task_id, attempt=attempt
            )
        except DataException:
            return False
        return True

    def save_logs(self, logs: Mapping[str, Path]) -> None:
        """Store mflog files as this attempt's task logs (like ``mflog.save_logs``)."""
        data = {s: StreamPath(str(p)) for s, p in logs.items() if p.exists()}
        if data:
            self.store.get_task_datastore(
                self.run_id, self.step, self.task_id, attempt=self.attempt, mode="w"
            ).save_logs(TASK_LOG_SOURCE, data)

    def config_values(self) -> dict[str, list]:
        """The run's Config values as its ``_parameters`` task stored them."""
        ds = self.store.get_task_datastore(self.run_id, "_parameters", PARAMETERS_TASK_ID)
        return {c.name: [ds[c.attr], c.plain] for c in self.flow.configs}

    def record_killed(self, logs: Mapping[str, Path]) -> None:
        """Save the logs of an attempt that was killed, and mark it failed (as
        Metaflow's ``attempt_ok`` metadata) unless it got to record an outcome."""
        self.save_logs(logs)
        if self.is_done(self.attempt):
            return  # it finished after all
        self.metadata().register_metadata(
            self.run_id,
            self.step,
            self.task_id,
            [attempt_status(self.attempt, False)],
        )

    def metadata(self):
        """The Metaflow metadata provider this task's ``--metadata`` names."""
        flow = SimpleNamespace(name=self.flow.name)
        environment = MetaflowEnvironment(flow)
        kind = _option(self.top, "metadata")
        provider = next(p for p in METADATA_PROVIDERS if p.TYPE == kind)
        return provider(
            environment,
            flow,
            LOGGING_SIDECARS["nullSidecarLogger"](flow=flow, env=environment),
            MONITOR_SIDECARS["nullSidecarMonitor"](flow=flow, env=environment),
        )

    def read_back(
        self, num_splits: bool, transition: bool
    ) -> tuple[int | None, str | None]:
        """Read ``_foreach_num_splits`` / the chosen next step from this attempt."""
        if not (num_splits or transition):
            return None, None
        ds = self.store.get_task_datastore(
            self.run_id, self.step, self.task_id, attempt=self.attempt
        )
        return (
            int(ds["_foreach_num_splits"]) if num_splits else None,
            ds["_transition"][0][0] if transition else None,
        )


def top_level_options(
    flow: FlowRef, env: Mapping[str, str], flow_dir: Path
) -> tuple[list[str], FlowDataStore]:
    """The ``<top>`` options of every command, and the datastore they point at.

    Defaults are explicit, and the datastore root is resolved once here and passed as
    ``--datastore-root`` so the task, its logs and the read-back all use the same one.
    """
    args = list(flow.top_level)
    for name, default in DEFAULT_OPTIONS:
        if _option(args, name) is None:
            args.append(f"--{name}={default}")
    ds_type = _option(args, "datastore")
    impl = next((d for d in DATASTORES if d.TYPE == ds_type), None)
    if impl is None:
        raise ApplicationError(
            f"unknown Metaflow datastore {ds_type!r}", non_retryable=True
        )
    root = _option(args, "datastore-root")
    if root is None:
        root = _datastore_root(impl, env, flow_dir)
        args.append(f"--datastore-root={root}")
    store = FlowDataStore(flow.name, storage_impl=impl, ds_root=root)
    return ["--quiet", "--no-pylint", *args], store


def _datastore_root(impl, env: Mapping[str, str], flow_dir: Path) -> str:
    """Metaflow's own root resolution, but from the task's env and the flow's dir."""
    if impl.TYPE != "local":
        return impl.get_datastore_root_from_config(lambda *a, **k: None)
    var = "METAFLOW_DATASTORE_SYSROOT_LOCAL"
    sysroot = env.get(var) or _config_value(var)
    if sysroot:
        return os.path.join(sysroot, impl.DATASTORE_DIR)
    for directory in (flow_dir, *flow_dir.parents):
        if (directory / impl.DATASTORE_DIR).is_dir():
            return str(directory / impl.DATASTORE_DIR)
    (flow_dir / impl.DATASTORE_DIR).mkdir(exist_ok=True)
    return str(flow_dir / impl.DATASTORE_DIR)


def _config_value(name: str) -> str | None:
    """A value from Metaflow's config files (not the environment)."""
    for config in (
        metaflow_config_funcs.METAFLOW_LOCAL_CONFIG,
        metaflow_config_funcs.METAFLOW_CONFIG,
    ):
        if config and config.get(name):
            return config[name]
    return None


def _option(args: Sequence[str], name: str) -> str | None:
    """The value of ``--name=V`` or ``--name V`` in ``args`` (last one wins)."""
    flag, value = f"--{name}", None
    for i, arg in enumerate(args):
        if arg.startswith(flag + "="):
            value = arg[len(flag) + 1 :]
        elif arg == flag and i + 1 < len(args):
            value = args[i + 1]
    return value


def _tag_args(*tag_groups: Sequence[str]) -> list[str]:
    tags = dict.fromkeys(t for group in tag_groups for t in group)
    return [arg for tag in tags for arg in ("--tag", tag)]


def _tail(mflog_file: Path, lines: int = STDERR_TAIL_LINES) -> str:
    """The last lines of an mflog file, undecorated."""
    if not mflog_file.exists():
        return ""
    raw = mflog_file.read_bytes().splitlines()[-lines:]
    return "\n".join(
        (parsed.msg if (parsed := parse(line)) else line).decode("utf-8", "replace")
        for line in raw
    )
