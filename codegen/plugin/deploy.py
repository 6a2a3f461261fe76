"""What ``temporal create`` does between Metaflow's command line and the server:
the generator's command line from Metaflow's top-level options, the generated module,
the deployment's names, its schedule and record."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import socket
import sys
from collections.abc import Collection
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

from metaflow import current
from metaflow.parameters import DelayedEvaluationParameter, JSONType
from temporalio import workflow
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from ..cli import TOP_LEVEL_OPTIONS, generate_main
from ..contract import DEFAULT_MAX_WORKERS
from ..render import module_names
from ..runtime import flow_facts, versioning
from ..runtime.payloads import CodePackage
from ..runtime.deployment import Deployment, Schedule, resolve
from ..runtime.schedules import sync_schedule as sync_module_schedule
from .records import ManagedWorker, ParamInfo, Record

DEFAULT_OUTPUT_DIR = "temporal_workflows"


def deployment_name(flow: Any) -> str:
    """The deployment's name as Metaflow names it for a scheduler: the project flow
    name (``<project>.<branch>.<Flow>``) under ``@project``, else the flow name."""
    return getattr(current, "project_flow_name", None) or flow.name


def flow_file() -> Path:
    """The flow file Metaflow runs (``python FLOW.py ...``)."""
    return Path(os.path.abspath(sys.argv[0]))


def top_level_args(ctx: Any) -> list[str]:
    """The top-level options of this command line (those before ``temporal``)."""
    root = ctx.find_root()
    rest = len(root.protected_args) + len(root.args)
    argv = sys.argv[1:]
    return argv[: len(argv) - rest] if rest else argv


def generator_argv(
    ctx: Any,
    flow: Path,
    outdir: Path,
    *,
    tags: tuple[str, ...],
    max_workers: int,
    workflow_timeout: int | None,
    queues: tuple[str, ...] = (),
    gpu_queue: str | None = None,
    code_package: bool = True,
) -> list[str]:
    """``mf-temporal-codegen``'s arguments for what this command line asks: the
    top-level options the generator forwards to every task (``--with``, ``--branch``,
    ``--production``, ``--config``, ``--metadata``...), then create's own."""
    parser = argparse.ArgumentParser(add_help=False)
    for name in TOP_LEVEL_OPTIONS:
        parser.add_argument(f"--{name}")
    parser.add_argument("--with", dest="with_", action="append", default=[])
    parser.add_argument("--branch")
    parser.add_argument("--production", action="store_true")
    parser.add_argument("--config", nargs=2, action="append", default=[])
    parser.add_argument("--config-value", nargs=2, action="append", default=[])
    given, _ = parser.parse_known_args(top_level_args(ctx))
    argv = [str(flow), "-o", str(outdir)]
    for name in TOP_LEVEL_OPTIONS:
        value = getattr(given, name.replace("-", "_"))
        if value:
            argv.append(f"--{name}={value}")
    argv += [f"--with={spec}" for spec in given.with_]
    if given.branch:
        argv.append(f"--branch={given.branch}")
    if given.production:
        argv.append("--production")
    for name, path in given.config:
        argv += ["--config", name, path]
    for name, value in given.config_value:
        argv += ["--config-value", name, value]
    argv += [f"--tag={tag}" for tag in tags]
    if max_workers != DEFAULT_MAX_WORKERS:
        argv.append(f"--max-workers={max_workers}")
    if workflow_timeout is not None:
        argv.append(f"--workflow-timeout={workflow_timeout}")
    argv += [f"--queue={queue}" for queue in queues]
    if gpu_queue is not None:
        argv.append(f"--gpu-queue={gpu_queue}")
    if code_package:
        argv.append("--code-package")
    return argv


def save_package(obj: Any) -> CodePackage:
    """Build Metaflow's code package of the flow and save it in the flow's datastore,
    as Argo's ``create`` does (the worker started from the same code finds it there:
    the same content, the same hash)."""
    built = flow_facts.package(obj)
    return CodePackage(**{f: built[f] for f in CodePackage.__dataclass_fields__})


def generate(argv: list[str]) -> int:
    """Run the generator (its errors print as ``file:line:col: error: ...``)."""
    return generate_main(argv)


