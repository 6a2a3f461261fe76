"""``Deployer(flow_file).temporal(...)``: Metaflow's Deployer API on Temporal.

Metaflow imports this module while it initializes its plugins: it imports nothing
else of Metaflow's at the top."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, cast

from metaflow.runner.deployer_impl import DeployerImpl

if TYPE_CHECKING:
    from .objects import TemporalDeployedFlow


class TemporalDeployer(DeployerImpl):
    """Deployer implementation for Temporal."""

    TYPE: ClassVar[str | None] = "temporal"

    def __init__(self, deployer_kwargs: dict[str, Any], **kwargs: Any) -> None:
        self._deployer_kwargs = deployer_kwargs
        super().__init__(**kwargs)

    @property
    def deployer_kwargs(self) -> dict[str, Any]:
        return self._deployer_kwargs

    @staticmethod
    def deployed_flow_type() -> type[TemporalDeployedFlow]:
        # (imported here: Metaflow loads this module while it initializes)
        from .objects import TemporalDeployedFlow

        return TemporalDeployedFlow

    def create(self, **kwargs: Any) -> TemporalDeployedFlow:
        """Deploy the flow on Temporal (``python flow.py temporal create``).

        Parameters
        ----------
        output_dir : str, optional
            Where the generated modules go (default: ``temporal_workflows/`` next to
            the flow file).
        task_queue : str, optional
            The task queue (default: the deployment's, see ``@project``).
        max_workers : int, default 16
            Tasks of one foreach running at once.
        workflow_timeout : int, optional
            Fail a run that takes longer than this many seconds.
        tags : list[str], optional
            Tag every run.
        queues : list[str], optional
            ``[STEP=]QUEUE`` task queues of steps, served by ``worker --queue``.
        gpu_queue : str, optional
            The task queue of every step with ``@resources(gpu=N)``, N > 0.
        code_package : bool, default True
            Build Metaflow's code package and save it in the datastore, as Argo's
            create does: runs carry it and their tasks run from it on any worker.
        worker : bool, default False
            Start a worker in the background (stopped by ``delete``).
        """
        from .objects import TemporalDeployedFlow

        return cast(TemporalDeployedFlow, self._create(TemporalDeployedFlow, **kwargs))

    def from_deployment(
        self, identifier: str, metadata: str | None = None
    ) -> TemporalDeployedFlow:
        """The deployment named ``identifier`` (``DeployedFlow.name``: the project
        flow name ``<project>.<branch>.<Flow>``, or the flow name) on this deployer's
        server, as ``DeployedFlow.from_deployment(identifier, impl="temporal")``
        finds it; the orchestrator kit calls it on the deployer."""
        from .objects import TemporalDeployedFlow, _server

        address, namespace = _server(self)
        return TemporalDeployedFlow.from_deployment(
            identifier, metadata, address=address, namespace=namespace
        )
