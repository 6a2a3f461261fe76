"""The workflow entry points generated workflows call: a whole run (``execute``), a
chunk of a wide foreach, a loop that moved to a child workflow.

Generated code spells out the graph (which step follows which, fan-outs, switches,
loops, compensation scopes); the runtime does the mechanics once: run ids, task ids
and activity options (``scope``), bounded fan-outs that cancel their siblings on
failure (``fanout``), chunked child workflows for wide foreaches, loops that move to
a child workflow (which continues as new) when the history grows long, the saga
bookkeeping of compensations (``unwind``), and turning a failed task into a
non-retryable workflow failure. Everything here runs inside the Temporal workflow
sandbox and is deterministic.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    is_cancelled_exception,
)

from . import visibility
from .limits import CLONE_TIMEOUT, HEARTBEAT_TIMEOUT
from .packages import CURRENT_PACKAGE_ACTIVITY
from .payloads import (
    CodePackage,
    DefaultsRequest,
    FactsRequest,
    FlowRef,
    OriginRequest,
    OriginRun,
    StepFacts,
)
from .progress import CANCELLED, FAILED, SUCCEEDED, Tracker
from .scope import Run, history_is_long
from .triggers import announce_finish
from .specs import (
    Body,
    Chunk,
    ChunkResult,
    Loop,
    LoopResult,
    Resume,
    ResumePlan,
    RunInfo,
    RunOptions,
    RunResult,
)
from .unwind import with_compensations


def encode_value(value: Any) -> str:
    """A parameter value as Metaflow's ``init`` reads it: str as is, else JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def encode_parameters(params: Any) -> dict[str, str]:
    """The values of a PARAMS dataclass as ``init`` reads them (None: not given)."""
    return {
        f.name: encode_value(getattr(params, f.name))
        for f in dataclasses.fields(params)
        if getattr(params, f.name) is not None
    }


async def execute(
    flow: FlowRef,
    params: Any,
    graph: Callable[[Run], Awaitable[None]],
    *,
    options: RunOptions | None,
    max_workers: int,
    any_from_metaflow: bool = False,
    tracker: Tracker | None = None,
) -> RunResult:
    """Run a whole flow: ``init`` (after Metaflow evaluated the deploy-time defaults
    the run was not given), Metaflow's facts of the steps that take them from it
    (``any_from_metaflow``), then the generated ``graph``, then the result. A resume
    (``options.resume``) takes the origin's parameters and clones what the origin
    finished, task by task (:class:`ResumePlan`). The run sets its Metaflow run id
    (and flow and tags) as search attributes on itself, and reports to ``tracker``
    (the workflow's ``progress`` query and current details). A packaged flow's run
    first takes its code package (``options.code_package``, else the one of the
    worker starting it) and hands it to every task."""
    options = options or RunOptions()
    if flow.packaged and flow.package is None:
        flow = dataclasses.replace(
            flow, package=options.code_package or await _current_package(flow)
        )
    info = RunInfo(
        flow=flow,
        run_id=f"temporal-{workflow.info().first_execution_run_id}",
        max_workers=options.max_workers or max_workers,
        tags=tuple(sorted(set(flow.tags) | set(options.tags))),
        max_num_splits=options.max_num_splits,
        inline_activity_limit=options.inline_activity_limit,
        chunk_activity_limit=options.chunk_activity_limit,
        loop_history_limit=options.loop_history_limit,
        trigger=options.trigger,
    )
    visibility.upsert_run(flow.name, info.run_id, info.tags)
    tracker = Tracker() if tracker is None else tracker
    tracker.begin(flow.name, info.run_id)
    run = Run(info, tracker=tracker)
    workflow.logger.info("Metaflow run %s/%s", flow.name, info.run_id)
    try:
        plan = None
        if options.resume is None:
            parameters = {**options.parameters, **encode_parameters(params)}
        else:
            parameters, plan = await _resume_plan(info, options.resume)
        missing = tuple(n for n in flow.deploy_time_defaults if n not in parameters)
        if missing:
            parameters.update(await _metaflow_defaults(info, missing))
        if plan is not None:
            run.info = info = dataclasses.replace(info, resume=plan)
        await run.init(parameters)
        if any_from_metaflow:
            facts = await _metaflow_facts(info)
            run.info = info = dataclasses.replace(info, facts=facts)
        await graph(run)
        await announce_finish(info)
    except ApplicationError as err:
        tracker.ended(FAILED, err.message)
        if not run.shared.undone:
            raise
        raise with_compensations(err, run.shared.undone) from err
    except BaseException as err:
        tracker.ended(_outcome(err), _message(err))
        raise
    tracker.ended(SUCCEEDED)
    return RunResult(
        flow=flow.name,
        run_id=info.run_id,
        pathspec=f"{flow.name}/{info.run_id}",
        status="completed",
        tasks=dict(sorted(run.shared.counts.items())),
    )


async def _current_package(flow: FlowRef) -> CodePackage:
    """The code package of the worker that starts the run (recorded in the
    history: the run keeps it to its end, whichever worker runs its tasks)."""
    try:
        return await workflow.execute_local_activity(
            CURRENT_PACKAGE_ACTIVITY,
            flow.name,
            result_type=CodePackage,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_attempts=1),
            summary="the run's code package",
        )
    except ActivityError as err:
        cause = err.cause
        raise ApplicationError(
            getattr(cause, "message", None) or str(cause or err),
            type="MetaflowCodePackage",
            non_retryable=True,
        ) from err


