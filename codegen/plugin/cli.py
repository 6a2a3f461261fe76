"""``python flow.py [TOP-LEVEL OPTIONS] temporal COMMAND``: Metaflow's own command line
for this flow on Temporal, as ``argo-workflows`` is for Argo.

``create`` runs the generator on the flow file (the same bytes ``mf-temporal-codegen``
writes: the top-level options become its options), then registers the deployment on
the server; the other commands work from that record, so they run on any machine
that reaches the server, with any copy of the flow (the Deployer's stand-in flow
included).
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from metaflow import parameters
from metaflow._vendor import click

from ..contract import DEFAULT_MAX_WORKERS
from ..runtime.connection import (
    ADDRESS_ENV,
    DEFAULT_ADDRESS,
    DEFAULT_NAMESPACE,
    NAMESPACE_ENV,
    ConnectError,
    connect,
    default_address,
    default_namespace,
)
from ..runtime import visibility
from . import deploy, managed, records, runs, subscriptions
from .records import Record

T = TypeVar("T")


class TemporalCommandError(click.ClickException):
    """A command that cannot do what it was asked; Metaflow prints the message."""


def _exits(command: Callable[..., None]) -> Callable[..., None]:
    """End the process when ``command`` is done, as Metaflow would (its sidecars
    stopped, the exit code of the outcome), without interpreter teardown: the
    Temporal client's threads can abort a finalizing interpreter
    (temporalio/sdk-python#300), which would turn a done command into a crash."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        code = 0
        try:
            command(*args, **kwargs)
        except click.ClickException as exc:
            exc.show()
            code = exc.exit_code
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        obj = click.get_current_context().obj
        for sidecar in ("monitor", "event_logger"):
            if getattr(obj, sidecar, None) is not None:
                getattr(obj, sidecar).terminate()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    return run


@click.group()
def cli() -> None:
    pass


@cli.group(help="Deploy and run this flow on Temporal (mf-temporal-codegen).")
@click.option(
    "--address",
    default=None,
    help=f"Temporal server (default: ${ADDRESS_ENV}, else {DEFAULT_ADDRESS})",
)
@click.option(
    "--namespace",
    default=None,
    help=f"Temporal namespace (default: ${NAMESPACE_ENV}, else {DEFAULT_NAMESPACE})",
)
@click.pass_obj
def temporal(obj: Any, address: str | None = None, namespace: str | None = None):
    obj.temporal_address = address or default_address()
    obj.temporal_namespace = namespace or default_namespace()
    obj.deployment_name = deploy.deployment_name(obj.flow)


@temporal.command(
    help="Generate the flow's workflow module (as mf-temporal-codegen does), "
    "register the deployment, its @schedule and its @trigger/@trigger_on_finish "
    "subscription on the server, and with --worker start a worker in the background."
)
@click.option(
    "--output-dir",
    default=None,
    type=click.Path(file_okay=False),
    help=f"where the generated modules go (default: {deploy.DEFAULT_OUTPUT_DIR}/ "
    "next to the flow file)",
)
@click.option(
    "--task-queue", default=None, help="default: the deployment's (see @project)"
)
@click.option(
    "--max-workers",
    default=DEFAULT_MAX_WORKERS,
    type=int,
    show_default=True,
    help="tasks of one foreach running at once",
)
@click.option(
    "--workflow-timeout",
    default=None,
    type=int,
    help="fail a run that takes longer than this many seconds",
)
@click.option("--tag", "tags", multiple=True, help="tag every run (repeatable)")
@click.option(
    "--queue",
    "queues",
    multiple=True,
    metavar="[STEP=]QUEUE",
    help="run STEP's tasks on the task queue QUEUE, served by a worker pool started "
    "with `worker --queue QUEUE` (repeatable); without STEP=, every other step's "
    "tasks",
)
@click.option(
    "--gpu-queue",
    default=None,
    metavar="QUEUE",
    help="run every step with @resources(gpu=N), N > 0, on the task queue QUEUE",
)
@click.option(
    "--code-package/--no-code-package",
    default=True,
    show_default=True,
    help="build Metaflow's code package and save it in the datastore (once per "
    "content hash), as Argo's create does; runs carry it and their tasks run from "
    "it on any worker, e.g. a pool with no checkout (`mf-temporal-pool`); "
    "--no-code-package: tasks run from each worker's checkout",
)
@click.option(
    "--worker/--no-worker",
    default=False,
    show_default=True,
    help="start a worker in the background (stopped by `delete`)",
)
@click.option("--deployer-attribute-file", default=None, hidden=True)
@click.pass_context
@_exits
def create(
    ctx: Any,
    output_dir: str | None,
    task_queue: str | None,
    max_workers: int,
    workflow_timeout: int | None,
    tags: tuple[str, ...],
    queues: tuple[str, ...],
    gpu_queue: str | None,
    code_package: bool,
    worker: bool,
    deployer_attribute_file: str | None,
):
    obj = ctx.obj
    flow_file = deploy.flow_file()
    outdir = (
        Path(output_dir) if output_dir else flow_file.parent / deploy.DEFAULT_OUTPUT_DIR
    )
    argv = deploy.generator_argv(
        ctx,
        flow_file,
        outdir,
        tags=tags,
        max_workers=max_workers,
        workflow_timeout=workflow_timeout,
        queues=queues,
        gpu_queue=gpu_queue,
        code_package=code_package,
    )
    obj.echo(f"Generating *{outdir}* for *{obj.flow.name}*...", bold=True)
    code = deploy.generate(argv)
    if code:
        raise SystemExit(code)
    module = deploy.load_module(outdir, obj.flow.name)
    deployment = deploy.resolved(module)
    if deployment.name != obj.deployment_name:
        raise TemporalCommandError(
            f"the generated module deploys {deployment.name}, Metaflow names this "
            f"deployment {obj.deployment_name}"
        )
    queue = task_queue or deployment.task_queue
    package = None
    if code_package:
        package = deploy.save_package(obj)
        obj.echo(f"Code package *{package.sha}* saved to {package.url}.")

    async def register(client):
        await visibility.ensure_search_attributes(client, obj.temporal_namespace)
        schedule = await deploy.sync_schedule(
            client, module, obj.flow, deployment, queue
        )
        _, waits = await subscriptions.register(
            client, obj.flow, module, deployment, queue
        )
        started = None
        if worker:
            started = managed.start(
                deployment.name,
                deploy.worker_module(outdir, module),
                outdir.parent,
                deploy.worker_args(obj, task_queue),
            )
        record = deploy.record(
            obj,
            module,
            deployment,
            queue,
            outdir,
            flow_file,
            tags=tags,
            workflow_timeout=workflow_timeout,
            schedule_id=deployment.schedule_id if schedule else None,
            worker=started,
            package=package,
        )
        await records.save(client, record)
        return record, schedule, waits

    record, schedule, waits = _run(obj, register)
    _write_attributes(
        deployer_attribute_file,
        {
            "name": record.name,
            "flow_name": record.flow_name,
            "metadata": obj.metadata.metadata_str(),
        },
    )
    obj.echo(
        f"Deployment *{record.name}* registered on {obj.temporal_address} "
        f"(namespace {record.namespace}, task queue {record.task_queue}, "
        f"workflow type {record.workflow_type}).",
        bold=True,
    )
    if schedule:
        obj.echo(f"Schedule *{record.schedule_id}*: {schedule}.")
    if waits:
        obj.echo(f"Triggers: {waits}.")
    if record.worker:
        obj.echo(
            f"Worker started in the background: pid {record.worker.pid}, log "
            f"{record.worker.log} (stopped by `temporal delete`)."
        )
    else:
        obj.echo(
            "Runs wait for a worker: "
            f"`python -m {deploy.worker_module(outdir, module)} worker` "
            f"(from {outdir.resolve().parent}), or `temporal create --worker`."
        )


@parameters.add_custom_parameters(deploy_mode=False)
@temporal.command(help="Start a run of the deployed flow; parameters as options.")
@click.option(
    "--run-id-file", default=None, help="write the Metaflow run id to this file"
)
@click.option("--deployer-attribute-file", default=None, hidden=True)
@click.pass_obj
@_exits
def trigger(
    obj: Any,
    run_id_file: str | None = None,
    deployer_attribute_file: str | None = None,
    **kwargs: Any,
):
    values = deploy.parameter_values(obj.flow, kwargs)

    async def start(client):
        record = await _record(client, obj)
        params, options = runs.parameters_arg(record, values)
        handle = await runs.start(
            client, record, deploy.resolved_for(record), params, options
        )
        ref = runs.RunRef(
            runs.metaflow_run_id(handle.first_execution_run_id or ""),
            handle.id,
            handle.first_execution_run_id or "",
            runs.RUNNING,
        )
        return record, ref

    record, ref = _run(obj, start)
    _started(obj, record, ref, run_id_file, deployer_attribute_file)


@parameters.add_custom_parameters(deploy_mode=False)
@temporal.command(
    help="Resume a run on Temporal, as Metaflow's resume: the tasks it finished "
    "are cloned, the others (and STEP-TO-RERUN with what follows it) run again. "
    "Parameters given replace the origin's; every task reads them, so nothing is "
    "then cloned."
)
@click.argument("step-to-rerun", required=False)
@click.option(
    "--origin-run-id",
    default=None,
    help="the run to resume (default: the deployment's latest run)",
)
@click.option(
    "--run-id-file", default=None, help="write the Metaflow run id to this file"
)
@click.option("--deployer-attribute-file", default=None, hidden=True)
@click.pass_obj
@_exits
def resume(
    obj: Any,
    step_to_rerun: str | None = None,
    origin_run_id: str | None = None,
    run_id_file: str | None = None,
    deployer_attribute_file: str | None = None,
    **kwargs: Any,
):
    after = sys.argv[sys.argv.index("resume") + 1 :] if "resume" in sys.argv else []
    given = deploy.given_values(obj.flow, kwargs, after)

    async def start(client):
        record = await _record(client, obj)
        if step_to_rerun is not None and step_to_rerun not in record.steps:
            raise TemporalCommandError(
                f"invalid step name {step_to_rerun}: the steps of {record.flow_name} "
                "are " + ", ".join(record.steps)
            )
        if origin_run_id:
            origin = await runs.find(client, origin_run_id, record)
        else:
            newest = await runs.listed(client, record, None)
            if not newest:
                raise TemporalCommandError(f"{record.name} has no run to resume")
            origin = newest[0]
        if origin.status not in runs.FINISHED:
            raise TemporalCommandError(
                f"run {origin.run_id} is {origin.status}: resume it once it ended "
                "(or `temporal terminate` it)"
            )
        params, options = runs.resume_arg(record, origin.run_id, step_to_rerun, given)
        handle = await runs.start(
            client, record, deploy.resolved_for(record), params, options
        )
        return (
            record,
            runs.RunRef(
                runs.metaflow_run_id(handle.first_execution_run_id or ""),
                handle.id,
                handle.first_execution_run_id or "",
                runs.RUNNING,
            ),
            origin,
        )

    record, ref, origin = _run(obj, start)
    _started(
        obj,
        record,
        ref,
        run_id_file,
        deployer_attribute_file,
        f", resuming run-id *{origin.run_id}*",
    )


def _started(
    obj: Any,
    record: Record,
    ref: runs.RunRef,
    run_id_file: str | None,
    deployer_attribute_file: str | None,
    note: str = "",
) -> None:
    """Say (and write where asked) which run ``trigger`` or ``resume`` started."""
    if run_id_file:
        Path(run_id_file).write_text(ref.run_id, encoding="utf-8")
    if deployer_attribute_file:
        Path(deployer_attribute_file).write_text(
            runs.attribute_content(record, ref, obj.metadata.metadata_str()),
            encoding="utf-8",
        )
    obj.echo(
        f"Workflow *{ref.workflow_id}* triggered on Temporal (run-id "
        f"*{ref.run_id}*){note}.",
        bold=True,
    )


@temporal.command(help="Print the status of a run.")
@click.argument("run_id")
@click.pass_obj
@_exits
def status(obj: Any, run_id: str):
    async def find(client):
        record = await _record(client, obj)
        ref = await runs.find(client, run_id, record)
        return ref, await runs.failure(client, ref)

    ref, why = _run(obj, find)
    obj.echo_always(f"{ref.run_id} {ref.status} (workflow {ref.workflow_id})")
    if why:
        obj.echo_always(f"  {why}")


@temporal.command("list-runs", help="List the deployment's runs, newest first.")
@click.option("--running", "state", flag_value="running", help="only running runs")
@click.option(
    "--succeeded", "state", flag_value="succeeded", help="only succeeded runs"
)
@click.option(
    "--failed",
    "state",
    flag_value="failed",
    help="only runs that failed, were cancelled, terminated or timed out",
)
@click.pass_obj
@_exits
def list_runs(obj: Any, state: str | None = None):
    async def listed(client):
        return await runs.listed(client, await _record(client, obj), state)

    found = _run(obj, listed)
    if not found:
        obj.echo("No runs.")
    for ref in found:
        started = ref.started.isoformat(timespec="seconds") if ref.started else ""
        obj.echo_always(f"{ref.run_id} {ref.status} {started} {ref.workflow_id}")


@temporal.command(
    help="Stop a run: cancel it (its tasks are killed and its compensations run), "
    "or with --force terminate it at once."
)
@click.argument("run_id")
@click.option(
    "--force", is_flag=True, default=False, help="terminate: run no compensation"
)
@click.pass_obj
@_exits
def terminate(obj: Any, run_id: str, force: bool = False):
    async def stop(client):
        record = await _record(client, obj)
        ref = await runs.find(client, run_id, record)
        if ref.status not in runs.FINISHED:
            await runs.stop(client, ref, force, f"terminate by {deploy.user()}")
        return ref

    ref = _run(obj, stop)
    if ref.status in runs.FINISHED:
        obj.echo(f"Run *{run_id}* already ended: {ref.status}.")
    else:
        what = "terminated" if force else "cancelled"
        obj.echo(f"Run *{run_id}* {what} (workflow {ref.workflow_id}).", bold=True)


@temporal.command(help="Pause the deployment's schedule.")
@click.pass_obj
@_exits
def suspend(obj: Any):
    _pause(obj, True)


@temporal.command(help="Resume the deployment's schedule.")
@click.pass_obj
@_exits
def unsuspend(obj: Any):
    _pause(obj, False)


def _pause(obj: Any, paused: bool) -> None:
    async def pause(client):
        record = await _record(client, obj)
        if not record.schedule_id:
            raise TemporalCommandError(f"{record.name} has no @schedule")
        await deploy.pause_schedule(client, record.schedule_id, paused, deploy.user())
        return record

    record = _run(obj, pause)
    what = "paused" if paused else "resumed"
    obj.echo(f"Schedule *{record.schedule_id}* {what}.", bold=True)


@temporal.command(
    help="Delete the deployment: its record, schedule and event subscription, and "
    "the background worker `create --worker` started on this machine. Runs in "
    "flight go on."
)
@click.option("--deployer-attribute-file", default=None, hidden=True)
@click.pass_obj
@_exits
def delete(obj: Any, deployer_attribute_file: str | None = None):
    async def remove(client):
        record = await records.load(client, obj.deployment_name)
        if record is not None and record.schedule_id:
            await deploy.delete_schedule(client, record.schedule_id)
        removed = await records.remove(client, obj.deployment_name)
        unsubscribed = await subscriptions.remove(client, obj.deployment_name)
        return record, removed or unsubscribed

    record, removed = _run(obj, remove)
    stopped = managed.stop(obj.deployment_name)
    if not removed and stopped is None:
        raise TemporalCommandError(f"{obj.deployment_name} is not deployed")
    obj.echo(f"Deployment *{obj.deployment_name}* deleted.", bold=True)
    if stopped is not None:
        obj.echo(f"Stopped its worker (pid {stopped.pid}).")
    elif (
        record is not None
        and record.worker
        and record.worker.host != socket.gethostname()
    ):
        obj.echo(
            f"Its worker runs on {record.worker.host} (pid {record.worker.pid}): "
            "stop it there."
        )


async def _record(client: Any, obj: Any) -> Record:
    record = await records.load(client, obj.deployment_name)
    if record is None:
        raise TemporalCommandError(
            f"{obj.deployment_name} is not deployed on {obj.temporal_address} "
            f"(namespace {obj.temporal_namespace}); run `temporal create` first"
        )
    return record


def _run(obj: Any, work: Callable[[Any], Awaitable[T]]) -> T:
    """Connect to the server and run ``work(client)``; errors as one message."""

    async def main() -> T:
        try:
            client = await connect(obj.temporal_address, obj.temporal_namespace)
        except ConnectError as exc:
            raise TemporalCommandError(str(exc)) from None
        return await work(client)

    try:
        return asyncio.run(main())
    except (
        records.RecordError,
        runs.RunNotFound,
        runs.ParameterNotTaken,
        managed.WorkerStartError,
        visibility.SearchAttributesMissing,
    ) as exc:
        raise TemporalCommandError(str(exc)) from None


def _write_attributes(path: str | None, content: dict[str, Any]) -> None:
    if path:
        Path(path).write_text(json.dumps(content), encoding="utf-8")
