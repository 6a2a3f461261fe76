"""A deployment's runs on Temporal: starting one from its record, finding one by its
Metaflow run id, its status, listing and stopping them. Shared by the ``temporal``
commands and the Deployer objects."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus as Status,
    WorkflowHandle,
)
from temporalio.api.failure.v1 import Failure
from temporalio.service import RPCError, RPCStatusCode

from ..runtime import visibility
from ..runtime.deployment import Deployment
from ..runtime.orchestration import encode_value
from ..runtime.params import placeholder
from .records import Record

# A Metaflow run id on Temporal: this prefix and the first execution's run id.
RUN_ID_PREFIX = "temporal-"

# What a run's status reads (Deployer ``TriggeredRun.status`` and ``status``).
PENDING, RUNNING, SUCCEEDED, FAILED = "PENDING", "RUNNING", "SUCCEEDED", "FAILED"
CANCELLED, TERMINATED, TIMED_OUT = "CANCELLED", "TERMINATED", "TIMED_OUT"
_STATUS = {
    Status.RUNNING: RUNNING,
    Status.CONTINUED_AS_NEW: RUNNING,
    Status.COMPLETED: SUCCEEDED,
    Status.FAILED: FAILED,
    Status.CANCELED: CANCELLED,
    Status.TERMINATED: TERMINATED,
    Status.TIMED_OUT: TIMED_OUT,
}
FINISHED = frozenset({SUCCEEDED, FAILED, CANCELLED, TERMINATED, TIMED_OUT})
# list-runs filters
STATE_QUERIES = {
    "running": "ExecutionStatus = 'Running'",
    "succeeded": "ExecutionStatus = 'Completed'",
    "failed": ("ExecutionStatus IN ('Failed', 'Canceled', 'Terminated', 'TimedOut')"),
}
# a run just started may take this long to show in visibility queries
VISIBILITY_PATIENCE = 10.0


class RunNotFound(LookupError):
    """No run of the deployment has that id."""


@dataclass(frozen=True)
class RunRef:
    """One run: its Metaflow run id and the workflow execution behind it."""

    run_id: str
    workflow_id: str
    execution_run_id: str
    status: str
    started: datetime | None = None
    closed: datetime | None = None


def metaflow_run_id(execution_run_id: str) -> str:
    return RUN_ID_PREFIX + execution_run_id


def execution_run_id(run_id: str) -> str:
    if not run_id.startswith(RUN_ID_PREFIX):
        raise RunNotFound(
            f"{run_id!r} is not a Metaflow run id of a Temporal run "
            f"(they read {RUN_ID_PREFIX}<uuid>)"
        )
    return run_id[len(RUN_ID_PREFIX) :]


class ParameterNotTaken(ValueError):
    """A value for a Parameter the deployed workflow cannot take."""


def parameters_arg(
    record: Record, values: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The workflow's input and its RunOptions from Metaflow parameter values by
    parameter name (those not given keep their defaults). A Parameter the input
    lacks (one a FlowMutator adds: the generator reads the flow statically) goes to
    ``init`` through ``RunOptions.parameters``, as Metaflow evaluates it."""
    fields = {p.name: p.field for p in record.params if p.in_workflow}
    extra = {
        name: encode_value(value)
        for name, value in values.items()
        if name not in fields and value is not None
    }
    if extra and not record.takes_options:
        raise ParameterNotTaken(
            f"{record.name} cannot set {', '.join(map(repr, sorted(extra)))} per "
            f"run: the generated workflow ({record.module}) takes no run options; "
            "regenerate it with `temporal create`"
        )
    params = {fields[name]: value for name, value in values.items() if name in fields}
    return params, ({"parameters": extra} if extra else None)