def load_module(outdir: Path, flow_name: str) -> ModuleType:
    """The generated workflow module of ``flow_name`` in ``outdir``."""
    stem = module_names_for(flow_name)[0]
    path = outdir / f"{stem}.py"
    spec = importlib.util.spec_from_file_location(f"_mf_temporal_deploy.{stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def module_names_for(flow_name: str) -> tuple[str, str]:
    class _Flow:
        name = flow_name

    return module_names(_Flow)  # type: ignore[arg-type]


def resolved(module: ModuleType) -> Deployment:
    """The module's deployment (a computed @project name as Metaflow evaluated it)."""
    return resolve(module, project_name=getattr(current, "project_name", None))


def resolved_for(record: Record) -> Deployment:
    return Deployment(
        record.name, record.task_queue, record.branch, project=record.project
    )


def worker_module(outdir: Path, module: ModuleType) -> str:
    """``python -m`` name of the generated worker (run from ``outdir``'s parent)."""
    if not outdir.resolve().name.isidentifier():
        raise ValueError(
            f"--output-dir {outdir}: the directory name must be a Python identifier "
            "(the worker runs as `python -m <dir>.<flow>_worker`)"
        )
    return f"{outdir.resolve().name}.{module_names_for(module.FLOW.name)[1]}"


def worker_args(obj: Any, queue: str | None) -> list[str]:
    args = ["--address", obj.temporal_address, "--namespace", obj.temporal_namespace]
    return args + (["--task-queue", queue] if queue else [])


async def sync_schedule(
    client: Client, module: ModuleType, flow: Any, deployment: Deployment, queue: str
) -> str | None:
    """Create, update or pause the deployment's Temporal Schedule (``@schedule``);
    what was done, None without a schedule to keep."""
    evaluated = None
    decorators = getattr(flow, "_flow_decorators", {}).get("schedule")
    if decorators:
        deco = decorators[0]
        cron = getattr(deco, "schedule", None)
        if cron:
            evaluated = Schedule(cron, timezone=getattr(deco, "timezone", None))
    outcome = await sync_module_schedule(client, module, deployment, queue, evaluated)
    has_schedule = getattr(module, "SCHEDULE", None) is not None
    return outcome if has_schedule else None


async def pause_schedule(
    client: Client, schedule_id: str, paused: bool, who: str
) -> None:
    handle = client.get_schedule_handle(schedule_id)
    if paused:
        await handle.pause(note=f"suspended by {who}")
    else:
        await handle.unpause(note=f"unsuspended by {who}")


async def delete_schedule(client: Client, schedule_id: str) -> None:
    try:
        await client.get_schedule_handle(schedule_id).delete()
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise


def record(
    obj: Any,
    module: ModuleType,
    deployment: Deployment,
    queue: str,
    outdir: Path,
    flow: Path,
    *,
    tags: tuple[str, ...],
    workflow_timeout: int | None,
    schedule_id: str | None,
    worker: ManagedWorker | None,
    package: CodePackage | None = None,
) -> Record:
    """The deployment record of a module ``create`` generated."""
    run = module.WORKFLOW.run
    path = (outdir / f"{module_names_for(module.FLOW.name)[0]}.py").resolve()
    return Record(
        name=deployment.name,
        flow_name=module.FLOW.name,
        workflow_type=workflow_type(module.WORKFLOW),
        task_queue=queue,
        namespace=obj.temporal_namespace,
        module=str(path),
        build_id=versioning.build_id(module),
        flow_file=str(flow),
        takes_options="options" in run.__code__.co_varnames[: run.__code__.co_argcount],
        params=tuple(param_infos(obj.flow, workflow_fields(module))),
        project=getattr(current, "project_name", None),
        branch=deployment.branch,
        owner=user(),
        host=socket.gethostname(),
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        tags=tuple(sorted(set(tags))),
        steps=tuple(sorted(obj.graph.nodes)),
        schedule_id=schedule_id,
        workflow_timeout=workflow_timeout,
        worker=worker,
        package=package,
    )


def workflow_type(cls: type) -> str:
    # (the SDK has no public accessor for a class's @workflow.defn name)
    name = workflow._Definition.must_from_class(cls).name
    assert name is not None
    return name


def workflow_fields(module: ModuleType) -> frozenset[str]:
    """The fields of the generated workflow's input (its ``PARAMS`` dataclass)."""
    return frozenset(f.name for f in dataclasses.fields(module.PARAMS))


def param_infos(
    flow: Any, in_workflow: Collection[str] | None = None
) -> list[ParamInfo]:
    """The flow's Parameters as the Deployer's stand-in flow needs them (and whether
    the workflow's input, whose fields are ``in_workflow``, takes each)."""
    from metaflow.includefile import FilePathClass

    infos = []
    for var, param in flow._get_parameters():
        kind = param.kwargs.get("type")
        if kind == JSONType:
            name = "JSON"
        elif isinstance(kind, FilePathClass):
            name = "FilePath"
        else:
            name = getattr(kind, "__name__", "str")
        infos.append(
            ParamInfo(
                name=param.name,
                field=param.name.replace("-", "_"),
                type=name,
                description=param.kwargs.get("help") or "",
                is_required=bool(param.kwargs.get("required", False)),
                in_workflow=in_workflow is None
                or param.name.replace("-", "_") in in_workflow,
            )
        )
    return infos


def parameter_values(flow: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The parameter values given to ``trigger``, by parameter name: values left at a
    default are not sent (the run takes the default Metaflow evaluates for it)."""
    values = {}
    for _, param in flow._get_parameters():
        value = kwargs.get(param.name.replace("-", "_").lower())
        if value is None or isinstance(value, DelayedEvaluationParameter):
            continue
        default = param.kwargs.get("default")
        if not callable(default) and value == default:
            continue
        values[param.name] = value
    return values


def given_values(flow: Any, kwargs: dict[str, Any], argv: list[str]) -> dict[str, Any]:
    """The parameter values given on the command line ``argv`` (as ``--name value``
    or ``--name=value``), by parameter name, defaults included: a resume replaces
    the origin's value with any value given, the default too."""
    given = {token.partition("=")[0] for token in argv if token.startswith("--")}
    return {
        param.name: kwargs.get(param.name.replace("-", "_").lower())
        for _, param in flow._get_parameters()
        if not param.IS_CONFIG_PARAMETER
        and given & {f"--{param.name}", f"--no-{param.name}"}
    }


def user() -> str:
    from metaflow.util import get_username

    return get_username() or "unknown"
