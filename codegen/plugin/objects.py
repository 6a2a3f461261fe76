"""The Deployer's objects on Temporal: a deployed flow and its triggered runs.

Commands that change something (trigger, terminate, delete, suspend) run
``python flow.py temporal ...`` as Metaflow's other deployers do; reads (status, the
deployment records) go to the server directly. Everything works from another process
or machine than the one that called ``create``: ``from_deployment`` rebuilds the
deployer from the record on the server, with Metaflow's stand-in flow file.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, ClassVar, TypeVar

from metaflow.client.core import get_metadata
from metaflow.exception import MetaflowException
from metaflow.runner.deployer import (
    DeployedFlow,
    Deployer,
    TriggeredRun,
    generate_fake_flow_file_contents,
)
from metaflow.runner.utils import get_lower_level_group, handle_timeout, temporary_fifo

from ..runtime.connection import (
    ADDRESS_ENV,
    NAMESPACE_ENV,
    connect,
    default_address,
    default_namespace,
)
from . import records, runs

T = TypeVar("T")


def _server(deployer: Any) -> tuple[str, str]:
    """The server a deployer talks to: its ``address``/``namespace`` arguments, else
    the environment it runs commands with, else Temporal's defaults."""
    kwargs = getattr(deployer, "deployer_kwargs", {}) or {}
    env = getattr(deployer, "env_vars", None) or os.environ
    address = kwargs.get("address") or env.get(ADDRESS_ENV) or default_address()
    namespace = kwargs.get("namespace") or env.get(NAMESPACE_ENV) or default_namespace()
    return address, namespace


def _on_server(address: str, namespace: str, work: Callable[[Any], Awaitable[T]]) -> T:
    async def main() -> T:
        return await work(await connect(address, namespace))

    return asyncio.run(main())


def _command(deployer: Any, command: str, **kwargs: Any) -> bool:
    """Run ``python flow.py [top-level] temporal [group options] COMMAND ...``."""
    args = getattr(
        get_lower_level_group(
            deployer.api,
            deployer.top_level_kwargs,
            deployer.TYPE,
            deployer.deployer_kwargs,
        ),
        command,
    )(**kwargs)
    pid = deployer.spm.run_command(
        [sys.executable, *args],
        env=deployer.env_vars,
        cwd=deployer.cwd,
        show_output=deployer.show_output,
    )
    command_obj = deployer.spm.get(pid)
    command_obj.sync_wait()
    return command_obj.process.returncode == 0


class TemporalTriggeredRun(TriggeredRun):
    """A run of a deployed flow on Temporal."""

    def __init__(self, deployer: Any, content: str):
        super().__init__(deployer, content)
        self.workflow_id: str | None = json.loads(content).get("workflow_id")

    def _ref(self) -> runs.RunRef:
        run_id = self.pathspec.split("/")[1]
        address, namespace = _server(self.deployer)

        async def find(client: Any) -> runs.RunRef:
            if self.workflow_id is None:
                record = await records.load(client, self.deployer.name)
                if record is None:
                    raise MetaflowException(f"{self.deployer.name} is not deployed")
                ref = await runs.find(client, run_id, record)
                self.workflow_id = ref.workflow_id
                return ref
            return await runs.find(client, run_id, workflow_id=self.workflow_id)

        return _on_server(address, namespace, find)

    @property
    def status(self) -> str | None:
        """PENDING (no Metaflow task started yet), RUNNING, SUCCEEDED, FAILED,
        CANCELLED, TERMINATED or TIMED_OUT, from the workflow."""
        try:
            status = self._ref().status
        except runs.RunNotFound:
            return None
        if status == runs.RUNNING and self.run is None:
            return runs.PENDING
        return status

    @property
    def is_running(self) -> bool:
        return self.status in (runs.PENDING, runs.RUNNING)

    def wait_for_completion(
        self, check_interval: int = 5, timeout: int | None = None
    ) -> None:
        """Wait until the run ended (any way); TimeoutError after ``timeout`` s."""
        start = time.time()
        while self.is_running:
            if timeout is not None and time.time() - start > timeout:
                raise TimeoutError(
                    "Workflow did not complete within specified timeout."
                )
            time.sleep(check_interval)

    def terminate(self, **kwargs: Any) -> bool:
        """Cancel the run: its tasks are killed and its compensations run
        (``force=True``: terminate it at once). True if the command succeeded."""
        return _command(
            self.deployer, "terminate", run_id=self.pathspec.split("/")[1], **kwargs
        )


