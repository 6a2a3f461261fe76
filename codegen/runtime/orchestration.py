"""Workflow-side mechanics that generated workflows call.

Generated code spells out the graph (which step follows which, fan-outs, switches,
loops); this module does the mechanics once: run ids, task ids, activity options,
bounded fan-outs that cancel their siblings on failure, chunked child workflows for
wide foreaches, and turning a failed task into a non-retryable workflow failure.
Everything here runs inside the Temporal workflow sandbox and is deterministic.
"""

import asyncio
import dataclasses
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

from .payloads import FlowRef, InitRequest, StepRequest, TaskResult, compact_paths

# Fan-outs run inline while they stay below this many activities; wider ones go to
# chunked child workflows so that no history grows past Temporal's limits.
INLINE_ACTIVITY_LIMIT = 1000
# Activities per child workflow (each costs ~4 history events).
CHUNK_ACTIVITY_LIMIT = 1000
# Child workflows of one foreach in flight at once.
CHILD_PARALLELISM = 2
# Events one history may get from inline fan-outs: Temporal warns past 10,240 events
# and fails a run at 51,200. A fan-out that does not fit (counting the history so far
# and the inline fan-outs still running, e.g. sibling splits of an outer foreach)
# runs in chunk child workflows even when it is narrower than INLINE_ACTIVITY_LIMIT.
HISTORY_EVENT_BUDGET = 9000
# Most history events one fan-out activity adds: scheduled, started, completed, and
# the workflow task its completion triggers.
EVENTS_PER_ACTIVITY = 6
# Widest foreach a run allows (Metaflow's --max-num-splits guard). `python flow.py run`
# defaults to 100 and Metaflow's orchestrators do not check; runs here allow 10,000
# (the width this runtime is tested at) unless RunOptions/`trigger` say otherwise.
MAX_NUM_SPLITS = 10000
HEARTBEAT_TIMEOUT = timedelta(seconds=30)
# Outer deadline for a step without @timeout.
DEFAULT_STEP_TIMEOUT = timedelta(days=7)


@dataclass(frozen=True)
class StepSpec:
    """What the workflow needs to know about one step to run it."""

    name: str
    # foreach: read the width; switch: read the chosen step.
    foreach: bool = False
    switch: bool = False
    # @retry(times=, minutes_between_retries=)
    retries: int = 0
    retry_delay_seconds: int = 0
    # @timeout (Metaflow enforces it too; this is the outer deadline).
    timeout_seconds: int = 0
    # @environment(vars=)
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Task:
    """A finished Metaflow task as the workflow sees it (a reference only)."""

    step: str
    task_id: str
    # ``run_id/step/task_id``
    path: str
    # foreach indexes and loop markers that make the task id unique
    scope: tuple[str, ...] = ()
    iteration: int = 0
    num_splits: int | None = None
    next_step: str | None = None


@dataclass(frozen=True)
class RunInfo:
    """Everything about a run that child workflows need too."""

    flow: FlowRef
    run_id: str
    max_workers: int
    max_num_splits: int = MAX_NUM_SPLITS
    tags: tuple[str, ...] = ()
    inline_activity_limit: int = INLINE_ACTIVITY_LIMIT
    chunk_activity_limit: int = CHUNK_ACTIVITY_LIMIT


@dataclass(frozen=True)
class Chunk:
    """Input of a chunk child workflow: run a foreach body for splits [start, stop)."""

    info: RunInfo
    scope: tuple[str, ...]
    parent: Task
    start: int
    stop: int
    max_workers: int
    # activities per split (what the chunk's fan-out costs its history)
    body_steps: int = 1


@dataclass(frozen=True)
class RunOptions:
    """Per-run settings given when a run is started (the trigger's flags)."""

    # overrides the generated MAX_WORKERS
    max_workers: int | None = None
    # added to the generated run tags
    tags: tuple[str, ...] = ()
    # Metaflow's --max-num-splits
    max_num_splits: int = MAX_NUM_SPLITS
    # foreach fan-outs above this many activities run in chunked child workflows
    inline_activity_limit: int = INLINE_ACTIVITY_LIMIT
    # activities per chunk child workflow
    chunk_activity_limit: int = CHUNK_ACTIVITY_LIMIT


@dataclass(frozen=True)
class RunResult:
    """The outcome of a workflow run."""

    flow: str
    run_id: str
    # ``Flow/run_id``: open it with ``metaflow.Run(pathspec)``.
    pathspec: str
    status: str
    # Tasks that ran, per step.
    tasks: dict[str, int]


class StepFailed(ApplicationError):
    """A Metaflow task failed for good; fails the workflow (non-retryable)."""


Body = Callable[["Run", Task, int], Awaitable[Task]]


def task_id(scope: Sequence[str], iteration: int = 0) -> str:
    """Deterministic, non-numeric task id: ``t``, ``t-3``, ``t-3-1``, ``t-i2``."""
    parts = ["t", *scope] + ([f"i{iteration}"] if iteration else [])
    return "-".join(parts)


