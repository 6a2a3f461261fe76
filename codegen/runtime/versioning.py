"""Worker Versioning: every generated module is its own Worker Deployment Version.

A worker polls its task queue as version ``(deployment, build id)``, the build id a
hash of the generated workflow module's bytes and the runtime API, with the PINNED
behaviour: a run, and the loop/chunk/compensation child workflows it starts on the
same task queue, only ever runs on workers of the version it started on. New runs go
to the deployment's current version. A worker makes its own version current when it
starts (:func:`promote`) unless the current one was registered after its own: an old
worker restarted to drain its runs never takes new runs back. :func:`versions` tells
an operator how many runs each version still has in flight.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import ModuleType

from temporalio.api.workflowservice.v1 import (
    DescribeWorkerDeploymentRequest,
    DescribeWorkerDeploymentResponse,
    SetWorkerDeploymentCurrentVersionRequest,
)
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import WorkerDeploymentConfig

from ..contract import RUNTIME_API

# Hex digits of a build id (64 bits: no collision among a flow's versions).
BUILD_ID_LENGTH = 16
# Deployment names cannot hold ".", which Metaflow's project flow names do; "/"
# never occurs in Metaflow names (it separates pathspec parts).
_DOT_STANDIN = "/"
# How often promote() looks for its version while the server registers it.
REGISTER_POLL_SECONDS = 0.5
# Errors while our version registers or another worker changes the routing at once.
_RACES = (
    RPCStatusCode.NOT_FOUND,
    RPCStatusCode.FAILED_PRECONDITION,
    RPCStatusCode.ABORTED,
)


def build_id(module: ModuleType) -> str:
    """The build id of a generated module (of the file defining its ``WORKFLOW``)."""
    file = sys.modules[module.WORKFLOW.__module__].__file__
    if file is None:  # Path(None) would raise TypeError too
        raise TypeError(f"module {module.WORKFLOW.__module__} has no file")
    source = Path(file).read_bytes()
    return build_id_of(source)


def build_id_of(source: bytes) -> str:
    """A workflow module's source and ``RUNTIME_API`` hashed: ``BUILD_ID_LENGTH``
    hex digits."""
    digest = hashlib.sha256(source + f"\0runtime-api {RUNTIME_API}".encode())
    return digest.hexdigest()[:BUILD_ID_LENGTH]


def deployment_name(task_queue: str) -> str:
    """The Worker Deployment of a task queue (the task queue, dots replaced)."""
    return task_queue.replace(".", _DOT_STANDIN)


def version_of(module: ModuleType, task_queue: str) -> WorkerDeploymentVersion:
    return WorkerDeploymentVersion(
        deployment_name=deployment_name(task_queue), build_id=build_id(module)
    )


def deployment_config(version: WorkerDeploymentVersion) -> WorkerDeploymentConfig:
    """Poll as ``version``; runs stay on the version they started on."""
    return WorkerDeploymentConfig(
        version=version,
        use_worker_versioning=True,
        default_versioning_behavior=VersioningBehavior.PINNED,
    )


@dataclass(frozen=True)
class VersionState:
    """One version of a deployment as ``versions`` shows it."""

    build_id: str
    created: datetime
    current: bool
    # runs of the flow (not their child workflows) pinned to it and still running
    running: int


async def describe(
    client: Client, deployment: str
) -> DescribeWorkerDeploymentResponse | None:
    """The deployment, or None before any worker of it has polled."""
    request = DescribeWorkerDeploymentRequest(
        namespace=client.namespace, deployment_name=deployment
    )
    try:
        return await client.workflow_service.describe_worker_deployment(request)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


def current_build_id(described: DescribeWorkerDeploymentResponse) -> str | None:
    routing = described.worker_deployment_info.routing_config
    if not routing.HasField("current_deployment_version"):
        return None
    return routing.current_deployment_version.build_id


def _created(described: DescribeWorkerDeploymentResponse) -> dict[str, datetime]:
    return {
        summary.deployment_version.build_id: summary.create_time.ToDatetime()
        for summary in described.worker_deployment_info.version_summaries
    }


async def promote(client: Client, version: WorkerDeploymentVersion) -> None:
    """Make ``version`` current unless the current version is newer (registered
    later), once the server has registered it (call it when the worker polls)."""
    while True:
        described = await describe(client, version.deployment_name)
        created = _created(described) if described else {}
        if version.build_id not in created:
            await asyncio.sleep(REGISTER_POLL_SECONDS)
            continue
        assert described is not None  # else `created` is empty
        current = current_build_id(described)
        if current == version.build_id or (
            current in created and created[current] > created[version.build_id]
        ):
            return
        try:
            await _set_current(client, version, described.conflict_token)
            return
        except RPCError as err:
            if err.status not in _RACES:
                raise
            await asyncio.sleep(REGISTER_POLL_SECONDS)


async def _set_current(
    client: Client, version: WorkerDeploymentVersion, conflict_token: bytes
) -> None:
    await client.workflow_service.set_worker_deployment_current_version(
        SetWorkerDeploymentCurrentVersionRequest(
            namespace=client.namespace,
            deployment_name=version.deployment_name,
            build_id=version.build_id,
            conflict_token=conflict_token,
            identity=client.identity,
        )
    )


async def versions(
    client: Client, deployment: str, workflow_type: str
) -> list[VersionState]:
    """The deployment's versions, oldest first, with the runs of ``workflow_type``
    still running on each (empty before any worker of it has polled)."""
    described = await describe(client, deployment)
    if described is None:
        return []
    current = current_build_id(described)
    states = []
    for build, created in sorted(_created(described).items(), key=lambda kv: kv[1]):
        query = (
            f'TemporalWorkerDeploymentVersion = "{deployment}:{build}" '
            f'AND WorkflowType = "{workflow_type}" AND ExecutionStatus = "Running"'
        )
        running = (await client.count_workflows(query)).count
        states.append(VersionState(build, created, build == current, running))
    return states