class TemporalDeployedFlow(DeployedFlow):
    """A flow deployed on Temporal (its record on the server)."""

    TYPE: ClassVar[str | None] = "temporal"

    def trigger(self, **kwargs: Any) -> TemporalTriggeredRun:
        """Start a run; ``kwargs`` are the flow's parameters."""
        return self._start("trigger", **kwargs)

    def resume(
        self,
        origin_run_id: str | None = None,
        step_to_rerun: str | None = None,
        **kwargs: Any,
    ) -> TemporalTriggeredRun:
        """Resume run ``origin_run_id`` (default: the latest) as Metaflow's resume:
        what it finished is cloned, the rest (and ``step_to_rerun`` with what
        follows) runs again. ``kwargs`` are parameters that replace the origin's
        (nothing is then cloned: every task reads them)."""
        if origin_run_id is not None:
            kwargs["origin_run_id"] = origin_run_id
        if step_to_rerun is not None:
            kwargs["step_to_rerun"] = step_to_rerun
        return self._start("resume", **kwargs)

    def _start(self, command: str, **kwargs: Any) -> TemporalTriggeredRun:
        """Run ``temporal trigger`` or ``temporal resume``; the run it started."""
        deployer: Any = self.deployer
        attribute_file_path: str
        attribute_file_fd: int
        with temporary_fifo() as (attribute_file_path, attribute_file_fd):
            group: Any = get_lower_level_group(
                deployer.api,
                deployer.top_level_kwargs,
                deployer.TYPE,
                deployer.deployer_kwargs,
            )
            args = getattr(group, command)(
                deployer_attribute_file=attribute_file_path, **kwargs
            )
            pid = deployer.spm.run_command(
                [sys.executable, *args],
                env=deployer.env_vars,
                cwd=deployer.cwd,
                show_output=deployer.show_output,
            )
            command_obj = deployer.spm.get(pid)
            content = handle_timeout(
                attribute_file_fd, command_obj, deployer.file_read_timeout
            )
            command_obj.sync_wait()
            if command_obj.process.returncode == 0:
                return TemporalTriggeredRun(deployer=deployer, content=content)
        raise MetaflowException(
            f"Error running `temporal {command}` of {deployer.flow_file} on "
            f"{deployer.TYPE}"
        )

    def delete(self, **kwargs: Any) -> bool:
        """Delete the deployment (record, schedule, this machine's background worker)."""
        return _command(self.deployer, "delete", **kwargs)

    def suspend(self, **kwargs: Any) -> bool:
        """Pause the deployment's schedule."""
        return _command(self.deployer, "suspend", **kwargs)

    def unsuspend(self, **kwargs: Any) -> bool:
        """Resume the deployment's schedule."""
        return _command(self.deployer, "unsuspend", **kwargs)

    @property
    def record(self) -> records.Record | None:
        """The deployment's record on the server."""
        address, namespace = _server(self.deployer)
        return _on_server(
            address, namespace, lambda client: records.load(client, self.deployer.name)
        )

    @classmethod
    def list_deployed_flows(
        cls, flow_name: str | None = None
    ) -> Iterator[TemporalDeployedFlow]:
        """Every flow deployed on the server (``$TEMPORAL_ADDRESS``, namespace
        ``$TEMPORAL_NAMESPACE``), or those of class ``flow_name``."""
        found = _on_server(
            default_address(),
            default_namespace(),
            lambda client: records.listed(client, flow_name),
        )
        for record in found:
            yield cls._from_record(record)

    @classmethod
    def from_deployment(
        cls,
        identifier: str,
        metadata: str | None = None,
        *,
        address: str | None = None,
        namespace: str | None = None,
    ) -> TemporalDeployedFlow:
        """The deployment named ``identifier`` (Metaflow's project flow name, or the
        flow name) on the server ``address``/``namespace``, by default the one in
        ``$TEMPORAL_ADDRESS``/``$TEMPORAL_NAMESPACE``."""
        address = address or default_address()
        record = _on_server(
            address,
            namespace or default_namespace(),
            lambda client: records.load(client, identifier),
        )
        if record is None:
            raise MetaflowException(f"No deployed flow found for: {identifier}")
        return cls._from_record(record, metadata, address=address)

    @classmethod
    def _from_record(
        cls,
        record: records.Record,
        metadata: str | None = None,
        *,
        address: str | None = None,
    ) -> TemporalDeployedFlow:
        fake = tempfile.NamedTemporaryFile(
            "w", suffix=".py", prefix=f"{record.flow_name}_", delete=False
        )
        with fake:
            fake.write(
                generate_fake_flow_file_contents(
                    flow_name=record.flow_name,
                    param_info=record.param_info(),
                    project_name=record.project,
                )
            )
        env = {}
        project_kwargs: dict[str, Any] = {}
        branch = record.branch
        if branch is not None:
            if branch == "prod":
                project_kwargs["production"] = True
            elif branch.startswith("prod."):
                project_kwargs["production"] = True
                project_kwargs["branch"] = branch[len("prod.") :]
            elif branch.startswith("test."):
                project_kwargs["branch"] = branch[len("test.") :]
            elif branch.startswith("user."):
                env["METAFLOW_USER"] = branch[len("user.") :]
        # (Deployer gets ``temporal`` from the plugin when Metaflow loads it)
        deployer = getattr(Deployer(fake.name, env=env, **project_kwargs), "temporal")(
            address=address or default_address(), namespace=record.namespace
        )
        deployer.name = record.name
        deployer.flow_name = record.flow_name
        deployer.metadata = metadata if metadata is not None else get_metadata()
        return cls(deployer=deployer)

    @classmethod
    def get_triggered_run(
        cls, identifier: str, run_id: str, metadata: str | None = None
    ) -> TemporalTriggeredRun:
        """A run of deployment ``identifier`` by its Metaflow run id."""
        deployed = cls.from_deployment(identifier, metadata)
        return TemporalTriggeredRun(
            deployer=deployed.deployer,
            content=json.dumps(
                {
                    "metadata": deployed.deployer.metadata,
                    "pathspec": f"{deployed.deployer.flow_name}/{run_id}",
                    "name": run_id,
                }
            ),
        )
