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
import socket
import tempfile
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

from metaflow.datastore import FlowDataStore, TaskDataStore
from metaflow.datastore.exceptions import DataException
from metaflow.plugins.datastores.local_storage import LocalStorage
from metaflow.metaflow_environment import MetaflowEnvironment
from metaflow.mflog import TASK_LOG_SOURCE
from metaflow.mflog.mflog import parse
from metaflow.plugins import (
    DATASTORES,
    ENVIRONMENTS,
    LOGGING_SIDECARS,
    METADATA_PROVIDERS,
    MONITOR_SIDECARS,
)
from metaflow.util import Path as StreamPath
from metaflow.util import compress_list, decompress_list
from temporalio import activity
from temporalio.exceptions import ApplicationError

from ..compensate import STEP_PREFIX
from ..contract import (
    DATASTORE_ROOT_OPTION,
    MAX_ATTEMPTS,
    METAFLOW_OPTIONS,
    TASK_DECORATOR,
    TASK_FAILED,
    TASK_METADATA_ENV,
    TASK_NOT_RECORDED,
    TOO_MANY_ATTEMPTS,
)
from . import failures
from .attempts import (
    ENDED,
    LEASE_POLL_SECONDS,
    LEASE_REFRESH_SECONDS,
    RUNNING,
    Lease,
    Leases,
)
from .compensation_task import attempt_status
from .launcher import Launcher, SubprocessLauncher
from . import cloning, flow_facts, packages, settings
from .payloads import (
    PARAMETERS_TASK_ID,
    CloneRequest,
    CodePackage,
    CompensateRequest,
    DefaultsRequest,
    FactsRequest,
    FlowRef,
    StepFacts,
    InitRequest,
    OriginRequest,
    OriginRun,
    StepRequest,
    TaskResult,
)

# Values Metaflow's CLI accepts for each of METAFLOW_OPTIONS (its click choices).
OPTION_CHOICES = {
    "metadata": lambda: [p.TYPE for p in METADATA_PROVIDERS],
    "datastore": lambda: [d.TYPE for d in DATASTORES],
    "environment": lambda: ["local", *(e.TYPE for e in ENVIRONMENTS)],
    "event-logger": lambda: list(LOGGING_SIDECARS),
    "monitor": lambda: list(MONITOR_SIDECARS),
}
STDERR_TAIL_LINES = 20
# A failed task's stderr is searched for its last traceback in this many last lines.
STDERR_SEARCH_LINES = 400
# The UI URL of the Temporal server (tasks record their workflow's page), when the
# worker is not told it otherwise.
UI_URL_VARIABLE = "TEMPORAL_UI_URL"
# Input paths up to this long go on the command line, as Metaflow's own runtime passes
# them; longer ones (wide joins) through ``--input-paths-filename``.
INPUT_PATHS_ARG_LIMIT = 4096
DEFAULT_USER = "temporal"
# How a compensation task starts: our runner, with the flow file as its argument.
COMPENSATION_PROGRAM = ("-m", "mf_temporal_codegen.runtime.compensation_task")
# How the flow is described / its deploy-time defaults evaluated (``flow_facts``).
FLOW_FACTS_PROGRAM = ("-m", "mf_temporal_codegen.runtime.flow_facts")
# Where Metaflow's local metadata (and datastore) is when the task says so.
LOCAL_SYSROOT = "METAFLOW_DATASTORE_SYSROOT_LOCAL"
# Runs whose Config values a worker keeps at hand.
CONFIG_CACHE_RUNS = 64


class FlowLoadError(RuntimeError):
    """Metaflow could not load the flow file (the worker cannot start)."""


