"""Worker and trigger entry points for a generated workflow module.

A generated module exposes ``WORKFLOWS`` (classes to register), ``WORKFLOW`` (the main
workflow, named like the flow), ``PARAMS`` (frozen dataclass of the flow's Parameters),
``FLOW`` (:class:`FlowRef`), ``TASK_QUEUE`` and, for ``@project``/``@schedule`` flows,
``PROJECT``/``SCHEDULE``. Its worker entry calls :func:`main`::

    python -m out.myflow_worker                          # long-running worker (+ schedule)
    python -m out.myflow_worker trigger --param k=v      # start a run, wait, print pathspec
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import inspect
import json
import os
import signal
import sys
import types
import typing
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.service import RPCError
from temporalio.worker import Worker

from .activities import FlowLoadError, MetaflowActivities
from .. import cron
from .deployment import Deployment, Schedule, needs_metaflow, resolve
from .module_check import problems
from .launcher import Launcher, SubprocessLauncher
from .orchestration import MAX_NUM_SPLITS, RunOptions, encode_parameters
from .schedules import sync_schedule

# Running tasks get this long to finish on shutdown before they are cancelled
# (their process groups killed; Temporal retries them elsewhere).
GRACEFUL_SHUTDOWN = timedelta(seconds=10)
# Heartbeats reach the server at least this often: a cancelled task learns of it (and
# is killed) within about this long. The SDK's default is 80% of the heartbeat timeout.
HEARTBEAT_THROTTLE = timedelta(seconds=2)
CONNECT_FAILURE_GRACE = 0.5
_SCALARS = {"str": str, "int": int, "float": float, "bool": bool}
_BOOLS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
# Longest ``METAFLOW_INIT_<NAME>=<value>`` environment entry a task can get: Linux
# refuses any single argv or environment string longer than MAX_ARG_STRLEN (32
# pages, 131072 bytes with its NUL) with E2BIG.
MAX_ENV_ENTRY_BYTES = 131072 - 1
# The launcher used when none is named: the fork server where it works.
DEFAULT_LAUNCHER = "default"


class ParamError(ValueError):
    """A ``--param`` that does not fit the flow's Parameters."""


class ConnectError(RuntimeError):
    """The Temporal server cannot be reached."""


async def connect(address: str, namespace: str = "default") -> Client:
    """``Client.connect`` with an error that names the address."""
    try:
        return await Client.connect(address, namespace=namespace)
    except RuntimeError as exc:
        # Let the SDK's connection threads wind down: a process that exits right
        # after a failed connect aborts now and then (temporalio/sdk-python#300).
        await asyncio.sleep(CONNECT_FAILURE_GRACE)
        raise ConnectError(f"cannot reach Temporal at {address}: {exc}") from exc


