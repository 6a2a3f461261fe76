"""Hand-written stand-in for a generated module: LinearFlow's steps in sequence."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from mf_temporal_codegen.runtime.payloads import (
        FlowRef,
        InitRequest,
        StepRequest,
        TaskResult,
    )

FLOW = FlowRef(name="LinearFlow", file="linear_flow.py")
TASK_QUEUE = "LinearFlow"


@dataclasses.dataclass(frozen=True)
class LinearFlowParams:
    alpha: int = 1
    greeting_text: str = "hi"
    weights: Any = None


@dataclasses.dataclass(frozen=True)
class LinearFlowResult:
    run_id: str
    pathspec: str
    tasks: dict[str, str]


@workflow.defn(name="LinearFlow")
class LinearFlowWorkflow:
    @workflow.run
    async def run(self, params: LinearFlowParams) -> LinearFlowResult:
        run_id = f"temporal-{workflow.info().workflow_id}"
        values = {
            f.name: v if isinstance(v, str) else json.dumps(v)
            for f in dataclasses.fields(params)
            if (v := getattr(params, f.name)) is not None
        }
        path = await workflow.execute_activity(
            "metaflow_init",
            InitRequest(FLOW, run_id, "t-params", values),
            result_type=str,
            start_to_close_timeout=timedelta(minutes=2),
        )
        tasks = {}
        for step, retries in (("start", 0), ("middle", 2), ("end", 0)):
            # a user-code failure is not retried by Temporal: the workflow starts
            # the next Metaflow attempt as a new activity
            for attempt in range(retries + 1):
                try:
                    result = await workflow.execute_activity(
                        "metaflow_step",
                        StepRequest(
                            FLOW,
                            run_id,
                            step,
                            step,
                            (path,),
                            max_user_code_retries=retries,
                            first_attempt=attempt,
                        ),
                        result_type=TaskResult,
                        activity_id=f"{step}/{attempt}",
                        start_to_close_timeout=timedelta(minutes=2),
                        heartbeat_timeout=timedelta(seconds=30),
                        retry_policy=RetryPolicy(maximum_attempts=2),
                    )
                    break
                except ActivityError:
                    if attempt == retries:
                        raise
            path = tasks[step] = result.path
        return LinearFlowResult(run_id, f"{FLOW.name}/{run_id}", tasks)


WORKFLOW = LinearFlowWorkflow
WORKFLOWS = [LinearFlowWorkflow]
PARAMS = LinearFlowParams
