"""One scope of a run (the whole flow, a branch, a foreach split): running its steps,
its fan-outs and loops, and the compensations registered in it.

Compensations: each ``Run`` is one scope with a stack of registered compensations.
``Run.step`` registers a step's compensation just before its task starts. A scope
that finishes hands its stack to the scope that opened it (branches in the order they
were started, splits in split order), so a later failure there undoes it too; a scope
that fails or is cancelled undoes its own stack (``Run.compensate``: last first, each
compensation isolated, shielded from further cancellation) before the error travels
on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    is_cancelled_exception,
)

from ..contract import (
    COMPENSATE_WORKFLOW_SUFFIX,
    LOOP_WORKFLOW_SUFFIX,
    MAX_ATTEMPTS,
    TASK_FAILED,
)
from .fanout import cancel_all, gather_or_cancel, shielded, succeeded
from .limits import (
    CHILD_PARALLELISM,
    CLONE_TIMEOUT,
    DEFAULT_STEP_TIMEOUT,
    EVENTS_PER_ACTIVITY,
    HEARTBEAT_TIMEOUT,
    HISTORY_EVENT_BUDGET,
    INLINE_COMPENSATION_LIMIT,
    MAX_PENDING_ACTIVITIES,
    LOST_RETRY_INTERVAL,
    LOST_RETRY_MAX_INTERVAL,
)
from .payloads import (
    PARAMETERS_TASK_ID,
    CloneRequest,
    InitRequest,
    StepRequest,
    TaskResult,
    Undo,
    compact_paths,
)
from .specs import (
    Body,
    Branch,
    Chunk,
    ChunkResult,
    Loop,
    LoopResult,
    ResumePlan,
    RunInfo,
    StepFailed,
    StepSpec,
    Task,
    Unwind,
    task_id,
)
from . import progress, visibility
from .progress import Tracker
from .unwind import cause_of, compensate_one


class _Shared:
    """What every scope of one workflow execution (one history) shares: task counts
    per step, the outcome of every compensation that ran, the history events that
    the inline fan-outs still running will add, and the progress it reports (the
    ``progress`` query, the UI's current details)."""

    def __init__(self, tracker: Tracker | None = None) -> None:
        self.counts: dict[str, int] = {}
        self.undone: list[str] = []
        self.reserved_events = 0
        self.tracker = Tracker() if tracker is None else tracker

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
        tracker: Tracker | None = None,
    ):
        self.info = info
        self.scope = scope
        self.shared = _Shared(tracker) if shared is None else shared
        self.undo: list[Undo] = list(undo)

    @property
    def tracker(self) -> Tracker:
        """What this execution reports for the ``progress`` query and the UI."""
        return self.shared.tracker

    @property
    def parameters(self) -> Task:
        """The run's ``_parameters`` task (the start step's input). In a resumed
        run it holds the origin's values: the start step may be cloned."""
        return Task(
            "_parameters",
            PARAMETERS_TASK_ID,
            f"{self.info.run_id}/_parameters/{PARAMETERS_TASK_ID}",
            cloned=self.info.resume is not None,
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
        step, tid = "_parameters", request.task_id
        self.tracker.task(step, tid, progress.RUNNING)
        try:
            await workflow.execute_activity(
                "metaflow_init",
                request,
                activity_id="_parameters/" + request.task_id,
                start_to_close_timeout=timedelta(minutes=10),
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=RetryPolicy(maximum_attempts=3),
                summary=f"init: the parameters of {self.info.flow.name}/"
                f"{self.info.run_id} ({step}/{tid})",
            )
        except BaseException as err:
            self.tracker.task(step, tid, _ended(err), error=_first_line(err))
            raise
        self.tracker.task(step, tid, progress.SUCCEEDED)
        return self.parameters

    async def step(
        self, spec: StepSpec, inputs: Sequence[Task], *, split_index: int | None = None
    ) -> Task:
        """Run one Metaflow task of ``spec`` with ``inputs`` and wait for it; the
        step's compensation (if any) is registered before the task starts."""
        spec = self.info.resolve(spec)
        iteration = next((t.iteration + 1 for t in inputs if t.step == spec.name), 0)
        tid = task_id(spec.name, self.scope, iteration)
        plan = self.info.resume
        if plan is not None and plan.may_clone(spec.name, tid, inputs):
            return await self._clone(spec, tid, iteration, plan)
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
        tracker = self.tracker
        while True:
            tracker.task(spec.name, tid, progress.RUNNING, attempt)
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
                origin_run_id=plan.origin_run_id if plan else None,
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
                    summary=f"{spec.name}/{tid} (attempt {attempt})",
                    **_routed(spec),
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
                    state = _ended(err)
                    last = attempt if failed is None else failed
                    tracker.task(spec.name, tid, state, last, _headline(err))
                    if state == progress.CANCELLED:
                        raise
                    pathspec = (
                        f"{self.info.flow.name}/{self.info.run_id}/{spec.name}/{tid}"
                    )
                    raise StepFailed(
                        step_failure(spec.name, pathspec, err),
                        type="MetaflowStepFailed",
                        non_retryable=True,
                    ) from err
            except BaseException:
                tracker.task(spec.name, tid, progress.CANCELLED, attempt)
                raise
            lost += failed - attempt
            attempt = failed + 1
            if spec.retry_delay_seconds:  # @retry(minutes_between_retries=)
                tracker.task(spec.name, tid, progress.RETRYING, attempt)
                try:
                    await workflow.sleep(spec.retry_delay_seconds)
                except BaseException:
                    tracker.task(spec.name, tid, progress.CANCELLED, attempt)
                    raise
        tracker.task(spec.name, tid, progress.SUCCEEDED, result.attempt)
        return self._finished(spec, iteration, result)

    def _finished(
        self, spec: StepSpec, iteration: int, result: TaskResult, cloned: bool = False
    ) -> Task:
        """The task ``result`` reports, counted."""
        self.shared.count(spec.name)
        return Task(
            step=spec.name,
            task_id=result.task_id,
            path=result.path,
            scope=self.scope,
            iteration=iteration,
            num_splits=result.num_splits,
            next_step=result.next_step,
            cloned=cloned,
        )

    async def _clone(
        self, spec: StepSpec, tid: str, iteration: int, plan: ResumePlan
    ) -> Task:
        """Clone task ``tid`` of ``spec`` from the run this one resumes; a clone
        registers no compensation (the origin's tasks are not undone again)."""
        tracker = self.tracker
        tracker.task(spec.name, tid, progress.RUNNING)
        request = CloneRequest(
            flow=self.info.flow,
            run_id=self.info.run_id,
            step=spec.name,
            task_id=tid,
            origin_run_id=plan.origin_run_id,
            read_num_splits=spec.foreach,
            read_transition=spec.switch,
            tags=self.info.tags,
        )
        try:
            result: TaskResult = await workflow.execute_activity(
                "metaflow_clone",
                request,
                result_type=TaskResult,
                activity_id=f"{spec.name}/{tid}/clone",
                start_to_close_timeout=CLONE_TIMEOUT,
                retry_policy=RetryPolicy(maximum_attempts=3),
                summary=f"{spec.name}/{tid} cloned from {plan.origin_run_id}",
                **_routed(spec),
            )
        except BaseException as err:
            tracker.task(spec.name, tid, _ended(err), error=_first_line(err))
            raise
        tracker.task(spec.name, tid, progress.CLONED)
        return self._finished(spec, iteration, result, cloned=True)

    async def iterate(self, spec: StepSpec, task: Task) -> Task:
        """Run the switch ``spec`` again after it chose itself. Once this workflow's
        history is long, the rest of the loop runs in a child workflow that
        continues as new whenever its own history grows long."""
        if not history_is_long(self.info):
            return await self.step(spec, [task])
        child = f"{workflow.info().workflow_id}/{spec.name}/{task.task_id}/loop"
        what = f"loop {spec.name} after {task.task_id}"
        self.tracker.child(child, what)
        try:
            result: LoopResult = await workflow.execute_child_workflow(
                self.info.flow.name + LOOP_WORKFLOW_SUFFIX,
                Loop(self.info, self.scope, spec, task),
                id=child,
                result_type=LoopResult,
                **self._child_options(what),
            )
        except ChildWorkflowError as err:
            raise _unwrap_child(err) from err
        finally:
            self.tracker.child_ended(child)
        self.undo.extend(result.undo)
        self.shared.count(spec.name, result.ran)
        return result.task

    @property
    def max_workers(self) -> int:
        """Tasks of one foreach that run at once: the module's MAX_WORKERS, or what
        the run was started with (``RunOptions.max_workers``)."""
        return self.info.max_workers

    def task_group(self) -> TaskGroup:
        """A task group for the branches of a static split (see :class:`TaskGroup`)."""
        return TaskGroup(self)

    async def foreach(
        self,
        parent: Task,
        body: Body,
        *,
        max_workers: int,
        chunk_workflow: str,
        tasks_per_split: int,
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
        inline = width * tasks_per_split
        opened = f"{parent.step}/{parent.task_id}"
        self.tracker.foreach(opened, width)
        try:
            if inline <= self.info.inline_activity_limit and self.shared.fits(inline):
                self.shared.reserve(inline)
                try:
                    return await self.run_splits(parent, body, 0, width, max_workers)
                finally:
                    self.shared.release(inline)
            return await self._chunked(
                parent, width, max_workers, chunk_workflow, tasks_per_split
            )
        finally:
            self.tracker.foreach_ended(opened)

    async def _chunked(
        self,
        parent: Task,
        width: int,
        max_workers: int,
        chunk_workflow: str,
        tasks_per_split: int,
    ) -> list[Task]:
        """Run a foreach too wide for this history in chunk child workflows."""
        size = max(1, self.info.chunk_activity_limit // tasks_per_split)
        per_child = max(1, -(-max_workers // CHILD_PARALLELISM))
        limit = asyncio.Semaphore(CHILD_PARALLELISM)
        opened = f"{parent.step}/{parent.task_id}"

        async def chunk(start: int) -> ChunkResult:
            async with limit:
                stop = min(start + size, width)
                child = f"{workflow.info().workflow_id}/{opened}/{start}-{stop}"
                what = (
                    f"splits {start}-{stop - 1} of {width} of the foreach of {opened}"
                )
                self.tracker.child(child, what)
                try:
                    result: ChunkResult = await workflow.execute_child_workflow(
                        chunk_workflow,
                        Chunk(
                            self.info,
                            self.scope,
                            parent,
                            start,
                            stop,
                            per_child,
                            tasks_per_split,
                        ),
                        id=child,
                        result_type=ChunkResult,
                        **self._child_options(what),
                    )
                finally:
                    self.tracker.child_ended(child)
                self.tracker.split_done(opened, stop - start)
                return result

        futures = [asyncio.ensure_future(chunk(s)) for s in range(0, width, size)]
        try:
            chunks = await gather_or_cancel(futures)
        except ChildWorkflowError as err:
            raise _unwrap_child(err) from err
        finally:
            # finished chunks hand over their compensations, in chunk order
            for future in filter(succeeded, futures):
                self.undo.extend(future.result().undo)
        tasks = [t for part in chunks for t in part.tasks]
        for t in tasks:
            self.shared.count(t.step)
        return tasks

    async def run_splits(
        self, parent: Task, body: Body, start: int, stop: int, limit: int
    ) -> list[Task]:
        """Run splits [start, stop) of a foreach, at most ``limit`` at once."""
        gate = asyncio.Semaphore(max(1, min(limit, MAX_PENDING_ACTIVITIES)))
        scopes = [self.child(i) for i in range(start, stop)]
        opened = f"{parent.step}/{parent.task_id}"

        async def one(scope: Run, index: int) -> Task:
            async with gate:
                task = await body(scope, parent, index)
            self.tracker.split_done(opened)
            return task

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
            if succeeded(future):
                self.undo.extend(undo)

    async def compensate(self) -> None:
        """Undo this scope: run its registered compensations last first, each
        isolated (a failing one is recorded and the others still run), shielded
        from cancellation. The caller re-raises the error that got it here."""
        undo, self.undo = self.undo, []
        if undo:
            await shielded(self._unwind(undo))

    async def _unwind(self, undo: list[Undo]) -> None:
        tracker = self.tracker
        tracker.compensating(len(undo))
        if len(undo) <= INLINE_COMPENSATION_LIMIT and self.shared.fits(len(undo)):
            for entry in reversed(undo):
                outcome = await compensate_one(self.info, entry)
                self.shared.undone.append(outcome)
                tracker.compensated(outcome)
            return
        size = self.info.chunk_activity_limit
        starts = range(0, len(undo), size)
        for start in reversed(starts):
            part = undo[start : start + size]
            child = (
                f"{workflow.info().workflow_id}/_compensate/{part[-1].step}/"
                f"{part[-1].task_id}-{len(part)}"
            )
            what = (
                f"{len(part)} compensations, from {part[-1].step}/{part[-1].task_id} "
                f"back to {part[0].step}/{part[0].task_id}"
            )
            tracker.child(child, what)
            try:
                outcomes: list[str] = await workflow.execute_child_workflow(
                    self.info.flow.name + COMPENSATE_WORKFLOW_SUFFIX,
                    Unwind(self.info, part),
                    id=child,
                    result_type=list[str],
                    **self._child_options(what),
                )
            finally:
                tracker.child_ended(child)
            self.shared.undone.extend(outcomes)
            for outcome in outcomes:
                tracker.compensated(outcome)

    def _child_options(self, what: str) -> dict[str, Any]:
        """What a child workflow of this run shows in Temporal's UI and lists: this
        run's search attributes, a summary saying ``what`` it does, details naming
        the Metaflow run and the parent workflow."""
        pathspec = f"{self.info.flow.name}/{self.info.run_id}"
        return {
            "search_attributes": visibility.inherited(),
            "static_summary": f"{self.info.flow.name}: {what}",
            "static_details": f"**Metaflow run** `{pathspec}`\n"
            f"**Parent workflow** `{workflow.info().workflow_id}`",
        }


def _routed(spec: StepSpec) -> dict[str, Any]:
    """``task_queue=`` for a step routed to its own task queue, else nothing (the
    activity goes to the workflow's queue, as in histories recorded before routing)."""
    return {"task_queue": spec.task_queue} if spec.task_queue else {}


def history_is_long(info: RunInfo) -> bool:
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


def step_failure(step: str, pathspec: str, err: ActivityError) -> str:
    """The message of a step that failed for good, for the flow's author: the user's
    exception line first, then the step, task and attempt, then the traceback once
    (the step activity's message is built that way, see ``failures``); for other
    failures (timeouts, attempts used up) the step, task and what Temporal says."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type == TASK_FAILED:
        headline = _headline(err)
        message = cause.message
        if headline and message.startswith(headline + "\n"):
            rest = message[len(headline) + 1 :]
            return f"{headline}\nstep {step} failed: {rest}"
        return f"step {step} failed: {message}"
    return f"step {step} failed (task {pathspec}): {cause_of(err)}"


def _ended(err: BaseException) -> str:
    """The state a task that raised ``err`` ends in."""
    return progress.CANCELLED if is_cancelled_exception(err) else progress.FAILED


def _headline(err: BaseException) -> str:
    """The user's exception line of a failed step activity, else the first line of
    what went wrong."""
    cause = getattr(err, "cause", None)
    if isinstance(cause, ApplicationError) and cause.type == TASK_FAILED:
        details = cause.details[0] if cause.details else {}
        if isinstance(details, dict) and details.get("exception"):
            return str(details["exception"])
    return _first_line(err)


def _first_line(err: BaseException) -> str:
    text = cause_of(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _unwrap_child(err: ChildWorkflowError) -> BaseException:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return StepFailed(cause.message, type=cause.type, non_retryable=True)
    return err


class TaskGroup:
    """``async with run.task_group() as group:`` runs the branches of a static split
    at once, like ``asyncio.TaskGroup``: ``group.create_task(self.branch_x, parent)``
    starts a branch in a scope of its own, and leaving the block waits for all of
    them. The first failure cancels the others and waits until they are done (each
    undoing its own compensations), then it is raised itself: one error, not an
    ``ExceptionGroup``, so that Temporal fails the run with it. Branches that
    finished hand their compensations to the enclosing scope, in the order they were
    started."""

    def __init__(self, run: Run):
        self._run = run
        self._started: list[tuple[asyncio.Task[Task], Run]] = []

    async def __aenter__(self) -> TaskGroup:
        return self

    def create_task(self, branch: Branch, parent: Task) -> asyncio.Task[Task]:
        scope = self._run.branch()
        task = asyncio.create_task(branch(scope, parent))
        self._started.append((task, scope))
        return task

    async def __aexit__(self, exc_type, exc, tb) -> None:
        tasks = [task for task, _ in self._started]
        try:
            if exc is not None:
                await cancel_all(tasks)
            else:
                await gather_or_cancel(tasks)
        finally:
            self._run._adopt((task, scope.undo) for task, scope in self._started)