def parse_params(params_cls: type, pairs: list[str]) -> Any:
    """Build a ``PARAMS`` instance from ``NAME=VALUE`` strings, typed by its fields."""
    fields = {f.name: f for f in dataclasses.fields(params_cls)}
    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        key = name.strip().replace("-", "_")
        if not sep:
            raise ParamError(f"--param {pair!r}: expected NAME=VALUE")
        if key not in fields:
            known = ", ".join(sorted(fields)) or "none"
            raise ParamError(f"unknown parameter {name!r} (known: {known})")
        values[key] = _convert(key, fields[key].type, raw)
    missing = [
        name
        for name, f in fields.items()
        if name not in values
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ParamError("missing required parameter(s): " + ", ".join(missing))
    params = params_cls(**values)
    check_params(params)
    return params


def check_params(params: Any) -> None:
    """Raise ParamError for a value Metaflow cannot receive: its ``init`` gets each
    parameter as an environment variable ``METAFLOW_INIT_<NAME>``, which can hold
    no NUL byte and, on Linux, at most ~128 KiB."""
    for name, value in encode_parameters(params).items():
        if "\0" in value:
            raise ParamError(f"parameter {name}: the value contains a NUL byte")
        room = MAX_ENV_ENTRY_BYTES - len(f"METAFLOW_INIT_{name.upper()}=")
        size = len(value.encode("utf-8", "surrogateescape"))
        if size > room:
            raise ParamError(
                f"parameter {name}: the value is {size:,} bytes, more than the "
                f"{room:,} Metaflow can take (parameters reach its init as "
                "environment variables, at most 128 KiB each)"
            )


def _kind(annotation: Any) -> str:
    """``str``/``int``/``float``/``bool``/``Any`` (JSON) of a PARAMS field's type,
    ``X | None`` and ``Optional[X]`` included; annotations may be strings (``from
    __future__ import annotations``) or types."""
    if not isinstance(annotation, str):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if args and typing.get_origin(annotation) in (typing.Union, types.UnionType):
            annotation = args[0] if len(args) == 1 else typing.Any
        if annotation is typing.Any:
            return "Any"
        return getattr(annotation, "__name__", "")
    text = annotation.replace(" ", "").replace("typing.", "")
    for wrapper in ("Optional[", "Union["):
        if text.startswith(wrapper) and text.endswith("]"):
            text = text[len(wrapper) : -1].replace(",", "|")
    parts = [p for p in text.split("|") if p != "None"]
    return parts[0] if len(parts) == 1 else "Any"


def _convert(name: str, annotation: Any, raw: str) -> Any:
    kind = _kind(annotation)
    try:
        if kind == "bool":
            return _BOOLS[raw.strip().lower()]
        if kind in _SCALARS:
            return _SCALARS[kind](raw)
        return json.loads(raw)
    except (KeyError, ValueError) as exc:
        expected = (
            "true/false" if kind == "bool" else kind if kind in _SCALARS else "JSON"
        )
        raise ParamError(f"parameter {name}: {raw!r} is not valid {expected}") from exc


def default_launcher() -> str:
    """``"fork"`` where the fork server works (``os.fork`` and fd passing over Unix
    sockets exist), else ``"subprocess"``."""
    from .forkserver import AVAILABLE

    return "fork" if AVAILABLE else "subprocess"


def make_launcher(kind: str | Launcher = DEFAULT_LAUNCHER) -> Launcher:
    """``"subprocess"``, ``"fork"`` (the fork server, if available), ``"default"``
    (:func:`default_launcher`) or an instance."""
    if isinstance(kind, Launcher):
        return kind
    if kind == DEFAULT_LAUNCHER:
        kind = default_launcher()
    if kind == "subprocess":
        return SubprocessLauncher()
    if kind == "fork":
        try:
            from .forkserver import ForkServerLauncher
        except ImportError as exc:
            raise ValueError(f"the fork launcher is not available: {exc}") from exc
        return ForkServerLauncher()
    raise ValueError(f"unknown launcher {kind!r} (use subprocess, fork or default)")


def build_worker(
    client: Client,
    module: ModuleType,
    *,
    task_queue: str,
    launcher: str | Launcher = "subprocess",
    max_concurrent_activities: int | None = None,
    on_event: Callable[[dict], None] | None = None,
    fail_fast: bool = False,
    workdir: Path | None = None,
    task_output: bool = False,
) -> Worker:
    """A worker for ``module.WORKFLOWS`` and the Metaflow activities (not yet running).

    Create it inside the event loop that will run it. A launcher given by name is
    never closed, so the default here is a fresh interpreter per task (use
    :func:`running_worker`, which closes what it made and defaults to the fork
    server). Tasks run in ``workdir`` (default: the cwd now). With ``fail_fast`` any
    exception in workflow code fails the run; by default Temporal retries the
    workflow task until a fixed worker is deployed (the run looks hung meanwhile).
    ``task_output`` adds an ``output`` event per line a task prints.
    """
    owner = resolve(module).owner
    activities = MetaflowActivities(
        Path(module.__file__).parent,
        launcher=make_launcher(launcher),
        # a @project user branch: every task sees the branch the worker resolved
        env={**os.environ, "METAFLOW_OWNER": owner} if owner else None,
        on_event=on_event,
        workdir=workdir,
        task_output=task_output,
    )
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(module.WORKFLOWS),
        activities=[
            activities.init,
            activities.step,
            activities.compensate,
            activities.defaults,
            activities.facts,
        ],
        max_concurrent_activities=max_concurrent_activities,
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
        workflow_failure_exception_types=[Exception] if fail_fast else [],
    )


@asynccontextmanager
async def running_worker(
    client: Client,
    module: ModuleType,
    *,
    task_queue: str,
    launcher: str | Launcher = DEFAULT_LAUNCHER,
    max_concurrent_activities: int | None = None,
    on_event: Callable[[dict], None] | None = None,
    fail_fast: bool = False,
    workdir: Path | None = None,
    task_output: bool = False,
    check: bool = True,
) -> AsyncIterator[Worker]:
    """Run a worker for the block; then shut it down and close the launcher
    (only a launcher it made from a name: a given instance stays the caller's).
    The default launcher is the fork server where it works (:func:`make_launcher`).
    With ``check`` (the default) it first has Metaflow load the flow where tasks run
    and refuses a stale module (:func:`check_flow` raises :class:`StaleModule`)."""
    if check:
        await check_flow(module, workdir=workdir)
    owned = make_launcher(launcher)
    try:
        async with build_worker(
            client,
            module,
            task_queue=task_queue,
            launcher=owned,
            max_concurrent_activities=max_concurrent_activities,
            on_event=on_event,
            fail_fast=fail_fast,
            workdir=workdir,
            task_output=task_output,
        ) as worker:
            yield worker
    finally:
        if owned is not launcher:
            owned.close()


