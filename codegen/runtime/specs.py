"""What the workflow side passes around: step specs, finished tasks, run settings, and
the inputs and results of the child workflows (chunks, loops, unwinds).

No ``from __future__ import annotations`` here: Temporal's data converter reads
these dataclasses' field types, and strings would have to resolve where it looks.
"""

import dataclasses
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from temporalio.exceptions import ApplicationError

from .limits import (
    CHUNK_ACTIVITY_LIMIT,
    INLINE_ACTIVITY_LIMIT,
    LOOP_HISTORY_LIMIT,
    MAX_NUM_SPLITS,
)
from .payloads import CodePackage, FlowRef, StepFacts, Undo
from .triggers import TriggerInfo

if TYPE_CHECKING:
    from .scope import Run


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
    # the task queue the step's tasks (and clones) run on, served by a worker pool
    # (``worker --queue QUEUE``); None: the workflow's own queue. (Its
    # compensations run on the workflow's queue.)
    task_queue: str | None = None


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
    # cloned from the run this one resumes (not executed again)
    cloned: bool = False


@dataclass(frozen=True)
class Resume:
    """Resume the run ``origin_run_id`` (``RunOptions.resume``), as Metaflow's
    ``resume`` does: what it finished successfully is cloned, the rest runs."""

    origin_run_id: str
    # run this step again, and everything after it (None: only what did not succeed)
    step_to_rerun: str | None = None
    # Parameter values that replace the origin's, by Metaflow name, as ``init``
    # reads them; every task reads every parameter, so a changed one clones nothing
    parameters: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ResumePlan:
    """What the tasks of a resumed run may clone (``RunInfo.resume``)."""

    origin_run_id: str
    step_to_rerun: str | None
    # per step: ids of the tasks the origin finished successfully (task ids are
    # deterministic: the same position in the graph has the same id in both runs)
    succeeded: dict[str, list[str]] = field(default_factory=dict)

    def may_clone(self, step: str, task_id: str, inputs: Sequence[Task]) -> bool:
        """Metaflow's rule: the origin's task succeeded, all its inputs were cloned,
        and its step is not the one to run again."""
        return (
            step != self.step_to_rerun
            and task_id in self.succeeded.get(step, ())
            and all(t.cloned for t in inputs)
        )


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
    # the run this one resumes, and what it may clone of it
    resume: ResumePlan | None = None
    # the event that started the run (@trigger, @trigger_on_finish)
    trigger: TriggerInfo | None = None

    def resolve(self, spec: StepSpec) -> StepSpec:
        """``spec`` with the facts Metaflow evaluated for this run, if it has any,
        and the event that started the run in its task's environment."""
        if self.trigger is not None:
            spec = dataclasses.replace(spec, env={**spec.env, **self.trigger.env()})
        facts = self.facts.get(spec.name) if spec.from_metaflow else None
        if facts is None:
            return spec
        return dataclasses.replace(
            spec,
            retries=facts.retries,
            error_retries=facts.error_retries,
            retry_delay_seconds=facts.retry_delay_seconds,
            timeout_seconds=facts.timeout_seconds,
            env={**facts.env, **(self.trigger.env() if self.trigger else {})},
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
    # tasks per split (what the chunk's fan-out costs its history)
    tasks_per_split: int = 1


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
    # values of Parameters the workflow's input does not hold (a FlowMutator adds
    # them), by Metaflow name, as ``init`` reads them: str as is, else JSON
    parameters: dict[str, str] = field(default_factory=dict)
    # resume another run instead of starting afresh (the input's values are then
    # ignored: the origin's parameters hold, with ``Resume.parameters`` on top)
    resume: Resume | None = None
    # the event that started the run (publishing it, or an upstream run's end);
    # every task sees it as Metaflow's ``current.trigger``
    trigger: TriggerInfo | None = None
    # the code package of a packaged flow's run (None: the one of the worker that
    # starts the run)
    code_package: CodePackage | None = None


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


# a coroutine (an ``async def`` method), which ``asyncio.create_task`` needs
Branch = Callable[["Run", Task], Coroutine[Any, Any, Task]]


def task_id(step: str, scope: Sequence[str] = (), iteration: int = 0) -> str:
    """Deterministic task id, unique within the run and stable across retries:
    ``<step>`` outside any foreach, ``<step>-<i>-<j>`` inside foreaches (the split
    index stack), ``<step>-i<k>`` for the k-th iteration of a looping switch
    (``<step>-<i>-i<k>`` inside a foreach). Never numeric (step names are
    identifiers) and never contains ``, : ! /``."""
    parts = [step, *scope] + ([f"i{iteration}"] if iteration else [])
    return "-".join(parts)


def unknown_branch(task: Task) -> ApplicationError:
    """The error for a switch that chose a step the generated code does not know."""
    return ApplicationError(
        f"step {task.step} chose {task.next_step!r}, which is not one of its cases; "
        "regenerate the workflow from the current flow",
        type="MetaflowUnknownBranch",
        non_retryable=True,
    )
