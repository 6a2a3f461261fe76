"""Workflow-side mechanics that generated workflows call.

Generated code spells out the graph (which step follows which, fan-outs, switches,
loops, compensation scopes); this module does the mechanics once: run ids, task ids,
activity options, bounded fan-outs that cancel their siblings on failure, chunked
child workflows for wide foreaches, loops that move to a child workflow (which
continues as new) when the history grows long, the saga bookkeeping of compensations,
and turning a failed task into a non-retryable workflow failure.
Everything here runs inside the Temporal workflow sandbox and is deterministic.

Compensations: each ``Run`` is one scope (the whole flow, one branch, one foreach
split) with a stack of registered compensations. ``Run.step`` registers a step's
compensation just before its task starts. A scope that finishes hands its stack to
the scope that opened it (branches in sorted order, splits in split order), so
a later failure there undoes it too; a scope that fails or is cancelled undoes its
own stack (``Run.compensate``: last first, each compensation isolated, shielded from
further cancellation) before the error travels on.
"""

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

from ..contract import (
    COMPENSATE_WORKFLOW_SUFFIX,
    LOOP_WORKFLOW_SUFFIX,
    MAX_ATTEMPTS,
    TASK_FAILED,
)
from .payloads import (
    PARAMETERS_TASK_ID,
    CompensateRequest,
    DefaultsRequest,
    FactsRequest,
    FlowRef,
    StepFacts,
    InitRequest,
    StepRequest,
    TaskResult,
    Undo,
    compact_paths,
)

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
# History length at which a loop hands over to a child workflow / continues as new.
LOOP_HISTORY_LIMIT = 8000
HEARTBEAT_TIMEOUT = timedelta(seconds=30)
# Pauses before Temporal runs a lost attempt again: from this, doubling up to the max.
LOST_RETRY_INTERVAL = timedelta(seconds=1)
LOST_RETRY_MAX_INTERVAL = timedelta(seconds=10)
# Outer deadline for a step without @timeout.
DEFAULT_STEP_TIMEOUT = timedelta(days=7)
# Attempts of one compensation (each a Metaflow attempt of its task), its deadline.
COMPENSATION_ATTEMPTS = 3
COMPENSATION_TIMEOUT = timedelta(hours=1)
# Unwinds longer than this run in child workflows of at most CHUNK_ACTIVITY_LIMIT
# compensations each, so that no history grows past Temporal's limits.
INLINE_COMPENSATION_LIMIT = 200


@dataclass(frozen=True)
class StepSpec:
    """What the workflow needs to know about one step to run it."""

    name: str
    # foreach: read the width; switch: read the chosen step.
    foreach: bool = False
    switch: bool = False
    # user-code retries (@retry(times=)), platform-error retries (@catch adds 3),
    # and the pause between attempts (@retry(minutes_between_retries=)), as
    # Metaflow's orchestrators derive them from the step's decorators
    retries: int = 0
    error_retries: int = 0
    retry_delay_seconds: int = 0
    # @timeout (Metaflow enforces it too; this is the outer deadline).
    timeout_seconds: int = 0
    # @environment(vars=)
    env: dict[str, str] = field(default_factory=dict)
    # the flow method that undoes this step (@compensate), if any
    compensation: str | None = None
    # retries, timeout and env are evaluated by Metaflow when each run starts (they
    # depend on config_expr values or on decorators a mutator may add)
    from_metaflow: bool = False


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
    # a loop moves on in a child workflow (and that one continues as new) once the
    # history has this many events, or earlier when Temporal suggests it
    loop_history_limit: int = LOOP_HISTORY_LIMIT
    # per step: what Metaflow evaluated when the run started (StepSpec.from_metaflow)
    facts: dict[str, StepFacts] = field(default_factory=dict)

    def resolve(self, spec: StepSpec) -> StepSpec:
        """``spec`` with the facts Metaflow evaluated for this run, if it has any."""
        facts = self.facts.get(spec.name) if spec.from_metaflow else None
        if facts is None:
            return spec
        return dataclasses.replace(
            spec,
            retries=facts.retries,
            error_retries=facts.error_retries,
            retry_delay_seconds=facts.retry_delay_seconds,
            timeout_seconds=facts.timeout_seconds,
            env=dict(facts.env),
        )


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
class ChunkResult:
    """What a chunk child workflow hands back: its tasks in split order and the
    compensations its finished splits registered (registration order)."""

    tasks: list[Task]
    undo: list[Undo] = field(default_factory=list)