def evaluated_schedule(described: dict) -> Schedule | None:
    """The ``@schedule`` Metaflow evaluated (``flow_facts``), its cron checked."""
    found = described.get("schedule")
    if not found:
        return None
    try:
        cron.parse(found["cron"])
    except cron.CronError as err:
        raise StaleModule(f"@schedule: {err.message} ({err.hint})") from None
    return Schedule(found["cron"], timezone=found.get("timezone"))


class StaleModule(RuntimeError):
    """The generated module does not orchestrate the flow Metaflow loads."""


async def describe_flow(module: ModuleType, workdir: Path | None = None) -> dict:
    """The flow as Metaflow loads it where the module's tasks run (``flow_facts``)."""
    owner = resolve(module).owner
    activities = MetaflowActivities(
        Path(module.__file__).parent,
        env={**os.environ, "METAFLOW_OWNER": owner} if owner else None,
        workdir=workdir,
    )
    return await activities.describe(module.FLOW)


async def warm_up(
    module: ModuleType, launcher: Launcher, workdir: Path | None = None
) -> None:
    """Have ``launcher`` start what it keeps between tasks (the fork server) for the
    module's tasks now, e.g. while a dev server starts (``mf-temporal-codegen run``)."""
    owner = resolve(module).owner
    activities = MetaflowActivities(
        Path(module.__file__).parent,
        launcher=launcher,
        env={**os.environ, "METAFLOW_OWNER": owner} if owner else None,
        workdir=workdir,
    )
    await activities.warm_up(module.FLOW)


async def check_flow(module: ModuleType, workdir: Path | None = None) -> dict:
    """Have Metaflow describe the flow and check the module against it: a changed
    graph or a fixed fact Metaflow contradicts raises :class:`StaleModule` (with the
    regenerate command); returns the description."""
    described = await describe_flow(module, workdir)
    found = problems(module, described)
    if found:
        raise StaleModule("\n".join(found))
    return described


async def deployment_of(module: ModuleType, described: dict | None = None) -> Deployment:
    """The module's deployment; a @project name only Metaflow can compute is taken
    from ``described`` (or from Metaflow, loading the flow)."""
    if not needs_metaflow(module):
        return resolve(module)
    if described is None:
        described = await describe_flow(module)
    return resolve(module, project_name=described["project_name"])


async def start_workflow(
    client: Client,
    module: ModuleType,
    params: Any,
    *,
    task_queue: str,
    workflow_id: str | None = None,
    options: RunOptions | None = None,
) -> WorkflowHandle:
    """Start one run of ``module.WORKFLOW`` with a ``PARAMS`` instance.

    ``options`` goes along when ``run`` takes it: Temporal decodes arguments by
    their type hints only when every parameter gets a value.
    """
    run = module.WORKFLOW.run
    args = [params, options] if len(inspect.signature(run).parameters) > 2 else [params]
    return await client.start_workflow(
        run,
        args=args,
        id=workflow_id or resolve(module).new_workflow_id(),
        task_queue=task_queue,
    )


async def run_workflow(
    client: Client,
    module: ModuleType,
    params: Any,
    *,
    task_queue: str,
    workflow_id: str | None = None,
    options: RunOptions | None = None,
) -> Any:
    """Start one run and wait for its result (raises ``WorkflowFailureError``)."""
    handle = await start_workflow(
        client,
        module,
        params,
        task_queue=task_queue,
        workflow_id=workflow_id,
        options=options,
    )
    return await handle.result()


def describe_failure(exc: BaseException | None) -> str:
    """The messages of an error and its causes, outermost first, without repeats."""
    messages: list[str] = []
    while exc is not None:
        text = str(exc)
        if not any(text in seen for seen in messages):
            messages.append(f"{type(exc).__name__}: {text}")
        exc = getattr(exc, "cause", None) or exc.__cause__
    return "\n  caused by ".join(messages)


def main(module: ModuleType, argv: list[str] | None = None) -> int:
    """Command line of a generated worker entry point; returns the exit code.

    Without ``argv`` (the entry module's ``__main__``) it ends the process itself once
    the output is flushed: the SDK's core threads can abort the interpreter's exit of
    a short-lived client, after a successful trigger too (temporalio/sdk-python#300).
    """
    if argv is None:
        code = _command(module, sys.argv[1:])
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return _command(module, argv)


