"""Deployment records on the Temporal server: what ``temporal create`` deployed, so that
any machine with the server's address finds it (``from_deployment``,
``list_deployed_flows``, ``trigger`` from a flow file that is not the original).

A record is the memo of a workflow execution that never runs: it is started on a task
queue no worker polls (:data:`RECORD_TASK_QUEUE`), stays open until ``delete``
terminates it, and a new ``create`` replaces it (``TERMINATE_EXISTING``). Open
executions are kept by the server however long they live, unlike closed ones
(retention), and are listed with a visibility query.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus as Status
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from ..runtime.payloads import CodePackage

RECORD_WORKFLOW_TYPE = "mf-temporal-codegen.deployment"
RECORD_TASK_QUEUE = "mf-temporal-codegen.deployments"
RECORD_ID_PREFIX = "mf-temporal-codegen/deployment/"
MEMO_KEY = "deployment"
# bump when a field changes meaning; readers refuse records of another schema
SCHEMA = 1


@dataclass(frozen=True)
class ParamInfo:
    """One Metaflow Parameter as the Deployer's stand-in flow declares it (Metaflow's
    ``param_info``: ``type`` is ``str``/``int``/``float``/``bool``/``JSON``/
    ``FilePath``) and as the workflow's input dataclass names it (``field``)."""

    name: str
    field: str
    type: str
    description: str = ""
    is_required: bool = False
    # whether the generated workflow's input takes it: a Parameter a FlowMutator adds
    # is not in the generated module (it reads the flow statically), and its runs
    # always get its default
    in_workflow: bool = True


@dataclass(frozen=True)
class ManagedWorker:
    """A background worker ``create --worker`` started."""

    host: str
    pid: int
    log: str


@dataclass(frozen=True)
class Record:
    """One deployed flow."""

    # the deployment name: Metaflow's project flow name, or the flow name
    name: str
    flow_name: str
    workflow_type: str
    task_queue: str
    namespace: str
    # the generated workflow module (path on the host that created it) and its build id
    module: str
    build_id: str
    flow_file: str
    # whether the workflow's run takes RunOptions as its second argument
    takes_options: bool
    params: tuple[ParamInfo, ...] = ()
    project: str | None = None
    branch: str | None = None
    # who deployed it (Metaflow's user) and from where
    owner: str = ""
    host: str = ""
    created_at: str = ""
    tags: tuple[str, ...] = ()
    # the flow's steps as Metaflow saw them at create (what resume may rerun)
    steps: tuple[str, ...] = ()
    schedule_id: str | None = None
    workflow_timeout: int | None = None
    worker: ManagedWorker | None = None
    # the code package create built and saved (``--code-package``): what its runs
    # run from when the worker starts from the same code (the same hash)
    package: CodePackage | None = None
    schema: int = field(default=SCHEMA)

    @property
    def record_id(self) -> str:
        return record_id(self.name)

    def param_info(self) -> dict[str, dict[str, Any]]:
        """The parameters as ``generate_fake_flow_file_contents`` takes them."""
        return {
            p.name: {
                "name": p.name,
                "python_var_name": p.field,
                "type": p.type,
                "description": p.description,
                "is_required": p.is_required,
            }
            for p in self.params
        }

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Record:
        if data.get("schema") != SCHEMA:
            raise RecordError(
                f"deployment {data.get('name')!r} was recorded by another version of "
                "mf-temporal-codegen (schema "
                f"{data.get('schema')}, this one reads {SCHEMA}); run "
                "`temporal create` again"
            )
        values = dict(data)
        values["params"] = tuple(ParamInfo(**p) for p in data.get("params", ()))
        values["tags"] = tuple(data.get("tags", ()))
        values["steps"] = tuple(data.get("steps", ()))
        worker = data.get("worker")
        values["worker"] = ManagedWorker(**worker) if worker else None
        package = data.get("package")
        values["package"] = CodePackage(**package) if package else None
        return cls(**values)


class RecordError(RuntimeError):
    """No usable record of a deployment."""


def record_id(name: str) -> str:
    return RECORD_ID_PREFIX + name


async def save(client: Client, record: Record) -> None:
    """Store ``record``, replacing the deployment's earlier record."""
    await client.start_workflow(
        RECORD_WORKFLOW_TYPE,
        id=record.record_id,
        task_queue=RECORD_TASK_QUEUE,
        memo={MEMO_KEY: record.to_json()},
        id_conflict_policy=WorkflowIDConflictPolicy.TERMINATE_EXISTING,
        static_summary=f"Metaflow deployment {record.name} (a record, not a run)",
        static_details=(
            f"Flow {record.flow_name} on task queue `{record.task_queue}`, workflow "
            f"type `{record.workflow_type}`, deployed by {record.owner} from "
            f"{record.host}:{record.module} at {record.created_at}."
        ),
    )


async def load(client: Client, name: str) -> Record | None:
    """The record of deployment ``name``, None if it is not deployed."""
    handle = client.get_workflow_handle(record_id(name))
    try:
        described = await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    if described.status != Status.RUNNING:
        return None
    memo = await described.memo()
    return Record.from_json(json.loads(json.dumps(memo[MEMO_KEY])))


async def listed(client: Client, flow_name: str | None = None) -> list[Record]:
    """Every deployed flow's record (of one flow class with ``flow_name``), by name."""
    query = f"WorkflowType = '{RECORD_WORKFLOW_TYPE}' AND ExecutionStatus = 'Running'"
    found: list[Record] = []
    async for execution in client.list_workflows(query):
        memo = await execution.memo()
        if MEMO_KEY not in memo:
            continue
        try:
            record = Record.from_json(memo[MEMO_KEY])
        except (RecordError, TypeError):
            continue
        if flow_name is None or record.flow_name == flow_name:
            found.append(record)
    return sorted(found, key=lambda r: r.name)


async def remove(client: Client, name: str) -> bool:
    """Close the record of deployment ``name``; False if there was none."""
    try:
        await client.get_workflow_handle(record_id(name)).terminate(
            reason="deployment deleted"
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True