@dataclass(frozen=True)
class Loop:
    """Input of a loop child workflow: run ``spec`` again while it chooses itself."""

    info: RunInfo
    scope: tuple[str, ...]
    spec: StepSpec
    task: Task
    # carried over continue-as-new: compensations registered and tasks run so far
    undo: list[Undo] = field(default_factory=list)
    ran: int = 0


@dataclass(frozen=True)
class LoopResult:
    """The loop's last task (it chose another step), what it registered, its count."""

    task: Task
    undo: list[Undo]
    ran: int


@dataclass(frozen=True)
class Unwind:
    """Input of a compensation child workflow: undo ``undo`` last first."""

    info: RunInfo
    undo: list[Undo]


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
    # history events after which a loop moves on in a child workflow
    loop_history_limit: int = LOOP_HISTORY_LIMIT


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
Branch = Callable[["Run", Task], Awaitable[Task]]


def task_id(step: str, scope: Sequence[str] = (), iteration: int = 0) -> str:
    """Deterministic task id, unique within the run and stable across retries:
    ``<step>`` outside any foreach, ``<step>-<i>-<j>`` inside foreaches (the split
    index stack), ``<step>-i<k>`` for the k-th iteration of a looping switch
    (``<step>-<i>-i<k>`` inside a foreach). Never numeric (step names are
    identifiers) and never contains ``, : ! /``."""
    parts = [step, *scope] + ([f"i{iteration}"] if iteration else [])
    return "-".join(parts)


class _Shared:
    """What every scope of one workflow execution (one history) shares: task counts
    per step, the outcome of every compensation that ran, and the history events
    that the inline fan-outs still running will add."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.undone: list[str] = []
        self.reserved_events = 0

    def count(self, step: str, n: int = 1) -> None:
        self.counts[step] = self.counts.get(step, 0) + n

    def fits(self, activities: int) -> bool:
        """Whether ``activities`` more fit in this history's event budget."""
        used = workflow.info().get_current_history_length() + self.reserved_events
        return used + activities * EVENTS_PER_ACTIVITY <= HISTORY_EVENT_BUDGET

    def reserve(self, activities: int) -> None:
        """Hold the events of an inline fan-out of ``activities`` until it ends."""
        self.reserved_events += activities * EVENTS_PER_ACTIVITY

    def release(self, activities: int) -> None:
        """A finished inline fan-out's events are in the history length now."""
        self.reserved_events -= activities * EVENTS_PER_ACTIVITY