def _command(module: ModuleType, argv: list[str]) -> int:
    argv = list(argv)
    if not argv or argv[0] not in ("worker", "trigger", "-h", "--help"):
        argv.insert(0, "worker")
    args = _parser(module).parse_args(argv)
    if args.command == "trigger":
        try:
            params = parse_params(module.PARAMS, args.param)
        except ParamError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        command = _trigger(module, args, params)
    else:
        try:
            launcher = make_launcher(args.launcher)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        command = _serve(module, args, launcher)
    try:
        return asyncio.run(command)
    except ConnectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.command == "worker":
            launcher.close()


def _parser(module: ModuleType) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=f"Temporal worker for {module.FLOW.name}"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    worker = commands.add_parser("worker", help="run a worker until Ctrl-C/SIGTERM")
    trigger = commands.add_parser("trigger", help="start a run and wait for it")
    for sub in (worker, trigger):
        sub.add_argument(
            "--address", default=os.environ.get("TEMPORAL_ADDRESS", "localhost:7233")
        )
        sub.add_argument("--namespace", default="default")
        sub.add_argument(
            "--task-queue", default=None, help="default: the flow's (see @project)"
        )
    worker.add_argument(
        "--launcher",
        default=DEFAULT_LAUNCHER,
        choices=["subprocess", "fork", DEFAULT_LAUNCHER],
        help="how tasks start: a fork of a pre-warmed interpreter (fork), a fresh "
        "python per task (subprocess, the reference), or the default: fork where "
        "it works, else subprocess",
    )
    worker.add_argument(
        "--no-schedule",
        action="store_true",
        help="leave the flow's Temporal Schedule (@schedule) as it is",
    )
    worker.add_argument("--max-concurrent-activities", type=int, default=None)
    trigger.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    trigger.add_argument("--workflow-id", default=None)
    trigger.add_argument(
        "--max-workers", type=int, default=None, help="foreach tasks at once"
    )
    trigger.add_argument(
        "--max-num-splits",
        type=int,
        default=MAX_NUM_SPLITS,
        help=f"widest foreach allowed (default {MAX_NUM_SPLITS})",
    )
    trigger.add_argument("--tag", action="append", default=[], help="run tag")
    return parser


async def _serve(
    module: ModuleType, args: argparse.Namespace, launcher: Launcher
) -> int:
    client = await connect(args.address, args.namespace)
    try:
        described = await check_flow(module)
        schedule = evaluated_schedule(described)
    except (StaleModule, FlowLoadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    deployment = await deployment_of(module, described)
    task_queue = args.task_queue or deployment.task_queue
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if not args.no_schedule:
        try:
            outcome = await sync_schedule(
                client, module, deployment, task_queue, schedule
            )
        except RPCError as exc:
            print(
                f"error: schedule {deployment.schedule_id}: {exc} "
                "(--no-schedule starts the worker without touching it)",
                file=sys.stderr,
            )
            return 1
        if outcome != "none":
            print(f"schedule {deployment.schedule_id}: {outcome}", flush=True)
    print(
        f"worker for {deployment.name} on {args.address} "
        f"(namespace {args.namespace}, task queue {task_queue}, "
        f"launcher {launcher.name}); Ctrl-C to stop",
        flush=True,
    )
    async with running_worker(
        client,
        module,
        task_queue=task_queue,
        launcher=launcher,
        max_concurrent_activities=args.max_concurrent_activities,
    ):
        await stop.wait()
        print("shutting down: waiting for running tasks", flush=True)
    return 0


async def _trigger(module: ModuleType, args: argparse.Namespace, params: Any) -> int:
    client = await connect(args.address, args.namespace)
    options = RunOptions(
        max_workers=args.max_workers,
        tags=tuple(args.tag),
        max_num_splits=args.max_num_splits,
    )
    try:
        task_queue = args.task_queue or (await deployment_of(module)).task_queue
    except FlowLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    handle = await start_workflow(
        client,
        module,
        params,
        task_queue=task_queue,
        workflow_id=args.workflow_id,
        options=options,
    )
    print(f"workflow: {handle.id} (task queue {task_queue})", flush=True)
    try:
        result = await handle.result()
    except WorkflowFailureError as exc:
        print(f"run failed: {describe_failure(exc.cause or exc)}", file=sys.stderr)
        return 1
    print(f"pathspec: {result.pathspec}")
    return 0
