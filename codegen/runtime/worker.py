"""Worker and trigger entry points for a generated workflow module.

A generated module exposes ``WORKFLOWS`` (classes to register), ``WORKFLOW`` (the main
workflow, named like the flow), ``PARAMS`` (frozen dataclass of the flow's Parameters),
``FLOW`` (:class:`FlowRef`), ``TASK_QUEUE`` and, for ``@project``/``@schedule`` flows,
``PROJECT``/``SCHEDULE``. Its worker entry calls :func:`main`::

    python -m out.myflow_worker                          # long-running worker (+ schedule)
    python -m out.myflow_worker trigger --param k=v      # start a run, wait, print pathspec
    python -m out.myflow_worker versions                 # versions and their runs in flight
    python -m out.myflow_worker worker --queue gpu       # a pool for steps routed to gpu

The worker serves its module's Worker Deployment Version (:mod:`.versioning`) and
drains on SIGTERM/Ctrl-C: no new tasks, running ones get ``--grace-seconds`` to
finish, the rest go back to Temporal. Worker and trigger ride out server outages
(one line when the server goes away, one when it is back).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import inspect
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.common import WorkerDeploymentVersion
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    FailureError,
    TimeoutError,
    WorkflowAlreadyStartedError,
)
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from .activities import FlowLoadError, MetaflowActivities
from .connection import (
    ADDRESS_ENV,
    DEFAULT_ADDRESS,
    DEFAULT_NAMESPACE,
    NAMESPACE_ENV,
    START_PATIENCE,
    ConnectError,
    ServerWatch,
    connect,
    default_address,
    default_namespace,
    through_outages,
    watch_server,
)
from .packages import PackageSource
from .params import ParamError, parse_params, resume_params
from .payloads import CodePackage
from .. import cron
from .deployment import Deployment, Schedule, needs_metaflow, resolve
from .module_check import problems
from .launcher import Launcher, SubprocessLauncher
from .limits import MAX_NUM_SPLITS
from .specs import Resume, RunOptions
from .schedules import sync_schedule
from .subscriptions import FinishAnnouncer, TriggerError, end_step
from .subscriptions import sync_module as sync_subscription
from . import versioning, visibility
from .visibility import SearchAttributesMissing

# Running tasks get this long to finish on shutdown before they are cancelled
# (their process groups killed; Temporal retries them on another worker of their
# version). ``worker --grace-seconds`` sets it.
DEFAULT_GRACE = timedelta(seconds=60)
# Heartbeats reach the server at least this often: a cancelled task learns of it (and
# is killed) within about this long. The SDK's default is 80% of the heartbeat timeout.
HEARTBEAT_THROTTLE = timedelta(seconds=2)
# The launcher used when none is named: the fork server where it works.
DEFAULT_LAUNCHER = "default"


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


def _module_dir(module: ModuleType) -> Path:
    """The directory of a generated module (always imported from a file)."""
    if module.__file__ is None:  # Path(None) would raise TypeError too
        raise TypeError(f"module {module.__name__} has no file")
    return Path(module.__file__).parent


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
    grace: timedelta = DEFAULT_GRACE,
    version: WorkerDeploymentVersion | None = None,
    ui_url: str | None = None,
    env: Mapping[str, str] | None = None,
    activities_only: bool = False,
    package: CodePackage | None = None,
) -> Worker:
    """A worker for ``module.WORKFLOWS`` and the Metaflow activities (not yet running).

    Create it inside the event loop that will run it. A launcher given by name is
    never closed, so the default here is a fresh interpreter per task (use
    :func:`running_worker`, which closes what it made and defaults to the fork
    server). Tasks run in ``workdir`` (default: the cwd now). With ``fail_fast`` any
    exception in workflow code fails the run; by default Temporal retries the
    workflow task until a fixed worker is deployed (the run looks hung meanwhile).
    ``task_output`` adds an ``output`` event per line a task prints. On shutdown
    running tasks get ``grace`` to finish. With ``version`` it polls as that Worker
    Deployment Version, its runs pinned to it (:mod:`.versioning`). ``ui_url`` (default
    ``$TEMPORAL_UI_URL``): the Temporal UI, whose page of its workflow every task
    records in its Metaflow metadata. Tasks get ``env`` (default: this process's
    environment). ``activities_only``: no workflows, only the tasks of the steps
    routed to ``task_queue`` (a worker pool, see ``StepSpec.task_queue``). The
    runs it starts of a packaged flow (``FlowRef.packaged``) take ``package``.
    """
    owner = resolve(module).owner
    base = os.environ if env is None else env
    activities = MetaflowActivities(
        _module_dir(module),
        launcher=make_launcher(launcher),
        # a @project user branch: every task sees the branch the worker resolved
        env={**base, "METAFLOW_OWNER": owner} if owner else env,
        on_event=on_event,
        workdir=workdir,
        task_output=task_output,
        ui_url=ui_url,
    )
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[] if activities_only else list(module.WORKFLOWS),
        activities=[
            activities.init,
            activities.step,
            activities.compensate,
            activities.defaults,
            activities.facts,
            activities.origin,
            activities.clone,
            # (local activities: a run that succeeded starts its @trigger_on_finish
            # downstream deployments; a packaged run takes this worker's package)
            FinishAnnouncer(end_step(module)).announce,
            PackageSource(package).current,
        ],
        max_concurrent_activities=max_concurrent_activities,
        graceful_shutdown_timeout=grace,
        max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
        workflow_failure_exception_types=[Exception] if fail_fast else [],
        deployment_config=versioning.deployment_config(version) if version else None,
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
    grace: timedelta = DEFAULT_GRACE,
    versioned: bool = False,
    watch: ServerWatch | None = None,
    ui_url: str | None = None,
    search_attributes: bool = True,
    env: Mapping[str, str] | None = None,
    activities_only: bool = False,
    deployment_queue: str | None = None,
    package: CodePackage | None = None,
) -> AsyncIterator[Worker]:
    """Run a worker for the block; then shut it down (running tasks get ``grace``)
    and close the launcher (only a launcher it made from a name: a given instance
    stays the caller's). The default launcher is the fork server where it works
    (:func:`make_launcher`). With ``check`` (the default) it first has Metaflow load
    the flow where tasks run and refuses a stale module (:func:`check_flow` raises
    :class:`StaleModule`).

    ``versioned`` serves the module's Worker Deployment Version (the ``worker``
    command does): runs stay on the code they started on, and once polling it makes
    its version current unless a newer one is (:func:`versioning.promote`, through
    server outages, which ``watch`` reports). Off by default: a worker alone on its
    own task queue (tests, ``mf-temporal-codegen run``) gains nothing from it.

    With ``search_attributes`` (the default) the namespace first gets the Metaflow
    search attributes it lacks (:func:`visibility.ensure_search_attributes`, which
    raises :class:`SearchAttributesMissing` where the server refuses).

    ``activities_only`` serves no workflows, only the tasks of the steps routed to
    ``task_queue`` (``--queue STEP=QUEUE`` when generating): a worker pool. Versioned,
    it polls as the version of the deployment named by ``deployment_queue`` (the
    flow's queue) and never promotes it: the flow's own workers do. Tasks get
    ``env`` (default: this process's environment).

    A packaged flow's runs it starts take ``package``; by default it builds the
    package from the checkout first (:func:`build_package`)."""
    if search_attributes:
        await visibility.ensure_search_attributes(client, client.namespace)
    if check:
        await check_flow(module, workdir=workdir)
    if module.FLOW.packaged and package is None and not activities_only:
        package = await build_package(module, workdir)
    version = (
        versioning.version_of(module, deployment_queue or task_queue)
        if versioned
        else None
    )
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
            grace=grace,
            version=version,
            ui_url=ui_url,
            env=env,
            activities_only=activities_only,
            package=package,
        ) as worker:
            if version and not activities_only:
                await through_outages(
                    lambda: versioning.promote(client, version),
                    client,
                    watch or ServerWatch(client.service_client.config.target_host),
                )
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
    return await _checkout(module, workdir).describe(module.FLOW)


async def build_package(module: ModuleType, workdir: Path | None = None) -> CodePackage:
    """Metaflow's code package of the module's flow, built from the checkout and
    saved in the datastore its tasks use (:mod:`.packages`)."""
    return await _checkout(module, workdir).build_package(module.FLOW)


async def warm_up(
    module: ModuleType, launcher: Launcher, workdir: Path | None = None
) -> None:
    """Have ``launcher`` start what it keeps between tasks (the fork server) for the
    module's tasks now, e.g. while a dev server starts (``mf-temporal-codegen run``)."""
    await _checkout(module, workdir, launcher).warm_up(module.FLOW)


def _checkout(
    module: ModuleType, workdir: Path | None, launcher: Launcher | None = None
) -> MetaflowActivities:
    """Activities on the module's checkout, outside any worker (with the @project
    user branch the module resolves)."""
    owner = resolve(module).owner
    return MetaflowActivities(
        _module_dir(module),
        launcher=launcher,
        env={**os.environ, "METAFLOW_OWNER": owner} if owner else None,
        workdir=workdir,
    )


async def check_flow(module: ModuleType, workdir: Path | None = None) -> dict:
    """Have Metaflow describe the flow and check the module against it: a changed
    graph or a fixed fact Metaflow contradicts raises :class:`StaleModule` (with the
    regenerate command); returns the description."""
    described = await describe_flow(module, workdir)
    found = problems(module, described)
    if found:
        raise StaleModule("\n".join(found))
    return described


async def deployment_of(
    module: ModuleType, described: dict | None = None
) -> Deployment:
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
    watch: ServerWatch | None = None,
    patience: timedelta = START_PATIENCE,
    deployment: Deployment | None = None,
    tags: Sequence[str] = (),
    user: str | None = None,
    execution_timeout: timedelta | None = None,
) -> WorkflowHandle:
    """Start one run of ``module.WORKFLOW`` with a ``PARAMS`` instance.

    ``options`` goes along when ``run`` takes it: Temporal decodes arguments by
    their type hints only when every parameter gets a value. With ``watch`` an
    unreachable server is retried for ``patience`` (then :class:`ConnectError`).

    Every run starts with what Temporal shows of it (:mod:`.visibility`): the
    Metaflow search attributes (flow, ``deployment`` (default: the module's, see
    :func:`deployment_of`), ``user`` (default: Metaflow's user here), project, branch,
    tags: the module's, ``options.tags`` and ``tags``, which tag the Metaflow run
    too), a summary and details (flow, parameters), and Temporal's execution timeout:
    ``execution_timeout``, else the module's ``WORKFLOW_TIMEOUT`` (``--workflow-timeout``).
    A namespace without the search attributes is :class:`SearchAttributesMissing`.
    """
    run = module.WORKFLOW.run
    if tags:
        options = options or RunOptions()
        options = dataclasses.replace(options, tags=(*options.tags, *tags))
    args = [params, options] if len(inspect.signature(run).parameters) > 2 else [params]
    if deployment is None:
        deployment = await deployment_of(module)
    workflow_id = workflow_id or deployment.new_workflow_id()
    start_options = visibility.start_options(
        module,
        params,
        deployment,
        task_queue,
        tags=(*module.FLOW.tags, *(options.tags if options else ())),
        user=user,
        execution_timeout=execution_timeout,
    )
    attempts = 0

    async def start() -> WorkflowHandle:
        nonlocal attempts
        attempts += 1
        try:
            return await client.start_workflow(
                run, args=args, id=workflow_id, task_queue=task_queue, **start_options
            )
        except WorkflowAlreadyStartedError as exc:
            if attempts == 1:
                raise
            # an attempt cut off by the outage did start it
            return client.get_workflow_handle_for(run, workflow_id, run_id=exc.run_id)
        except RPCError as exc:
            if (
                exc.status == RPCStatusCode.INVALID_ARGUMENT
                and "search attribute" in exc.message.lower()
            ):
                raise SearchAttributesMissing(
                    f"cannot start {module.FLOW.name}: {exc.message}; register the "
                    f"search attributes once with `{visibility.register_commands(client.namespace)}`"
                ) from None
            raise

    if watch is None:
        return await start()
    return await through_outages(start, client, watch, patience)


async def wait_for_result(
    client: Client, handle: WorkflowHandle, watch: ServerWatch | None = None
) -> Any:
    """The run's result (raises ``WorkflowFailureError``); with ``watch`` it keeps
    waiting through server outages, however long."""
    if watch is None:
        return await handle.result()
    return await through_outages(handle.result, client, watch)


async def run_workflow(
    client: Client,
    module: ModuleType,
    params: Any,
    *,
    task_queue: str,
    workflow_id: str | None = None,
    options: RunOptions | None = None,
    watch: ServerWatch | None = None,
    **start: Any,
) -> Any:
    """Start one run and wait for its result (raises ``WorkflowFailureError``),
    through server outages with ``watch``; ``start``: more :func:`start_workflow`
    keyword arguments."""
    handle = await start_workflow(
        client,
        module,
        params,
        task_queue=task_queue,
        workflow_id=workflow_id,
        options=options,
        watch=watch,
        **start,
    )
    return await wait_for_result(client, handle, watch)


def describe_failure(
    exc: BaseException | None, timeout: timedelta | None = None
) -> str:
    """What went wrong, for the flow's author: the error's message (the runtime's
    start with the user's exception line, then the task, then the traceback once),
    then each cause that adds something; Temporal's wrappers ("Activity task
    failed") and what was said already are left out. A run Temporal timed out says
    so (with ``timeout``, the workflow timeout it had)."""
    if isinstance(exc, TimeoutError):
        limit = f" of {timeout.total_seconds():g} s" if timeout else ""
        return (
            f"the run took longer than its workflow timeout{limit} "
            "(--workflow-timeout): Temporal ended it, and its Metaflow tasks still "
            "running were killed and recorded failed"
        )
    parts: list[str] = []
    while exc is not None:
        text = _failure_text(exc)
        first = text.strip().splitlines()[0] if text.strip() else ""
        if first and not any(first in seen for seen in parts):
            parts.append(text.rstrip())
        exc = getattr(exc, "cause", None) or exc.__cause__
    return "\n  caused by ".join(parts)


def _failure_text(exc: BaseException) -> str:
    """One error's own text ("" for a wrapper that only says where it happened)."""
    if isinstance(exc, (ActivityError, ChildWorkflowError)) and exc.cause is not None:
        return ""
    if isinstance(exc, ApplicationError) and (exc.type or "").startswith("Metaflow"):
        return exc.message
    if isinstance(exc, TimeoutError):
        kind = exc.type.name.lower().replace("_", "-") if exc.type else "timeout"
        return f"timed out ({kind}): {exc.message}"
    if isinstance(exc, FailureError):
        return f"{type(exc).__name__}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"


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


# the subcommands (without one: ``worker``)
COMMANDS = ("worker", "trigger", "resume", "versions", "-h", "--help")


def _command(module: ModuleType, argv: list[str]) -> int:
    argv = list(argv)
    if not argv or argv[0] not in COMMANDS:
        argv.insert(0, "worker")
    args = _parser(module).parse_args(argv)
    launcher = None
    if args.command in ("trigger", "resume"):
        resume = None
        try:
            if args.command == "resume":
                params, given = resume_params(module.PARAMS, args.param)
                resume = Resume(args.origin_run_id, args.step, given)
            else:
                params = parse_params(module.PARAMS, args.param)
        except ParamError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        command = _trigger(module, args, params, resume)
    elif args.command == "versions":
        command = _versions(module, args)
    else:
        try:
            launcher = make_launcher(args.launcher)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        command = _serve(module, args, launcher)
    try:
        return asyncio.run(command)
    except (ConnectError, SearchAttributesMissing) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except RPCError as exc:
        print(f"error: Temporal at {args.address}: {exc}", file=sys.stderr)
        return 1
    finally:
        if launcher is not None:
            launcher.close()


def _parser(module: ModuleType) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=f"Temporal worker for {module.FLOW.name}"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    worker = commands.add_parser("worker", help="run a worker until Ctrl-C/SIGTERM")
    trigger = commands.add_parser("trigger", help="start a run and wait for it")
    resume = commands.add_parser(
        "resume",
        help="resume a run (Metaflow's resume: what it finished is cloned, the rest "
        "runs again) and wait for it",
    )
    versions = commands.add_parser(
        "versions", help="the deployment's versions and their runs in flight"
    )
    for sub in (worker, trigger, resume, versions):
        add_server_arguments(sub, wait=sub is not versions)
        sub.add_argument(
            "--task-queue", default=None, help="default: the flow's (see @project)"
        )
    add_task_arguments(worker)
    worker.add_argument(
        "--no-schedule",
        action="store_true",
        help="leave the flow's Temporal Schedule (@schedule) as it is",
    )
    worker.add_argument(
        "--no-triggers",
        action="store_true",
        help="leave the flow's event subscription (@trigger, @trigger_on_finish) on "
        "the server as it is",
    )
    worker.add_argument(
        "--queue",
        dest="queues",
        action="append",
        default=[],
        metavar="QUEUE",
        help="serve only the tasks of the steps routed to QUEUE (generated with "
        "--queue STEP=QUEUE or --gpu-queue QUEUE): a worker pool that runs no "
        "workflows and leaves schedule and subscription alone (repeatable)",
    )
    worker.add_argument(
        "--ui-url",
        default=os.environ.get("TEMPORAL_UI_URL"),
        help="the Temporal UI's address (default $TEMPORAL_UI_URL): each task "
        "records its workflow's page in its Metaflow metadata",
    )
    resume.add_argument(
        "step",
        nargs="?",
        default=None,
        choices=sorted(line.split()[0] for line in getattr(module, "GRAPH", ()))
        or None,
        help="run this step again and everything after it (default: what the "
        "origin did not finish)",
    )
    resume.add_argument(
        "--origin-run-id", required=True, help="the Metaflow run id to resume"
    )
    for sub in (trigger, resume):
        sub.add_argument(
            "--param",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="a parameter value"
            + (
                " (replaces the origin's: nothing is then cloned)"
                if sub is resume
                else ""
            ),
        )
        sub.add_argument("--workflow-id", default=None)
        sub.add_argument(
            "--max-workers", type=int, default=None, help="foreach tasks at once"
        )
        sub.add_argument(
            "--max-num-splits",
            type=int,
            default=MAX_NUM_SPLITS,
            help=f"widest foreach allowed (default {MAX_NUM_SPLITS})",
        )
        sub.add_argument("--tag", action="append", default=[], help="run tag")
    return parser


def add_server_arguments(parser: argparse.ArgumentParser, wait: bool = True) -> None:
    """``--address``, ``--namespace`` and (``wait``) ``--wait-for-server``."""
    parser.add_argument(
        "--address",
        default=default_address(),
        help=f"default: ${ADDRESS_ENV}, else {DEFAULT_ADDRESS}",
    )
    parser.add_argument(
        "--namespace",
        default=default_namespace(),
        help=f"default: ${NAMESPACE_ENV}, else {DEFAULT_NAMESPACE}",
    )
    if wait:
        parser.add_argument(
            "--wait-for-server",
            type=lambda text: timedelta(seconds=float(text)),
            default=START_PATIENCE,
            metavar="SECONDS",
            help="how long to retry a server that is unreachable when starting "
            f"(default {START_PATIENCE.total_seconds():g}; a run's result is "
            "awaited through outages of any length)",
        )


def add_task_arguments(parser: argparse.ArgumentParser) -> None:
    """How a worker runs tasks: ``--launcher``, ``--max-concurrent-activities``,
    ``--grace-seconds``."""
    parser.add_argument(
        "--launcher",
        default=DEFAULT_LAUNCHER,
        choices=["subprocess", "fork", DEFAULT_LAUNCHER],
        help="how tasks start: a fork of a pre-warmed interpreter (fork), a fresh "
        "python per task (subprocess, the reference), or the default: fork where "
        "it works, else subprocess",
    )
    parser.add_argument("--max-concurrent-activities", type=int, default=None)
    parser.add_argument(
        "--grace-seconds",
        type=float,
        default=DEFAULT_GRACE.total_seconds(),
        help="on SIGTERM/Ctrl-C, how long running tasks get to finish before they "
        "are handed back to Temporal (default %(default)g)",
    )


def _stop_on_signals() -> tuple[asyncio.Event, Callable[[], None]]:
    """An event SIGTERM/SIGINT set once the worker serves; before that they cancel
    the current task (start-up ends). Call the returned function when serving."""
    stop = asyncio.Event()
    task = asyncio.current_task()
    if task is None:
        raise RuntimeError("_stop_on_signals() must be called from a task")
    serving = False

    def on_signal() -> None:
        if serving:
            stop.set()
        else:
            task.cancel()

    def now_serving() -> None:
        nonlocal serving
        serving = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    return stop, now_serving


async def _serve(
    module: ModuleType, args: argparse.Namespace, launcher: Launcher
) -> int:
    stop, now_serving = _stop_on_signals()
    try:
        return await _start_and_serve(module, args, launcher, stop, now_serving)
    except asyncio.CancelledError:
        print("stopped before serving", flush=True)
        return 0


async def _start_and_serve(
    module: ModuleType,
    args: argparse.Namespace,
    launcher: Launcher,
    stop: asyncio.Event,
    now_serving: Callable[[], None],
) -> int:
    watch = ServerWatch(args.address)
    client = await connect(
        args.address, args.namespace, patience=args.wait_for_server, watch=watch
    )
    try:
        described = await check_flow(module)
        schedule = evaluated_schedule(described)
    except (StaleModule, FlowLoadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    deployment = await deployment_of(module, described)
    task_queue = args.task_queue or deployment.task_queue
    if args.queues:
        return await _serve_pool(
            module, args, launcher, client, watch, task_queue, stop, now_serving
        )
    package = None
    if module.FLOW.packaged:
        try:
            package = await build_package(module)
        except FlowLoadError as exc:
            print(f"error: code package: {exc}", file=sys.stderr)
            return 2
        print(f"code package {package.sha} ({package.url})", flush=True)
    # (before the schedule: its runs start with the search attributes)
    added = await through_outages(
        lambda: visibility.ensure_search_attributes(client, args.namespace),
        client,
        watch,
        args.wait_for_server,
    )
    if added:
        print(f"registered search attributes: {', '.join(added)}", flush=True)
    if not args.no_schedule:
        try:
            outcome = await through_outages(
                lambda: sync_schedule(client, module, deployment, task_queue, schedule),
                client,
                watch,
                args.wait_for_server,
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
    if not args.no_triggers:
        try:
            outcome = await through_outages(
                lambda: sync_subscription(
                    client, module, described, deployment, task_queue
                ),
                client,
                watch,
                args.wait_for_server,
            )
        except (RPCError, TriggerError) as exc:
            print(
                f"error: event subscription of {deployment.name}: {exc} "
                "(--no-triggers starts the worker without touching it)",
                file=sys.stderr,
            )
            return 1
        if outcome != "none":
            print(f"event subscription of {deployment.name}: {outcome}", flush=True)
    grace = timedelta(seconds=args.grace_seconds)
    async with _started(
        module, args, launcher, client, watch, task_queue, grace, package=package
    ):
        await _say_version(client, module, task_queue, watch)
        print(
            f"worker for {deployment.name} on {args.address} "
            f"(namespace {args.namespace}, task queue {task_queue}, "
            f"launcher {launcher.name}); Ctrl-C to stop",
            flush=True,
        )
        await _serve_until_stopped(client, watch, stop, now_serving, grace)
    return 0


def _started(
    module: ModuleType,
    args: argparse.Namespace,
    launcher: Launcher,
    client: Client,
    watch: ServerWatch,
    task_queue: str,
    grace: timedelta,
    **options: Any,
):
    """:func:`running_worker` as the ``worker`` command starts it on ``task_queue``
    (a version of the deployment, the module already checked), with ``options``."""
    return running_worker(
        client,
        module,
        task_queue=task_queue,
        launcher=launcher,
        max_concurrent_activities=args.max_concurrent_activities,
        check=False,
        grace=grace,
        versioned=True,
        watch=watch,
        ui_url=args.ui_url,
        search_attributes=False,
        **options,
    )


async def _serve_until_stopped(
    client: Client,
    watch: ServerWatch,
    stop: asyncio.Event,
    now_serving: Callable[[], None],
    grace: timedelta,
) -> None:
    """Serve (watching the server) until SIGTERM/Ctrl-C, then say how it ends."""
    now_serving()
    watching = asyncio.create_task(watch_server(client, watch))
    await stop.wait()
    watching.cancel()
    print(
        f"shutting down: no new tasks; running ones get {grace.total_seconds():g}s "
        "to finish, then go back to Temporal",
        flush=True,
    )


async def _serve_pool(
    module: ModuleType,
    args: argparse.Namespace,
    launcher: Launcher,
    client: Client,
    watch: ServerWatch,
    task_queue: str,
    stop: asyncio.Event,
    now_serving: Callable[[], None],
) -> int:
    """``worker --queue QUEUE...``: serve the tasks routed to those queues (one
    activity-only Temporal worker per queue, one launcher), as a version of the
    flow's deployment (``task_queue``), until SIGTERM/Ctrl-C."""
    queues = list(dict.fromkeys(args.queues))
    grace = timedelta(seconds=args.grace_seconds)
    async with AsyncExitStack() as stack:
        for queue in queues:
            await stack.enter_async_context(
                _started(
                    module,
                    args,
                    launcher,
                    client,
                    watch,
                    queue,
                    grace,
                    activities_only=True,
                    deployment_queue=task_queue,
                )
            )
        print(
            f"worker pool for {module.FLOW.name} on {args.address} (namespace "
            f"{args.namespace}, task queues {', '.join(queues)}: routed steps' tasks "
            f"only, deployment {versioning.deployment_name(task_queue)}, launcher "
            f"{launcher.name}); Ctrl-C to stop",
            flush=True,
        )
        await _serve_until_stopped(client, watch, stop, now_serving, grace)
    return 0


async def _say_version(
    client: Client, module: ModuleType, task_queue: str, watch: ServerWatch
) -> None:
    """One line: the version this worker serves and whether new runs go to it."""
    version = versioning.version_of(module, task_queue)
    described = await through_outages(
        lambda: versioning.describe(client, version.deployment_name), client, watch
    )
    current = described and versioning.current_build_id(described)
    line = f"version {version.build_id} of deployment {version.deployment_name}: "
    if current == version.build_id:
        line += "current, new runs start here"
    else:
        line += (
            f"serving its pinned runs; new runs go to the newer current version "
            f"{current} (make this one current with `temporal worker deployment "
            f"set-current-version --deployment-name {version.deployment_name} "
            f"--build-id {version.build_id}`)"
        )
    print(line, flush=True)


async def _trigger(
    module: ModuleType,
    args: argparse.Namespace,
    params: Any,
    resume: Resume | None = None,
) -> int:
    watch = ServerWatch(args.address)
    client = await connect(
        args.address, args.namespace, patience=args.wait_for_server, watch=watch
    )
    options = RunOptions(
        max_workers=args.max_workers,
        tags=tuple(args.tag),
        max_num_splits=args.max_num_splits,
        resume=resume,
    )
    try:
        deployment = await deployment_of(module)
    except FlowLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    task_queue = args.task_queue or deployment.task_queue
    try:
        handle = await start_workflow(
            client,
            module,
            params,
            task_queue=task_queue,
            workflow_id=args.workflow_id,
            options=options,
            watch=watch,
            patience=args.wait_for_server,
            deployment=deployment,
        )
    except WorkflowAlreadyStartedError as exc:
        print(f"error: workflow {exc.workflow_id} already exists", file=sys.stderr)
        return 1
    print(f"workflow: {handle.id} (task queue {task_queue})", flush=True)
    try:
        result = await wait_for_result(client, handle, watch)
    except WorkflowFailureError as exc:
        seconds = getattr(module, "WORKFLOW_TIMEOUT", None)
        timeout = timedelta(seconds=seconds) if seconds else None
        print(
            f"run failed: {describe_failure(exc.cause or exc, timeout)}",
            file=sys.stderr,
        )
        return 1
    print(f"pathspec: {result.pathspec}")
    return 0


async def _versions(module: ModuleType, args: argparse.Namespace) -> int:
    """Print the deployment's versions, their runs in flight and what to do."""
    client = await connect(args.address, args.namespace)
    try:
        task_queue = args.task_queue or (await deployment_of(module)).task_queue
    except FlowLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ours = versioning.version_of(module, task_queue)
    # the main workflow is named like the flow
    states = await versioning.versions(client, ours.deployment_name, module.FLOW.name)
    if not states:
        print(f"deployment {ours.deployment_name}: no worker has polled it yet")
        return 0
    print(f"deployment {ours.deployment_name} (this module: {ours.build_id})")
    for state in states:
        print("  " + _version_line(state, ours.build_id))
    return 0


def _version_line(state: versioning.VersionState, ours: str) -> str:
    if state.current:
        role = "current: new runs start here"
    elif state.running:
        role = "draining: keep its workers until no run is in flight"
    else:
        role = "drained: its workers can be stopped"
    this = " (this module)" if state.build_id == ours else ""
    return (
        f"{state.build_id}{this}  registered {state.created:%Y-%m-%d %H:%M:%S} UTC  "
        f"runs in flight: {state.running}  {role}"
    )