class Run:
    """A run of the flow seen from one scope (the top level or a foreach split)."""

    def __init__(self, info: RunInfo, scope: tuple[str, ...] = (), counts=None):
        self.info = info
        self.scope = scope
        self.counts: dict[str, int] = {} if counts is None else counts
        self.parameters = Task(
            "_parameters", task_id(()) + "-params", f"{info.run_id}/_parameters/t-params"
        )

    def child(self, index: int) -> "Run":
        """The scope of split ``index`` of a foreach opened in this scope."""
        return Run(self.info, self.scope + (str(index),), self.counts)

    async def init(self, parameters: dict[str, str]) -> Task:
        """Create the run's ``_parameters`` task (Metaflow's ``init``), once."""
        request = InitRequest(
            flow=self.info.flow,
            run_id=self.info.run_id,
            task_id=self.parameters.task_id,
            parameters=parameters,
            tags=self.info.tags,
        )
        await workflow.execute_activity(
            "metaflow_init",
            request,
            activity_id="_parameters/" + request.task_id,
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=RetryPolicy(maximum_attempts=3),
        )
        return self.parameters

    async def step(
        self, spec: StepSpec, inputs: Sequence[Task], *, split_index: int | None = None
    ) -> Task:
        """Run one Metaflow task of ``spec`` with ``inputs`` and wait for it."""
        iteration = next(
            (t.iteration + 1 for t in inputs if t.step == spec.name), 0
        )
        tid = task_id(self.scope, iteration)
        request = StepRequest(
            flow=self.info.flow,
            run_id=self.info.run_id,
            step=spec.name,
            task_id=tid,
            # compacted for wide joins: payloads stay far below 512 KB
            input_paths=compact_paths([t.path for t in inputs]),
            split_index=split_index,
            max_user_code_retries=spec.retries,
            env=spec.env,
            timeout_seconds=spec.timeout_seconds,
            tags=self.info.tags,
            read_num_splits=spec.foreach,
            read_transition=spec.switch,
        )
        timeout = (
            timedelta(seconds=spec.timeout_seconds + 60)
            if spec.timeout_seconds
            else DEFAULT_STEP_TIMEOUT
        )
        try:
            result: TaskResult = await workflow.execute_activity(
                "metaflow_step",
                request,
                result_type=TaskResult,
                activity_id=f"{spec.name}/{tid}",
                start_to_close_timeout=timeout,
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=RetryPolicy(
                    maximum_attempts=spec.retries + 1,
                    initial_interval=timedelta(seconds=max(spec.retry_delay_seconds, 1)),
                    backoff_coefficient=1.0,
                ),
                cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            )
        except ActivityError as err:
            cause = err.cause.message if isinstance(err.cause, ApplicationError) else str(err.cause or err)
            raise StepFailed(
                f"step {spec.name} failed (task {self.info.flow.name}/{self.info.run_id}/"
                f"{spec.name}/{tid}): {cause}",
                type="MetaflowStepFailed",
                non_retryable=True,
            ) from err
        self.counts[spec.name] = self.counts.get(spec.name, 0) + 1
        return Task(
            step=spec.name,
            task_id=tid,
            path=result.path,
            scope=self.scope,
            iteration=iteration,
            num_splits=result.num_splits,
            next_step=result.next_step,
        )

    async def parallel(self, *branches: Coroutine[Any, Any, Task]) -> list[Task]:
        """Run the branches of a static split; the first failure cancels the rest."""
        return await gather_or_cancel([asyncio.ensure_future(b) for b in branches])

    async def foreach(
        self, parent: Task, body: Body, *, chunk_workflow: str, body_steps: int
    ) -> list[Task]:
        """Run ``body`` once per split of the foreach ``parent`` opened; split order."""
        width = parent.num_splits or 0
        if width > self.info.max_num_splits:
            raise ApplicationError(
                f"foreach in step {parent.step} has {width} splits, more than "
                f"--max-num-splits {self.info.max_num_splits}",
                type="MetaflowTooManySplits",
                non_retryable=True,
            )
        inline = width * body_steps
        if inline <= self.info.inline_activity_limit and _reserve_events(inline):
            try:
                return await self.run_splits(parent, body, 0, width, self.info.max_workers)
            finally:
                _release_events(inline)
        size = max(1, self.info.chunk_activity_limit // body_steps)
        per_child = max(1, -(-self.info.max_workers // CHILD_PARALLELISM))
        limit = asyncio.Semaphore(CHILD_PARALLELISM)

        async def chunk(start: int) -> list[Task]:
            async with limit:
                stop = min(start + size, width)
                return await workflow.execute_child_workflow(
                    chunk_workflow,
                    Chunk(self.info, self.scope, parent, start, stop, per_child, body_steps),
                    id=f"{workflow.info().workflow_id}/{parent.step}/{task_id(self.scope)}/{start}-{stop}",
                    result_type=list[Task],
                )

        try:
            chunks = await gather_or_cancel(
                [asyncio.ensure_future(chunk(s)) for s in range(0, width, size)]
            )
        except ChildWorkflowError as err:
            raise _unwrap_child(err) from err
        tasks = [t for part in chunks for t in part]
        for t in tasks:
            self.counts[t.step] = self.counts.get(t.step, 0) + 1
        return tasks

    async def run_splits(
        self, parent: Task, body: Body, start: int, stop: int, limit: int
    ) -> list[Task]:
        """Run splits [start, stop) of a foreach, at most ``limit`` at once."""
        gate = asyncio.Semaphore(max(1, min(limit, 500)))

        async def one(index: int) -> Task:
            async with gate:
                return await body(self.child(index), parent, index)

        return await gather_or_cancel(
            [asyncio.ensure_future(one(i)) for i in range(start, stop)]
        )


async def gather_or_cancel(tasks: list[asyncio.Future]) -> list[Any]:
    """Wait for all; on the first failure cancel and drain the others, then raise it."""
    if not tasks:
        return []
    try:
        await workflow.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except BaseException:
        await _cancel_all(tasks)
        raise
    failed = [t for t in tasks if t.done() and not t.cancelled() and t.exception()]
    if failed:
        await _cancel_all(tasks)
        raise failed[0].exception()
    return [t.result() for t in tasks]


async def _cancel_all(tasks: list[asyncio.Future]) -> None:
    for t in tasks:
        if not t.done():
            t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# History events reserved by the running inline fan-outs, per workflow instance (so
# per history; a replay rebuilds it the same way).
_reserved_events: "weakref.WeakKeyDictionary[Any, int]" = weakref.WeakKeyDictionary()


def _reserve_events(activities: int, *, force: bool = False) -> bool:
    """Reserve the events of an inline fan-out of ``activities`` if they fit."""
    instance = workflow.instance()
    events = activities * EVENTS_PER_ACTIVITY
    reserved = _reserved_events.get(instance, 0)
    used = workflow.info().get_current_history_length() + reserved
    if not force and used + events > HISTORY_EVENT_BUDGET:
        return False
    _reserved_events[instance] = reserved + events
    return True


def _release_events(activities: int) -> None:
    """A finished inline fan-out's events are in the history length now."""
    instance = workflow.instance()
    _reserved_events[instance] -= activities * EVENTS_PER_ACTIVITY


def _unwrap_child(err: ChildWorkflowError) -> BaseException:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return StepFailed(cause.message, type=cause.type, non_retryable=True)
    return err


def encode_parameters(params: Any) -> dict[str, str]:
    """Parameter values as Metaflow's ``init`` reads them: str as is, else JSON."""
    import json

    encoded = {}
    for f in dataclasses.fields(params):
        value = getattr(params, f.name)
        if value is None:
            continue
        encoded[f.name] = value if isinstance(value, str) else json.dumps(value)
    return encoded


async def execute(
    flow: FlowRef,
    params: Any,
    graph: Callable[[Run], Awaitable[None]],
    *,
    options: RunOptions | None,
    max_workers: int,
) -> RunResult:
    """Run a whole flow: ``init``, then the generated ``graph``, then the result."""
    options = options or RunOptions()
    info = RunInfo(
        flow=flow,
        run_id=f"temporal-{workflow.info().first_execution_run_id}",
        max_workers=options.max_workers or max_workers,
        tags=tuple(sorted(set(flow.tags) | set(options.tags))),
        max_num_splits=options.max_num_splits,
        inline_activity_limit=options.inline_activity_limit,
        chunk_activity_limit=options.chunk_activity_limit,
    )
    run = Run(info)
    workflow.logger.info("Metaflow run %s/%s", flow.name, info.run_id)
    await run.init(encode_parameters(params))
    await graph(run)
    return RunResult(
        flow=flow.name,
        run_id=info.run_id,
        pathspec=f"{flow.name}/{info.run_id}",
        status="completed",
        tasks=dict(sorted(run.counts.items())),
    )


async def run_chunk(chunk: Chunk, body: Body) -> list[Task]:
    """Body of a chunk child workflow: splits [start, stop) of one foreach."""
    run = Run(chunk.info, chunk.scope)
    # The chunk's own activities come first in this history's event budget.
    _reserve_events((chunk.stop - chunk.start) * chunk.body_steps, force=True)
    return await run.run_splits(chunk.parent, body, chunk.start, chunk.stop, chunk.max_workers)


def unknown_branch(task: Task) -> ApplicationError:
    """The error for a switch that chose a step the generated code does not know."""
    return ApplicationError(
        f"step {task.step} chose {task.next_step!r}, which is not one of its cases; "
        "regenerate the workflow from the current flow",
        type="MetaflowUnknownBranch",
        non_retryable=True,
    )
