"""Hand-written stand-in for a generated module: TroubleFlow's start, then one
branch (``boom`` fails, ``nap`` sleeps)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from mf_temporal_codegen.runtime.payloads import (
        FlowRef,
        InitRequest,
        StepRequest,
        TaskResult,
    )

FLOW = FlowRef(name="TroubleFlow", file="trouble_flow.py")
TASK_QUEUE = "TroubleFlow"


@dataclasses.dataclass(frozen=True)
class TroubleFlowParams:
    branch: str = "boom"


@dataclasses.dataclass(frozen=True)
class TroubleFlowResult:
    pathspec: str


@workflow.defn(name="TroubleFlow")
class TroubleFlowWorkflow:
    @workflow.run
    async def run(self, params: TroubleFlowParams) -> TroubleFlowResult:
        run_id = f"temporal-{workflow.info().workflow_id}"
        path = await workflow.execute_activity(
            "metaflow_init",
            InitRequest(FLOW, run_id, "t-params"),
            result_type=str,
            start_to_close_timeout=timedelta(minutes=2),
        )
        for step in ("start", params.branch):
            try:
                result = await workflow.execute_activity(
                    "metaflow_step",
                    StepRequest(FLOW, run_id, step, step, (path,)),
                    result_type=TaskResult,
                    start_to_close_timeout=timedelta(minutes=2),
                    heartbeat_timeout=timedelta(seconds=10),
                    retry_policy=RetryPolicy(maximum_attempts=1),
                )
            except ActivityError as err:
                raise ApplicationError(
                    f"step {step} failed: {err.cause}", non_retryable=True
                ) from err
            path = result.path
        return TroubleFlowResult(f"{FLOW.name}/{run_id}")


WORKFLOW = TroubleFlowWorkflow
WORKFLOWS = [TroubleFlowWorkflow]
PARAMS = TroubleFlowParams