def resume_arg(
    record: Record,
    origin_run_id: str,
    step_to_rerun: str | None,
    values: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The workflow's input and RunOptions of a resume of ``origin_run_id``: the
    input is not read (the origin's parameters hold; required fields get
    placeholders), ``values`` replace the origin's (then nothing is cloned)."""
    params = {
        p.field: placeholder("str" if p.type == "FilePath" else p.type)
        for p in record.params
        if p.in_workflow and p.is_required
    }
    resume = {
        "origin_run_id": origin_run_id,
        "step_to_rerun": step_to_rerun,
        "parameters": {
            name: encode_value(value)
            for name, value in values.items()
            if value is not None
        },
    }
    return params, {"resume": resume}


async def start(
    client: Client,
    record: Record,
    deployment: Deployment,
    params: dict[str, Any],
    options: dict[str, Any] | None = None,
) -> WorkflowHandle:
    """Start a run of the deployed flow (by workflow type name: no module needed)."""
    args: list[Any] = [params]
    if record.takes_options:
        args.append(options)
    timeout = record.workflow_timeout
    return await client.start_workflow(
        record.workflow_type,
        args=args,
        id=deployment.new_workflow_id(),
        task_queue=record.task_queue,
        **visibility.run_start_options(
            record.flow_name,
            _shown(params, options or {}),
            deployment,
            record.task_queue,
            tags=record.tags,
            execution_timeout=timedelta(seconds=timeout) if timeout else None,
        ),
    )


def _shown(params: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """The parameters a run's summary names: a resume's are those it replaces."""
    if "resume" in options:
        return options["resume"]["parameters"]
    return {**params, **options.get("parameters", {})}


async def find(
    client: Client,
    run_id: str,
    record: Record | None = None,
    workflow_id: str | None = None,
    patience: float = VISIBILITY_PATIENCE,
) -> RunRef:
    """The run with Metaflow run id ``run_id``: of workflow ``workflow_id``, else
    the deployment of ``record``'s."""
    execution = execution_run_id(run_id)
    if workflow_id:
        return await _described(client, workflow_id, execution, run_id)
    if record is None:
        raise ValueError("find() needs the record or the workflow id")
    query = (
        f"RunId = '{execution}' AND WorkflowType = '{record.workflow_type}' "
        f"AND TaskQueue = '{record.task_queue}'"
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    while True:
        async for found in client.list_workflows(query, limit=1):
            return _ref(found)
        if loop.time() >= deadline:
            raise RunNotFound(f"no run {run_id} of {record.name}")
        await asyncio.sleep(0.5)


async def _described(
    client: Client, workflow_id: str, execution: str, run_id: str
) -> RunRef:
    try:
        described = await client.get_workflow_handle(
            workflow_id, run_id=execution
        ).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise RunNotFound(f"no run {run_id} (workflow {workflow_id})") from None
        raise
    return _ref(described)


def _ref(execution: WorkflowExecution) -> RunRef:
    status = _STATUS.get(execution.status, RUNNING) if execution.status else RUNNING
    return RunRef(
        metaflow_run_id(execution.run_id),
        execution.id,
        execution.run_id,
        status,
        execution.start_time,
        execution.close_time,
    )


async def listed(
    client: Client, record: Record, state: str | None = None
) -> list[RunRef]:
    """The deployment's runs, newest first (``state``: a :data:`STATE_QUERIES` key)."""
    query = (
        f"WorkflowType = '{record.workflow_type}' AND "
        f"{visibility.DEPLOYMENT.name} = '{record.name}'"
    )
    if state:
        query += " AND " + STATE_QUERIES[state]
    return [_ref(e) async for e in client.list_workflows(query)]


async def stop(client: Client, ref: RunRef, force: bool, reason: str) -> None:
    """Cancel the run (its tasks are killed and its compensations run) or, with
    ``force``, terminate it (nothing more runs, Metaflow tasks are killed when their
    heartbeats find the workflow gone)."""
    handle = client.get_workflow_handle(ref.workflow_id, run_id=ref.execution_run_id)
    if force:
        await handle.terminate(reason=reason)
    else:
        await handle.cancel()


async def failure(client: Client, ref: RunRef) -> str | None:
    """Why a run failed, as its workflow says (None while it runs or if it did not)."""
    if ref.status != FAILED:
        return None
    handle = client.get_workflow_handle(ref.workflow_id, run_id=ref.execution_run_id)
    async for event in handle.fetch_history_events():
        if event.HasField("workflow_execution_failed_event_attributes"):
            cause: Failure | None = (
                event.workflow_execution_failed_event_attributes.failure
            )
            messages = []
            while cause is not None and cause.message:
                messages.append(cause.message)
                cause = cause.cause if cause.HasField("cause") else None
            return "\n  caused by ".join(messages)
    return None


def attribute_content(record: Record, ref: RunRef, metadata: str) -> str:
    """The Deployer's trigger attributes of a run (``TriggeredRun(content=...)``)."""
    return json.dumps(
        {
            "name": record.name,
            "metadata": metadata,
            "pathspec": f"{record.flow_name}/{ref.run_id}",
            "workflow_id": ref.workflow_id,
        }
    )