class Run:
    """A run of the flow seen from one scope (the top level, a branch, a foreach
    split); it holds the compensations registered in that scope."""

    def __init__(
        self,
        info: RunInfo,
        scope: tuple[str, ...] = (),
        shared: _Shared | None = None,
        undo: Sequence[Undo] = (),
    ):
        self.info = info
        self.scope = scope
        self.shared = _Shared() if shared is None else shared
        self.undo: list[Undo] = list(undo)

    @property
    def parameters(self) -> Task:
        """The run's ``_parameters`` task (the start step's input)."""
        return Task(
            "_parameters",
            PARAMETERS_TASK_ID,
            f"{self.info.run_id}/_parameters/{PARAMETERS_TASK_ID}",
        )

    def child(self, index: int) -> "Run":
        """The scope of split ``index`` of a foreach opened in this scope."""
        return Run(self.info, self.scope + (str(index),), self.shared)

    def branch(self) -> "Run":
        """The scope of one branch of a static split opened in this scope."""
        return Run(self.info, self.scope, self.shared)

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
        """Run one Metaflow task of ``spec`` with ``inputs`` and wait for it; the
        step's compensation (if any) is registered before the task starts."""
        spec = self.info.resolve(spec)
        iteration = next((t.iteration + 1 for t in inputs if t.step == spec.name), 0)
        tid = task_id(spec.name, self.scope, iteration)
        if spec.compensation:
            self.undo.append(Undo(spec.compensation, spec.name, tid, inputs[0].path))
        timeout = (
            timedelta(seconds=spec.timeout_seconds + 60)
            if spec.timeout_seconds
            else DEFAULT_STEP_TIMEOUT
        )
        # One activity per user-code attempt; Temporal retries an activity only when
        # its attempt was lost (worker gone, shutdown, outage), within MAX_ATTEMPTS.
        attempt, lost, failures = 0, 0, 0
        while True:
            request = StepRequest(
                flow=self.info.flow,
                run_id=self.info.run_id,
                step=spec.name,
                task_id=tid,
                # compacted for wide joins: payloads stay far below 512 KB
                input_paths=compact_paths([t.path for t in inputs]),
                split_index=split_index,
                max_user_code_retries=spec.retries,
                first_attempt=attempt,
                lost_attempts=lost,
                env=spec.env,
                timeout_seconds=spec.timeout_seconds,
                tags=self.info.tags,
                read_num_splits=spec.foreach,
                read_transition=spec.switch,
            )
            try:
                result: TaskResult = await workflow.execute_activity(
                    "metaflow_step",
                    request,
                    result_type=TaskResult,
                    activity_id=f"{spec.name}/{tid}"
                    + (f"/attempt-{attempt}" if attempt else ""),
                    start_to_close_timeout=timeout,
                    heartbeat_timeout=HEARTBEAT_TIMEOUT,
                    retry_policy=RetryPolicy(
                        maximum_attempts=MAX_ATTEMPTS - attempt,
                        initial_interval=LOST_RETRY_INTERVAL,
                        maximum_interval=LOST_RETRY_MAX_INTERVAL,
                    ),
                    cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                )
                break
            except ActivityError as err:
                failed = _failed_attempt(err)
                failures += 1
                if (
                    failed is None
                    or failures > spec.retries + spec.error_retries
                    or failed + 1 >= MAX_ATTEMPTS
                ):
                    raise StepFailed(
                        f"step {spec.name} failed (task {self.info.flow.name}/"
                        f"{self.info.run_id}/{spec.name}/{tid}): {_cause(err)}",
                        type="MetaflowStepFailed",
                        non_retryable=True,
                    ) from err
            lost += failed - attempt
            attempt = failed + 1
            if spec.retry_delay_seconds:  # @retry(minutes_between_retries=)
                await workflow.sleep(spec.retry_delay_seconds)
        self.shared.count(spec.name)
        return Task(
            step=spec.name,
            task_id=tid,
            path=result.path,
            scope=self.scope,
            iteration=iteration,
            num_splits=result.num_splits,
            next_step=result.next_step,
        )

    async def iterate(self, spec: StepSpec, task: Task) -> Task:
        """Run the switch ``spec`` again after it chose itself. Once this workflow's
        history is long, the rest of the loop runs in a child workflow that
        continues as new whenever its own history grows long."""
        if not _history_is_long(self.info):
            return await self.step(spec, [task])
        try:
            result: LoopResult = await workflow.execute_child_workflow(
                self.info.flow.name + LOOP_WORKFLOW_SUFFIX,
                Loop(self.info, self.scope, spec, task),
                id=f"{workflow.info().workflow_id}/{spec.name}/{task.task_id}/loop",
                result_type=LoopResult,
            )
        except ChildWorkflowError as err:
            raise _unwrap_child(err) from err
        self.undo.extend(result.undo)
        self.shared.count(spec.name, result.ran)
        return result.task

    async def parallel(self, parent: Task, *branches: Branch) -> list[Task]:
        """Run the branches of a static split (each its own scope); the first
        failure cancels the rest. Finished branches hand over their compensations."""
        scopes = [self.branch() for _ in branches]
        futures = [
            asyncio.ensure_future(branch(scope, parent))
            for branch, scope in zip(branches, scopes)
        ]
        try:
            return await gather_or_cancel(futures)
        finally:
            self._adopt(zip(futures, (s.undo for s in scopes)))

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
        if inline <= self.info.inline_activity_limit and self.shared.fits(inline):
            self.shared.reserve(inline)
            try:
                return await self.run_splits(
                    parent, body, 0, width, self.info.max_workers
                )
            finally:
                self.shared.release(inline)
        size = max(1, self.info.chunk_activity_limit // body_steps)
        per_child = max(1, -(-self.info.max_workers // CHILD_PARALLELISM))
        limit = asyncio.Semaphore(CHILD_PARALLELISM)

        async def chunk(start: int) -> ChunkResult:
            async with limit:
                stop = min(start + size, width)
                return await workflow.execute_child_workflow(
                    chunk_workflow,
                    Chunk(
                        self.info,
                        self.scope,
                        parent,
                        start,
                        stop,
                        per_child,
                        body_steps,
                    ),
                    id=f"{workflow.info().workflow_id}/{parent.step}/{parent.task_id}/{start}-{stop}",
                    result_type=ChunkResult,
                )

        futures = [asyncio.ensure_future(chunk(s)) for s in range(0, width, size)]
        try:
            chunks = await gather_or_cancel(futures)
        except ChildWorkflowError as err:
            raise _unwrap_child(err) from err
        finally:
            # finished chunks hand over their compensations, in chunk order
            for future in filter(_succeeded, futures):
                self.undo.extend(future.result().undo)
        tasks = [t for part in chunks for t in part.tasks]
        for t in tasks:
            self.shared.count(t.step)
        return tasks

    async def run_splits(
        self, parent: Task, body: Body, start: int, stop: int, limit: int
    ) -> list[Task]:
        """Run splits [start, stop) of a foreach, at most ``limit`` at once."""
        gate = asyncio.Semaphore(max(1, min(limit, 500)))
        scopes = [self.child(i) for i in range(start, stop)]

        async def one(scope: Run, index: int) -> Task:
            async with gate:
                return await body(scope, parent, index)

        futures = [
            asyncio.ensure_future(one(scope, i))
            for i, scope in zip(range(start, stop), scopes)
        ]
        try:
            return await gather_or_cancel(futures)
        finally:
            self._adopt(zip(futures, (s.undo for s in scopes)))

    def _adopt(self, finished) -> None:
        """Take over the compensations of sub-scopes that finished successfully,
        in the given (fixed) order; failed or cancelled ones undid their own."""
        for future, undo in finished:
            if _succeeded(future):
                self.undo.extend(undo)

    async def compensate(self) -> None:
        """Undo this scope: run its registered compensations last first, each
        isolated (a failing one is recorded and the others still run), shielded
        from cancellation. The caller re-raises the error that got it here."""
        undo, self.undo = self.undo, []
        if undo:
            await shielded(self._unwind(undo))

    async def _unwind(self, undo: list[Undo]) -> None:
        if len(undo) <= INLINE_COMPENSATION_LIMIT and self.shared.fits(len(undo)):
            for entry in reversed(undo):
                self.shared.undone.append(await _compensate_one(self.info, entry))
            return
        size = self.info.chunk_activity_limit
        starts = range(0, len(undo), size)
        for start in reversed(starts):
            part = undo[start : start + size]
            outcomes: list[str] = await workflow.execute_child_workflow(
                self.info.flow.name + COMPENSATE_WORKFLOW_SUFFIX,
                Unwind(self.info, part),
                id=f"{workflow.info().workflow_id}/_compensate/{part[-1].step}/"
                f"{part[-1].task_id}-{len(part)}",
                result_type=list[str],
            )
            self.shared.undone.extend(outcomes)


async def _compensate_one(info: RunInfo, entry: Undo) -> str:
    """Run one compensation task; its outcome as one line (never raises)."""
    label = f"{entry.handler} undoing {entry.step}/{entry.task_id}"
    request = CompensateRequest(
        flow=info.flow,
        run_id=info.run_id,
        undo=entry,
        tags=info.tags,
    )
    try:
        await workflow.execute_activity(
            "metaflow_compensate",
            request,
            activity_id=f"_compensate_{entry.step}/{entry.task_id}",
            start_to_close_timeout=COMPENSATION_TIMEOUT,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=RetryPolicy(
                maximum_attempts=COMPENSATION_ATTEMPTS,
                initial_interval=timedelta(seconds=1),
            ),
        )
    except ActivityError as err:
        workflow.logger.error("compensation %s failed: %s", label, _cause(err))
        return f"{label}: failed: {_cause(err).splitlines()[0]}"
    workflow.logger.info("compensation %s done", label)
    return f"{label}: done"


def _history_is_long(info: RunInfo) -> bool:
    now = workflow.info()
    return (
        now.is_continue_as_new_suggested()
        or now.get_current_history_length() >= info.loop_history_limit
    )


def _failed_attempt(err: ActivityError) -> int | None:
    """The Metaflow attempt whose user code failed, or None when the activity
    failed otherwise (attempts used up, not recorded, timed out)."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type == TASK_FAILED:
        details = cause.details[0] if cause.details else {}
        if isinstance(details, dict) and isinstance(details.get("attempt"), int):
            return details["attempt"]
    return None


def _cause(err: BaseException) -> str:
    cause = getattr(err, "cause", None)
    return cause.message if isinstance(cause, ApplicationError) else str(cause or err)


def _succeeded(future: asyncio.Future) -> bool:
    return future.done() and not future.cancelled() and future.exception() is None


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
    """Cancel the unfinished ones and wait until all are done (they may be undoing
    their own scopes), even if this waiting is cancelled itself."""
    for t in tasks:
        if not t.done():
            t.cancel()
    await shielded(asyncio.gather(*tasks, return_exceptions=True))


async def shielded(awaitable: Awaitable[Any]) -> Any:
    """Await ``awaitable`` to the end however often the awaiting task is cancelled
    meanwhile (``asyncio.shield`` alone gives up at the first cancel)."""
    inner = asyncio.ensure_future(awaitable)
    while True:
        try:
            return await asyncio.shield(inner)
        except asyncio.CancelledError:
            if inner.done():
                return inner.result()
            this = asyncio.current_task()
            if this is not None:
                this.uncancel()


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
    any_from_metaflow: bool = False,
) -> RunResult:
    """Run a whole flow: ``init`` (after Metaflow evaluated the deploy-time defaults
    the run was not given), Metaflow's facts of the steps that take them from it
    (``any_from_metaflow``), then the generated ``graph``, then the result."""
    options = options or RunOptions()
    info = RunInfo(
        flow=flow,
        run_id=f"temporal-{workflow.info().first_execution_run_id}",
        max_workers=options.max_workers or max_workers,
        tags=tuple(sorted(set(flow.tags) | set(options.tags))),
        max_num_splits=options.max_num_splits,
        inline_activity_limit=options.inline_activity_limit,
        chunk_activity_limit=options.chunk_activity_limit,
        loop_history_limit=options.loop_history_limit,
    )
    run = Run(info)
    workflow.logger.info("Metaflow run %s/%s", flow.name, info.run_id)
    parameters = encode_parameters(params)
    missing = tuple(n for n in flow.deploy_time_defaults if n not in parameters)
    if missing:
        parameters.update(await _metaflow_defaults(info, missing))
    await run.init(parameters)
    if any_from_metaflow:
        facts = await _metaflow_facts(info)
        run.info = info = dataclasses.replace(info, facts=facts)
    try:
        await graph(run)
    except ApplicationError as err:
        if not run.shared.undone:
            raise
        raise _with_compensations(err, run.shared.undone) from err
    return RunResult(
        flow=flow.name,
        run_id=info.run_id,
        pathspec=f"{flow.name}/{info.run_id}",
        status="completed",
        tasks=dict(sorted(run.shared.counts.items())),
    )


async def _metaflow_defaults(info: RunInfo, names: tuple[str, ...]) -> dict[str, str]:
    """Deploy-time defaults of ``names``, evaluated by Metaflow (``init`` inputs)."""
    return await workflow.execute_activity(
        "metaflow_defaults",
        DefaultsRequest(info.flow, info.run_id, names),
        result_type=dict[str, str],
        activity_id="_parameters/defaults",
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
        start_to_close_timeout=timedelta(minutes=10),
        heartbeat_timeout=HEARTBEAT_TIMEOUT,
        retry_policy=RetryPolicy(maximum_attempts=3),
    )


def _with_compensations(err: ApplicationError, undone: list[str]) -> ApplicationError:
    """A copy of ``err`` whose message ends with what the compensations did."""
    lines = "\n".join(f"  {line}" for line in undone)
    return ApplicationError(
        f"{err.message}\ncompensations (last registered first):\n{lines}",
        {"compensations": undone},
        type=err.type,
        non_retryable=True,
    )


async def run_chunk(chunk: Chunk, body: Body) -> ChunkResult:
    """Body of a chunk child workflow: splits [start, stop) of one foreach. If it
    fails or is cancelled, it undoes the splits that finished before it ends."""
    run = Run(chunk.info, chunk.scope)
    # The chunk's own activities come first in this history's event budget.
    run.shared.reserve((chunk.stop - chunk.start) * chunk.body_steps)
    try:
        tasks = await run.run_splits(
            chunk.parent, body, chunk.start, chunk.stop, chunk.max_workers
        )
    except BaseException as err:
        await run.compensate()
        if isinstance(err, ApplicationError) and run.shared.undone:
            raise _with_compensations(err, run.shared.undone) from err
        raise
    return ChunkResult(tasks, run.undo)


async def run_loop(loop: Loop) -> LoopResult:
    """Body of a loop child workflow: run the switch again while it chooses itself;
    continue as new when the history grows long; undo what it ran if it fails."""
    run = Run(loop.info, loop.scope, undo=loop.undo)
    task, ran = loop.task, loop.ran
    try:
        while task.next_step == loop.spec.name:
            # (at least one iteration per execution, so that it always moves on)
            if ran > loop.ran and _history_is_long(loop.info):
                workflow.continue_as_new(
                    dataclasses.replace(loop, task=task, undo=run.undo, ran=ran)
                )
            task = await run.step(loop.spec, [task])
            ran += 1
    except workflow.ContinueAsNewError:
        raise
    except BaseException:
        await run.compensate()
        raise
    return LoopResult(task, run.undo, ran)


async def run_compensations(unwind: Unwind) -> list[str]:
    """Body of a compensation child workflow: undo ``unwind.undo`` last first."""
    return [
        await _compensate_one(unwind.info, entry) for entry in reversed(unwind.undo)
    ]


def unknown_branch(task: Task) -> ApplicationError:
    """The error for a switch that chose a step the generated code does not know."""
    return ApplicationError(
        f"step {task.step} chose {task.next_step!r}, which is not one of its cases; "
        "regenerate the workflow from the current flow",
        type="MetaflowUnknownBranch",
        non_retryable=True,
    )