class MetaflowActivities:
    """Activities bound to one generated module directory and one launcher.

    ``base_dir`` is the directory of the generated workflow module: ``FlowRef.file``
    is relative to it (None: no checkout, only runs that carry a code package).
    ``workdir`` is where every task runs (default: this process's cwd when the
    activities are created), as ``python path/to/flow.py run`` runs its tasks where
    it was started: the flow file is passed relative to it when it lies inside it,
    and the local datastore is found from it as Metaflow finds it. A task of a run
    with a code package runs in the package instead, unpacked into
    ``package_cache`` (default :func:`packages.cache_root`), or beside the datastore
    when it is local (:data:`packages.LOCAL_DIR`). ``env``
    is the base environment of every task (default: this process's); the Metaflow
    settings the module does not pin (datastore and its root, metadata ...) are read
    from it and Metaflow's config files once, as ``python flow.py run`` reads them,
    and passed to every task explicitly (:func:`resolved_options`). ``on_event``
    receives ``{"event": "started"|"finished"|"failed", ...}`` dicts for live
    progress, and with ``task_output`` also ``{"event": "output", "stream", "line",
    "pid", ...}`` for every line a task prints. ``ui_url`` (default:
    ``$TEMPORAL_UI_URL``) is the Temporal UI's address: each task records its
    workflow's page in its Metaflow metadata.
    """

    def __init__(
        self,
        base_dir: Path | None,
        launcher: Launcher | None = None,
        env: Mapping[str, str] | None = None,
        on_event: Callable[[dict], None] | None = None,
        workdir: Path | None = None,
        task_output: bool = False,
        ui_url: str | None = None,
        package_cache: Path | None = None,
    ):
        self.base_dir = None if base_dir is None else Path(base_dir)
        self.workdir = Path(
            os.getcwd() if workdir is None else os.path.abspath(workdir)
        )
        self.task_output = task_output
        self.launcher = launcher or SubprocessLauncher()
        self.compensation_launcher = SubprocessLauncher()
        # (flow, run id) -> the local config file of its tasks, for the latest runs
        self._config_files: dict[tuple[str, str], str] = {}
        self.env = dict(os.environ if env is None else env)
        self.packages = packages.PackageCache(
            package_cache or packages.cache_root(self.env)
        )
        # the packages of runs on a local datastore, unpacked beside it (by root)
        self._local_packages: dict[Path, packages.PackageCache] = {}
        # FlowRef.top_level -> the top-level options of its tasks, every one explicit
        self._options: dict[tuple[str, ...], list[str]] = {}
        self.ui_url = (ui_url or self.env.get(UI_URL_VARIABLE) or "").rstrip("/")
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
        # (``init`` always writes attempt 0)
        # (from the checkout: Configs and IncludeFiles are read where the run is
        # deployed, as Argo's create reads them)
        task = await self._task(
            req.flow, req.run_id, "_parameters", req.task_id, params, 0, unpack=False
        )
        if activity.info().attempt > 1:
            await self._wait_gone(task.leases(), 0)
        if await asyncio.to_thread(task.is_done):
            return task.path
        task.top += _init_options(req.flow.init_options, task.flow_file.parent)
        argv = ["init", "--run-id", req.run_id, "--task-id", req.task_id]
        await self._execute(task, argv + _tag_args(req.flow.tags, req.tags))
        return task.path

    @activity.defn(name="metaflow_step")
    async def step(self, req: StepRequest) -> TaskResult:
        """Run one attempt of a Metaflow task and report it (see
        :class:`StepRequest` for how attempts are numbered). A retry of this activity
        (its previous try was lost: worker gone, heartbeat timeout, shutdown, server
        outage) first settles the lost attempt, and reports it instead when it
        finished after all."""
        task = await self._task(
            req.flow,
            req.run_id,
            req.step,
            req.task_id,
            {**req.env, **self._workflow_env()},
            req.first_attempt,
        )
        # records the workflow in the task's metadata (mf_temporal_codegen.task_metadata)
        task.top.append(f"--with={TASK_DECORATOR}")
        if activity.info().attempt > 1:
            finished = await self._settle_lost(task, req.first_attempt)
            if finished:
                return await self._result(task, req)
        lost = req.lost_attempts + task.attempt - req.first_attempt
        if task.attempt >= MAX_ATTEMPTS:
            raise ApplicationError(
                f"Metaflow task {task.pathspec}: attempt {task.attempt} would exceed "
                f"Metaflow's MAX_ATTEMPTS ({MAX_ATTEMPTS}); {lost} attempts were lost",
                type=TOO_MANY_ATTEMPTS,
                non_retryable=True,
            )
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
            # lost attempts are platform failures to Metaflow: they do not use up
            # @retry, and @catch still waits for the last user-code attempt
            argv += ["--max-user-code-retries", str(req.max_user_code_retries + lost)]
            if req.origin_run_id:
                argv += ["--clone-run-id", req.origin_run_id]
            await self._execute(task, argv + _tag_args(req.flow.tags, req.tags))
        return await self._result(task, req)

    @activity.defn(name="metaflow_origin")
    async def origin(self, req: OriginRequest) -> OriginRun:
        """What the run ``req.origin_run_id`` finished, for a resume of it."""
        task = await self._task(
            req.flow, req.origin_run_id, "_parameters", "origin", {}, 0, unpack=False
        )
        try:
            return await asyncio.to_thread(
                cloning.read_origin, task.store, req.origin_run_id
            )
        except cloning.OriginNotFound as err:
            raise ApplicationError(
                str(err), type="MetaflowOriginNotFound", non_retryable=True
            ) from err

    @activity.defn(name="metaflow_clone")
    async def clone(self, req: CloneRequest) -> TaskResult:
        """Clone one task of the origin into the resumed run with Metaflow's own
        ``step --clone-only`` (as its runtime clones on resume: the artifacts are
        shared, the clone records its origin); once: a retry finds it done."""
        task = await self._task(
            req.flow, req.run_id, req.step, req.task_id, self._workflow_env(), 0
        )
        if not await asyncio.to_thread(task.is_done, 0):
            origin = f"{req.origin_run_id}/{req.step}/{req.task_id}"
            argv = ["step", req.step, "--run-id", req.run_id, "--task-id", req.task_id]
            argv += ["--clone-only", origin, "--clone-run-id", req.origin_run_id]
            argv += ["--retry-count", "0"]
            with self._scratch_files("configs") as (configs,):
                task.top += await self._configs(task, configs)
                await self._execute(
                    task,
                    argv + _tag_args(req.flow.tags, req.tags),
                    records_done=False,
                    retried_by_temporal=True,
                )
            if not await asyncio.to_thread(task.is_done, 0):
                raise _not_recorded(task)
        return await self._result(task, req)

    async def _result(self, task: _Task, req: StepRequest | CloneRequest) -> TaskResult:
        """What the workflow needs of ``task``'s finished attempt."""
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

    async def _settle_lost(self, task: _Task, first_attempt: int) -> bool:
        """Find the attempt a lost try of this activity ran (the last with a lease),
        wait until it is not alive, and set ``task.attempt`` to this try's attempt.
        True when the lost attempt succeeded after all (``task`` is then that
        attempt); a user-code failure it ran into is raised as such; else it is
        recorded failed, unless it never got to start (its number is reused)."""
        leases = task.leases()
        attempt = first_attempt
        while await asyncio.to_thread(leases.read, attempt) is not None:
            attempt += 1
        if attempt == first_attempt:
            return False  # the lost try never started a task
        previous = attempt - 1
        lease = await self._wait_gone(leases, previous)
        task.attempt = previous
        if await asyncio.to_thread(task.is_done, previous):
            # (Metaflow marks failed attempts done too)
            if await asyncio.to_thread(task.succeeded):
                return True
            raise await asyncio.to_thread(
                task.failure, lease.exit_code or 1, None, note="(its report was lost)"
            )
        if not await asyncio.to_thread(task.started):
            return False
        if lease.state != ENDED:
            await asyncio.to_thread(task.record_failed)
        task.attempt = attempt
        return False

    async def _wait_gone(self, leases: Leases, attempt: int) -> Lease:
        """Wait (heartbeating) while ``attempt``'s lease says it may be running."""
        while True:
            lease = await asyncio.to_thread(leases.read, attempt)
            if lease is None or not lease.alive():
                return lease or Lease(RUNNING, 0.0)
            activity.heartbeat()
            await asyncio.sleep(LEASE_POLL_SECONDS)

    @activity.defn(name="metaflow_compensate")
    async def compensate(self, req: CompensateRequest) -> str:
        """Run one ``@compensate`` method as the task ``_compensate_<step>/<task id>``
        (always in a fresh interpreter); return its pathspec."""
        undo = req.undo
        task = await self._task(
            req.flow,
            req.run_id,
            STEP_PREFIX + undo.step,
            undo.task_id,
            self._workflow_env(),
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
                retried_by_temporal=True,
            )
        return task.pathspec

    @activity.defn(name="metaflow_defaults")
    async def defaults(self, req: DefaultsRequest) -> dict[str, str]:
        """Deploy-time defaults of ``req.names`` as Metaflow evaluates them before a
        run (``deploy_time_eval``, as Argo's ``create``), encoded for ``init``."""
        task = await self._task(
            req.flow, req.run_id, "_parameters", "defaults", {}, unpack=False
        )
        task.top += _init_options(req.flow.init_options, task.flow_file.parent)
        argv = [
            flow_facts.DEFAULTS,
            *(a for n in req.names for a in ("--parameter", n)),
        ]
        return await self._flow_facts(task, argv)

    @activity.defn(name="metaflow_facts")
    async def facts(self, req: FactsRequest) -> dict[str, StepFacts]:
        """Each step's retries, timeout and environment as Metaflow derives them from
        its decorators with this run's Config values (after FlowMutators)."""
        task = await self._task(req.flow, req.run_id, "_parameters", "facts", {})
        with self._scratch_files("configs") as (configs,):
            task.top += await self._configs(task, configs)
            described = await self._flow_facts(task, [flow_facts.DESCRIBE])
        return {name: StepFacts(**facts) for name, facts in described["steps"].items()}

    async def describe(self, flow: FlowRef) -> dict:
        """The flow as Metaflow sees it where tasks run (``temporal-describe``), with
        the Config values ``init`` would resolve now: the worker's start-up check."""
        return await self._checkout_facts(flow, flow_facts.DESCRIBE)

    async def build_package(self, flow: FlowRef) -> CodePackage:
        """Metaflow's code package of the checkout's flow, saved in the datastore its
        tasks use (``temporal-package``; the same code is stored once)."""
        built = await self._checkout_facts(flow, flow_facts.PACKAGE)
        return CodePackage(**{f: built[f] for f in CodePackage.__dataclass_fields__})

    async def _checkout_facts(self, flow: FlowRef, command: str) -> dict:
        """Run a ``flow_facts`` command on the checkout's flow, outside any activity
        (with the options and Config values ``init`` would use now)."""
        task = await self._task(flow, "describe", "_parameters", "describe", {}, 0)
        task.top += _init_options(flow.init_options, task.flow_file.parent)
        with tempfile.TemporaryDirectory(prefix="mf-temporal-describe-") as tmp:
            output = Path(tmp) / "flow.json"
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                *FLOW_FACTS_PROGRAM,
                task.flow_arg,
                *task.top,
                command,
                "--output",
                str(output),
                cwd=task.workdir,
                env=task.env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            _, stderr = await process.communicate()
            if process.returncode != 0:
                tail = (
                    stderr.decode("utf-8", "replace")
                    .strip()
                    .splitlines()[-STDERR_TAIL_LINES:]
                )
                raise FlowLoadError(
                    f"Metaflow could not load {task.flow_arg} (exit code "
                    f"{process.returncode}):\n" + "\n".join(tail)
                )
            return json.loads(output.read_text())

    async def _flow_facts(self, task: _Task, argv: list[str]):
        """Run a ``flow_facts`` command for ``task``'s flow; its JSON output."""
        with self._scratch_files("json") as (output,):
            await self._execute(
                task,
                [*argv, "--output", str(output)],
                launcher=self.compensation_launcher,
                program=FLOW_FACTS_PROGRAM,
                records_done=False,
            )
            return json.loads(await asyncio.to_thread(output.read_text))

    async def warm_up(self, flow: FlowRef) -> None:
        """Have the launcher start what it keeps between tasks (the fork server) for
        this flow's tasks now, so that the first task does not wait for it."""
        start = getattr(self.launcher, "start", None)
        if start is not None:
            task = await self._task(flow, "warm-up", "_parameters", "warm-up", {}, 0)
            await start(task.env, task.workdir, task.flow_arg)

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

    def _workflow_env(self) -> dict[str, str]:
        """Environment variables that tell a task which workflow runs it: it records
        them in its Metaflow metadata (``mf_temporal_codegen.task_metadata``)."""
        info = activity.info()
        namespace = info.workflow_namespace or info.namespace
        values = {
            "temporal-workflow-id": info.workflow_id,
            "temporal-workflow-run-id": info.workflow_run_id,
            "temporal-workflow-type": info.workflow_type,
            "temporal-namespace": namespace,
            "temporal-task-queue": info.task_queue,
            "temporal-activity-id": info.activity_id,
        }
        if self.ui_url and info.workflow_id and info.workflow_run_id:
            values["temporal-workflow-url"] = (
                f"{self.ui_url}/namespaces/{quote(namespace, safe='')}/workflows/"
                f"{quote(info.workflow_id, safe='')}/{info.workflow_run_id}/history"
            )
        return {TASK_METADATA_ENV[k]: v for k, v in values.items() if v}

    async def _task(
        self,
        flow: FlowRef,
        run_id: str,
        step: str,
        task_id: str,
        extra_env: Mapping[str, str],
        attempt: int | None = None,
        *,
        unpack: bool = True,
    ) -> _Task:
        """One attempt of a task of ``flow``: of its run's code package when it has
        one (``unpack``: run from the package, unpacked on this host; else from the
        checkout, recording the package), else of the worker's checkout."""
        env = {**self.env, **extra_env, "PYTHONUNBUFFERED": "1"}
        if not any(
            env.get(var) not in (None, "", "root")
            for var in ("METAFLOW_USER", "SUDO_USER", "USERNAME", "USER")
        ):
            env["USERNAME"] = DEFAULT_USER
        # (resolved once per worker from its env, as Metaflow's runtime resolves them
        # once per run: one run's tasks never end up in two datastores)
        args = self._options.get(flow.top_level)
        if args is None:
            args = resolved_options(flow.top_level, self.env, self.workdir)
            self._options[flow.top_level] = args
        top = ["--quiet", "--no-pylint", *args]
        store = flow_datastore(flow.name, args)
        workdir = self.workdir
        if flow.package is not None:
            env.update(packages.task_env(flow.package))
        if flow.package is not None and unpack:
            workdir = await self._cache_for(store).unpacked(flow.package, store)
            flow_file = workdir / flow.package.flow_file
            if env.get("PYTHONPATH"):
                # (what the worker's PYTHONPATH names outside the package stays
                # where the worker's directory says, as for a task run there)
                env["PYTHONPATH"] = _absolute_paths(env["PYTHONPATH"], self.workdir)
            if _option(args, "metadata") == "local":
                # (Metaflow's local metadata finds its root from where the task
                # runs: the package's directory is not where this worker keeps it)
                env.setdefault(LOCAL_SYSROOT, self._local_sysroot())
        elif self.base_dir is None:
            raise ApplicationError(
                f"this worker has no checkout of flow {flow.name}, and the run "
                "carries no code package: a pool of this kind runs only modules "
                "generated with --code-package",
                type="MetaflowNoCheckout",
                non_retryable=True,
            )
        else:
            flow_file = (self.base_dir / flow.file).resolve()
        return _Task(
            flow=flow,
            flow_file=flow_file,
            workdir=workdir,
            env=env,
            top=top,
            store=store,
            run_id=run_id,
            step=step,
            task_id=task_id,
            attempt=activity.info().attempt - 1 if attempt is None else attempt,
        )

    def _cache_for(self, store: FlowDataStore) -> packages.PackageCache:
        """Where a run's package is unpacked: beside a local datastore (a task
        running there finds the ``.metaflow`` a task started in the checkout finds:
        its local cards, where the Client reads them), else in this host's cache."""
        if store.TYPE != "local":
            return self.packages
        root = Path(store.datastore_root).parent / packages.LOCAL_DIR
        return self._local_packages.setdefault(root, packages.PackageCache(root))

    def _local_sysroot(self) -> str:
        """The directory holding the local ``.metaflow`` this worker's tasks use."""
        local = next(d for d in DATASTORES if d.TYPE == "local")
        return os.path.dirname(_datastore_root(local, self.env, self.workdir))

    async def _execute(
        self,
        task: _Task,
        command: list[str],
        *,
        launcher: Launcher | None = None,
        program: Sequence[str] = (),
        records_done: bool = True,
        retried_by_temporal: bool = False,
    ) -> None:
        """Run ``[program] flow.py <top> <command>``, save its logs, raise if it
        failed. A Metaflow task (``records_done``) keeps an attempt lease while it
        runs, and succeeds only if Metaflow recorded this attempt as done; one killed
        by cancellation is recorded as a failed attempt. A failure is retried by the
        workflow, or by Temporal if ``retried_by_temporal``."""
        self._emit(task, "started")
        began = time.monotonic()
        leases = task.leases() if records_done else None
        if leases is not None:
            await asyncio.to_thread(leases.write, task.attempt, RUNNING)
        with self._scratch_files("stdout", "stderr") as (out, err):
            logs = {"stdout": out, "stderr": err}
            try:
                code = await (launcher or self.launcher).run(
                    [*program, task.flow_arg, *task.top, *command],
                    env=task.env,
                    cwd=task.workdir,
                    stdout_log=logs["stdout"],
                    stderr_log=logs["stderr"],
                    heartbeat=_Heartbeat(leases, task.attempt),
                    on_line=self._output(task) if self.task_output else None,
                )
            except BaseException as exc:
                seconds = time.monotonic() - began
                self._emit(task, "failed", seconds=seconds, error=type(exc).__name__)
                if leases is not None:
                    await asyncio.shield(asyncio.to_thread(task.record_killed, logs))
                raise
            if leases is not None:
                completed = await asyncio.to_thread(task.record_ended, logs, code)
            seconds = time.monotonic() - began
            if code == 0 and leases is not None and not completed:
                self._emit(task, "failed", seconds=seconds, exit_code=code)
                raise _not_recorded(task)
            if code == 0:
                self._emit(task, "finished", seconds=seconds)
                return
            self._emit(task, "failed", seconds=seconds, exit_code=code)
            raise await asyncio.to_thread(
                task.failure, code, logs["stderr"], not retried_by_temporal
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

    def _output(self, task: _Task) -> Callable[[str, bytes, int], None]:
        """What a launcher calls with every line the task prints."""

        def line(stream: str, text: bytes, pid: int) -> None:
            self._emit(task, "output", stream=stream, line=text, pid=pid)

        return line

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
    # where the task runs
    workdir: Path
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
    def flow_arg(self) -> str:
        """The flow file as ``python <flow_arg> run`` started in ``workdir`` names
        it: relative when it lies inside ``workdir``, else absolute."""
        if self.flow_file.is_relative_to(self.workdir):
            return str(self.flow_file.relative_to(self.workdir))
        return str(self.flow_file)

    @property
    def pathspec(self) -> str:
        return f"{self.flow.name}/{self.path}"

    def is_done(self, attempt: int | None = None) -> bool:
        """Whether ``attempt`` (by default: the latest attempt) of this task
        completed: Metaflow wrote its done marker."""
        if attempt is not None:
            return self._has_file(TaskDataStore.METADATA_DONE_SUFFIX, attempt)
        try:
            self.store.get_task_datastore(self.run_id, self.step, self.task_id)
        except DataException:
            return False
        return True

    def succeeded(self) -> bool:
        """Whether this attempt's user code succeeded (Metaflow's ``_success``)."""
        ds = self.store.get_task_datastore(
            self.run_id, self.step, self.task_id, attempt=self.attempt
        )
        return bool(ds["_success"])

    def started(self) -> bool:
        """Whether Metaflow started this attempt (its ``attempt.json`` exists)."""
        return self._has_file(TaskDataStore.METADATA_ATTEMPT_SUFFIX, self.attempt)

    def _has_file(self, suffix: str, attempt: int) -> bool:
        name = TaskDataStore.metadata_name_for_attempt(suffix, attempt)
        storage = self.store._storage_impl
        return bool(
            storage.is_file([storage.path_join(self.flow.name, self.path, name)])[0]
        )

    def save_logs(self, logs: Mapping[str, Path]) -> None:
        """Store mflog files as this attempt's task logs (like ``mflog.save_logs``)."""
        data = {s: StreamPath(str(p)) for s, p in logs.items() if p.exists()}
        if data:
            self.store.get_task_datastore(
                self.run_id, self.step, self.task_id, attempt=self.attempt, mode="w"
            ).save_logs(TASK_LOG_SOURCE, data)

    def config_values(self) -> dict[str, list]:
        """The run's Config values as its ``_parameters`` task stored them."""
        ds = self.store.get_task_datastore(
            self.run_id, "_parameters", PARAMETERS_TASK_ID
        )
        return {c.name: [ds[c.attr], c.plain] for c in self.flow.configs}

    def record_ended(self, logs: Mapping[str, Path], exit_code: int) -> bool:
        """Save the logs of an attempt whose process ended and close its lease (in
        one thread hop); whether it exited 0 with Metaflow's done marker."""
        if self.step != "_parameters":
            self.save_logs(logs)
        self.leases().write(self.attempt, ENDED, exit_code)
        return exit_code == 0 and self.is_done(self.attempt)

    def record_killed(self, logs: Mapping[str, Path]) -> None:
        """Save the logs of an attempt that was killed, close its lease, and mark it
        failed unless it got to record an outcome."""
        if self.step != "_parameters":
            self.save_logs(logs)
        self.leases().write(self.attempt, ENDED)
        if not self.is_done(self.attempt):
            self.record_failed()

    def record_failed(self) -> None:
        """Mark this attempt failed (Metaflow's ``attempt_ok`` metadata), as
        Metaflow's runtime records an attempt whose process died."""
        self.metadata().register_metadata(
            self.run_id,
            self.step,
            self.task_id,
            [attempt_status(self.attempt, False)],
        )

    def leases(self) -> Leases:
        return Leases(self.store, self.run_id, self.step, self.task_id)

    def failure(
        self,
        exit_code: int,
        stderr_log: Path | None,
        non_retryable: bool = True,
        note: str = "",
    ) -> ApplicationError:
        """This attempt's user-code failure (reads the datastore and the log: call it
        in a thread); a step's is counted against @retry by the workflow, which
        starts the next attempt (Temporal does not retry it). Its message reads
        as the flow's author wants it (:mod:`.failures`): the exception line first,
        then the task and attempt, then the traceback once."""
        found = self.recorded_failure()
        why = None
        if found is None:
            lines = _log_lines(stderr_log) if stderr_log is not None else []
            found = failures.of_stderr(lines)
            if failures.is_import_error(found.headline) and not self.started():
                why = (
                    f"The worker on {socket.gethostname()} cannot import what "
                    f"{self.flow_arg} needs, so Metaflow never started the task: the "
                    "flow's Python dependencies are the worker pool's business; "
                    "install them where the workers run."
                )
        where = (
            f"Metaflow task {self.pathspec} (attempt {self.attempt}) failed "
            f"with exit code {exit_code}" + (f" {note}" if note else "")
        )
        return ApplicationError(
            "\n".join(
                part for part in (found.headline, why, where, found.body) if part
            ),
            {
                "pathspec": self.pathspec,
                "attempt": self.attempt,
                "exit_code": exit_code,
                "exception": found.headline,
            },
            type=TASK_FAILED,
            non_retryable=non_retryable,
        )

    def recorded_failure(self) -> failures.Failure | None:
        """The exception Metaflow recorded for this attempt (``_exception``), if any."""
        try:
            ds = self.store.get_task_datastore(
                self.run_id, self.step, self.task_id, attempt=self.attempt
            )
            if "_exception" not in ds:
                return None
            wrapped = ds["_exception"]
        except Exception:  # not stored, unreadable: stderr tells instead
            return None
        type_name = getattr(wrapped, "type", None)
        if not type_name:
            return None
        return failures.of_exception(
            type_name,
            str(getattr(wrapped, "exception", "")),
            getattr(wrapped, "stacktrace", None),
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


class _Heartbeat:
    """What a launcher calls while a task runs: Temporal's heartbeat, and every
    ``LEASE_REFRESH_SECONDS`` a refresh of the attempt's lease (in a thread)."""

    def __init__(self, leases: Leases | None, attempt: int):
        self.leases, self.attempt = leases, attempt
        self.refreshed = time.monotonic()

    def __call__(self) -> None:
        activity.heartbeat()
        now = time.monotonic()
        if self.leases is not None and now - self.refreshed >= LEASE_REFRESH_SECONDS:
            self.refreshed = now
            asyncio.get_running_loop().run_in_executor(
                None, self.leases.write, self.attempt, RUNNING
            )


def _not_recorded(task: _Task) -> ApplicationError:
    """A task that exited 0 without Metaflow's record that it completed."""
    return ApplicationError(
        f"Metaflow task {task.pathspec} (attempt {task.attempt}) exited with code 0 "
        "but Metaflow recorded no completion for it: the command did not run this "
        f"task of flow {task.flow.name} (is {task.flow_arg} the file that defines "
        "it, and does it run the flow under `if __name__ == '__main__':`?)",
        {"pathspec": task.pathspec, "attempt": task.attempt},
        type=TASK_NOT_RECORDED,
        non_retryable=True,
    )


def top_level_options(
    flow: FlowRef, env: Mapping[str, str], workdir: Path
) -> tuple[list[str], FlowDataStore]:
    """The ``<top>`` options of every command, and the datastore they point at (see
    :func:`resolved_options`)."""
    args = resolved_options(flow.top_level, env, workdir)
    return ["--quiet", "--no-pylint", *args], flow_datastore(flow.name, args)


def resolved_options(
    top_level: Sequence[str], env: Mapping[str, str], workdir: Path
) -> list[str]:
    """``top_level`` (the generated ``FlowRef.top_level``) with every option of
    ``METAFLOW_OPTIONS`` and ``--datastore-root`` made explicit.

    An option the module pins is kept; any other is what Metaflow's configuration
    says for a process with environment ``env`` started in ``workdir`` (as ``python
    flow.py run`` there takes its defaults: :mod:`.settings`), else Metaflow's
    default. The datastore root is resolved here too, as Metaflow resolves it, so
    that the task, its logs and the worker's read-back use the same datastore (and
    Metaflow's runtime, too, hands its tasks these options explicitly).
    """
    args = list(top_level)
    try:
        for option, (name, default) in METAFLOW_OPTIONS.items():
            if _option(args, option) is None:
                value = settings.setting(name, env, workdir)
                value = default if value is None else str(value)
                _check_choice(option, value, f"METAFLOW_{name} in Metaflow's config")
                args.append(f"--{option}={value}")
            else:
                _check_choice(option, _option(args, option), "given when generating")
        ds_type = _option(args, "datastore")
        impl = next(d for d in DATASTORES if d.TYPE == ds_type)
        if _option(args, DATASTORE_ROOT_OPTION) is None:
            root = _datastore_root(impl, env, workdir)
            args.append(f"--{DATASTORE_ROOT_OPTION}={root}")
        if _option(args, "metadata") == "local" and ds_type != "local":
            # Metaflow's local metadata finds its root as the local datastore does,
            # creating it when absent: made here, once, the first tasks on a fresh
            # host do not race to create it (FileExistsError)
            _datastore_root(
                next(d for d in DATASTORES if d.TYPE == "local"), env, workdir
            )
    except settings.ConfigError as err:
        raise ApplicationError(str(err), non_retryable=True) from None
    return args


def flow_datastore(flow_name: str, args: Sequence[str]) -> FlowDataStore:
    """The datastore of ``flow_name`` that resolved options ``args`` name."""
    ds_type = _option(args, "datastore")
    impl = next(d for d in DATASTORES if d.TYPE == ds_type)
    return FlowDataStore(
        flow_name, storage_impl=impl, ds_root=_option(args, DATASTORE_ROOT_OPTION)
    )


def _absolute_paths(paths: str, base: Path) -> str:
    """A ``PYTHONPATH``-style list with its relative entries made relative to
    ``base`` (an empty entry is the current directory)."""
    return os.pathsep.join(
        os.path.join(base, entry) for entry in paths.split(os.pathsep)
    )


def _check_choice(option: str, value: str | None, source: str) -> None:
    choices = OPTION_CHOICES[option]()
    if value not in choices:
        raise ApplicationError(
            f"unknown Metaflow --{option} {value!r} ({source}; Metaflow has "
            + ", ".join(choices)
            + ")",
            non_retryable=True,
        )


def _datastore_root(impl, env: Mapping[str, str], workdir: Path) -> str:
    """Metaflow's own root resolution (``get_datastore_root_from_config``) for a
    process with environment ``env`` started in ``workdir``:
    ``METAFLOW_DATASTORE_SYSROOT_<TYPE>`` from the environment or Metaflow's config
    files; for the local datastore ``$SYSROOT/.metaflow``, else the first
    ``.metaflow`` walking up from ``workdir``, else a new one in ``workdir``."""
    name = "DATASTORE_SYSROOT_" + impl.TYPE.upper()
    sysroot = settings.setting(name, env, workdir)
    if not issubclass(impl, LocalStorage):
        if sysroot is None:  # (a datastore of an extension may find its root itself)
            sysroot = impl.get_datastore_root_from_config(lambda *a, **k: None)
        if not sysroot:
            raise ApplicationError(
                f"Metaflow's {impl.TYPE} datastore has no root: set METAFLOW_{name} "
                "where the worker runs (or in its Metaflow config), or generate "
                "with --datastore-root",
                non_retryable=True,
            )
        return str(sysroot)
    if sysroot is not None:  # (a relative one is relative to the task's cwd)
        return os.path.join(workdir, str(sysroot), impl.DATASTORE_DIR)
    here = os.path.realpath(os.path.join(workdir, impl.DATASTORE_DIR))
    if os.path.isdir(here):
        return here
    for directory in Path(workdir).parents:
        if (directory / impl.DATASTORE_DIR).is_dir():
            return str(directory / impl.DATASTORE_DIR)
    os.makedirs(here, exist_ok=True)
    return here


def _init_options(options: Sequence[str], flow_dir: Path) -> list[str]:
    """``FlowRef.init_options`` for a task that runs anywhere: the generator writes
    ``--config NAME PATH`` relative to the flow's directory; make PATH absolute."""
    options, i = list(options), 0
    while i < len(options):
        if options[i] in ("--config", "--config-value") and i + 2 < len(options):
            if options[i] == "--config":
                options[i + 2] = os.path.join(flow_dir, options[i + 2])
            i += 3
        else:
            i += 1
    return options


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


def _log_lines(mflog_file: Path, lines: int = STDERR_SEARCH_LINES) -> list[str]:
    """The last lines of an mflog file, undecorated."""
    if not mflog_file.exists():
        return []
    raw = mflog_file.read_bytes().splitlines()[-lines:]
    return [
        (parsed.msg if (parsed := parse(line)) else line).decode("utf-8", "replace")
        for line in raw
    ]