def _outcome(err: BaseException) -> str:
    return CANCELLED if is_cancelled_exception(err) else FAILED


def _message(err: BaseException) -> str:
    return getattr(err, "message", None) or str(err) or type(err).__name__


async def _resume_plan(
    info: RunInfo, resume: Resume
) -> tuple[dict[str, str], ResumePlan]:
    """The parameters of a resumed run (the origin's, ``resume.parameters`` on top;
    the workflow's input is not read) and what it may clone. A changed parameter
    clones nothing: every task reads it."""
    given = {k.replace("-", "_"): v for k, v in resume.parameters.items()}
    origin: OriginRun = await workflow.execute_activity(
        "metaflow_origin",
        OriginRequest(info.flow, resume.origin_run_id),
        result_type=OriginRun,
        start_to_close_timeout=CLONE_TIMEOUT,
        retry_policy=RetryPolicy(maximum_attempts=3),
        summary=f"resume: what {info.flow.name}/{resume.origin_run_id} finished",
    )
    changed = sorted(k for k, v in given.items() if origin.parameters.get(k) != v)
    if changed:
        workflow.logger.info(
            "Resuming %s with other values of %s: every task reads them, so no "
            "task is cloned",
            resume.origin_run_id,
            ", ".join(changed),
        )
    plan = ResumePlan(
        resume.origin_run_id,
        resume.step_to_rerun,
        {} if changed else origin.succeeded,
    )
    return {**origin.parameters, **given}, plan


async def _metaflow_defaults(info: RunInfo, names: tuple[str, ...]) -> dict[str, str]:
    """Deploy-time defaults of ``names``, evaluated by Metaflow (``init`` inputs)."""
    return await workflow.execute_activity(
        "metaflow_defaults",
        DefaultsRequest(info.flow, info.run_id, names),
        result_type=dict[str, str],
        activity_id="_parameters/defaults",
        summary="Metaflow evaluates the defaults of " + ", ".join(names),
        start_to_close_timeout=timedelta(minutes=10),
        heartbeat_timeout=HEARTBEAT_TIMEOUT,
        retry_policy=RetryPolicy(maximum_attempts=3),
    )


async def _metaflow_facts(info: RunInfo) -> dict[str, StepFacts]:
    """Per step, the facts Metaflow derives from its decorators for this run."""
    return await workflow.execute_activity(
        "metaflow_facts",
        FactsRequest(info.flow, info.run_id),
        result_type=dict[str, StepFacts],
        activity_id="_parameters/facts",
        summary="Metaflow evaluates each step's retries, timeout and @environment",
        start_to_close_timeout=timedelta(minutes=10),
        heartbeat_timeout=HEARTBEAT_TIMEOUT,
        retry_policy=RetryPolicy(maximum_attempts=3),
    )


async def run_chunk(
    chunk: Chunk, body: Body, tracker: Tracker | None = None
) -> ChunkResult:
    """Body of a chunk child workflow: splits [start, stop) of one foreach. If it
    fails or is cancelled, it undoes the splits that finished before it ends.
    Reports to ``tracker`` (the chunk workflow's ``progress``)."""
    tracker = Tracker() if tracker is None else tracker
    tracker.begin(chunk.info.flow.name, chunk.info.run_id, "foreach chunk")
    tracker.foreach(
        f"{chunk.parent.step}/{chunk.parent.task_id}", chunk.stop - chunk.start
    )
    run = Run(chunk.info, chunk.scope, tracker=tracker)
    # The chunk's own activities come first in this history's event budget.
    run.shared.reserve((chunk.stop - chunk.start) * chunk.tasks_per_split)
    try:
        tasks = await run.run_splits(
            chunk.parent, body, chunk.start, chunk.stop, chunk.max_workers
        )
    except BaseException as err:
        await run.compensate()
        tracker.ended(_outcome(err), _message(err))
        if isinstance(err, ApplicationError) and run.shared.undone:
            raise with_compensations(err, run.shared.undone) from err
        raise
    tracker.ended(SUCCEEDED)
    return ChunkResult(tasks, run.undo)


async def run_loop(loop: Loop, tracker: Tracker | None = None) -> LoopResult:
    """Body of a loop child workflow: run the switch again while it chooses itself;
    continue as new when the history grows long; undo what it ran if it fails.
    Reports to ``tracker`` (the loop workflow's ``progress``)."""
    tracker = Tracker() if tracker is None else tracker
    tracker.begin(loop.info.flow.name, loop.info.run_id, "loop")
    run = Run(loop.info, loop.scope, undo=loop.undo, tracker=tracker)
    task, ran = loop.task, loop.ran
    try:
        while task.next_step == loop.spec.name:
            # (at least one iteration per execution, so that it always moves on)
            if ran > loop.ran and history_is_long(loop.info):
                workflow.continue_as_new(
                    dataclasses.replace(loop, task=task, undo=run.undo, ran=ran)
                )
            task = await run.step(loop.spec, [task])
            ran += 1
    except workflow.ContinueAsNewError:
        raise
    except BaseException as err:
        await run.compensate()
        tracker.ended(_outcome(err), _message(err))
        raise
    tracker.ended(SUCCEEDED)
    return LoopResult(task, run.undo, ran)
