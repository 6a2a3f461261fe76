"""What one workflow execution of a run has done so far: the answer to the ``progress``
query every generated workflow has, and the current details Temporal's UI shows
(``workflow.set_current_details``), kept up to date as tasks start and end.

A generated workflow creates one :class:`Tracker` in its constructor and hands it to
the runtime's entry point; the scopes of that execution report to it. Child workflows
(foreach chunks, loops, compensations) have their own tracker and query; the parent
lists them while they run. Nothing here issues Temporal commands: replays are not
affected.
"""

from dataclasses import dataclass, field

from temporalio import workflow

# Task and run states.
RUNNING = "running"
# waiting before the next attempt of a task (@retry(minutes_between_retries=))
RETRYING = "retrying"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
# reused from the run this one resumes (Metaflow's clone of a task)
CLONED = "cloned"
# a run (or child) undoing what ran (@compensate)
COMPENSATING = "compensating"
TASK_STATES = (RUNNING, RETRYING, SUCCEEDED, FAILED, CANCELLED, CLONED)
# The query lists this many tasks at most (the others are counted per step), those
# not succeeded first.
QUERY_TASKS = 1000
# Current details name this many running tasks per step, then "and N more".
DETAIL_TASKS = 5


@dataclass
class TaskProgress:
    """One Metaflow task of the run."""

    step: str
    task_id: str
    # one of TASK_STATES
    state: str
    # the Metaflow attempt running now, or the last one (as ``--retry-count`` and
    # ``Task.current_attempt`` number them: the first is 0)
    attempt: int = 0
    # the error's first line, for a failed task
    error: str | None = None


@dataclass
class StepProgress:
    """The tasks of one step, counted by state."""

    step: str
    running: int = 0
    retrying: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    cloned: int = 0


@dataclass
class ForeachProgress:
    """A foreach this execution runs: splits done out of all of its splits here."""

    # ``step/task_id`` of the task that opened it
    parent: str
    done: int
    total: int


@dataclass
class Progress:
    """The answer to the ``progress`` query: steps and tasks by state."""

    flow: str
    # Metaflow's pathspec of the run, ``Flow/run_id``
    pathspec: str
    # running, compensating, succeeded, failed or cancelled
    state: str
    # in the order their first task started
    steps: list[StepProgress] = field(default_factory=list)
    # tasks neither succeeded nor cloned first, at most QUERY_TASKS
    tasks: list[TaskProgress] = field(default_factory=list)
    foreach: list[ForeachProgress] = field(default_factory=list)
    # child workflows running now (foreach chunks, loops, compensations): query them
    # for their own tasks
    children: list[str] = field(default_factory=list)
    # what each compensation that ran did, in the order they ran
    compensations: list[str] = field(default_factory=list)
    # the first line of the error that failed the run
    error: str | None = None


class Tracker:
    """The progress of one workflow execution (see the module docstring)."""

    def __init__(self) -> None:
        # "run", or the kind of child workflow ("foreach chunk", "loop", ...)
        self.kind = "run"
        self.flow = ""
        self.pathspec = ""
        self.state = RUNNING
        self.error: str | None = None
        self._tasks: dict[tuple[str, str], TaskProgress] = {}
        self._steps: dict[str, StepProgress] = {}
        # running or retrying tasks per step, and failed ones (for the details)
        self._active: dict[str, dict[str, TaskProgress]] = {}
        self._failed: list[TaskProgress] = []
        self._foreach: dict[str, ForeachProgress] = {}
        self._children: dict[str, str] = {}
        self._compensations: list[str] = []
        self._undo_total = 0

    def begin(self, flow: str, run_id: str, kind: str = "run") -> None:
        """This execution runs (a part of: ``kind``) Metaflow run ``run_id``."""
        self.flow, self.pathspec, self.kind = flow, f"{flow}/{run_id}", kind
        self._show()

    # tasks

    def task(
        self,
        step: str,
        task_id: str,
        state: str,
        attempt: int = 0,
        error: str | None = None,
    ) -> None:
        """Task ``step/task_id`` is now in ``state`` (at ``attempt``)."""
        counts = self._steps.get(step)
        if counts is None:
            counts = self._steps[step] = StepProgress(step)
        previous = self._tasks.get((step, task_id))
        if previous is not None:
            setattr(counts, previous.state, getattr(counts, previous.state) - 1)
        setattr(counts, state, getattr(counts, state) + 1)
        entry = TaskProgress(step, task_id, state, attempt, error)
        self._tasks[(step, task_id)] = entry
        active = self._active.setdefault(step, {})
        if state in (RUNNING, RETRYING):
            active[task_id] = entry
        else:
            active.pop(task_id, None)
        if state == FAILED:
            self._failed.append(entry)
        self._show()

    # fan-outs and children

    def foreach(self, parent: str, total: int) -> None:
        """A foreach opened by task ``parent`` (``step/task_id``) runs ``total`` splits."""
        self._foreach[parent] = ForeachProgress(parent, 0, total)
        self._show()

    def split_done(self, parent: str, n: int = 1) -> None:
        found = self._foreach.get(parent)
        if found is not None:
            found.done += n
            self._show()

    def foreach_ended(self, parent: str) -> None:
        if self._foreach.pop(parent, None) is not None:
            self._show()

    def child(self, workflow_id: str, what: str) -> None:
        """Child workflow ``workflow_id`` (doing ``what``) started."""
        self._children[workflow_id] = what
        self._show()

    def child_ended(self, workflow_id: str) -> None:
        if self._children.pop(workflow_id, None) is not None:
            self._show()

    # compensations and the outcome

    def compensating(self, total: int) -> None:
        """``total`` more compensations are about to run."""
        if self.state == RUNNING:
            self.state = COMPENSATING
        self._undo_total += total
        self._show()

    def compensated(self, outcome: str) -> None:
        self._compensations.append(outcome)
        self._show()

    def ended(self, state: str, error: str | None = None) -> None:
        self.state = state
        if error and self.error is None:
            self.error = error.splitlines()[0] if error.strip() else error
        self._show()

    def progress(self) -> Progress:
        """The answer to the ``progress`` query."""
        tasks = sorted(
            self._tasks.values(),
            key=lambda t: (t.state in (SUCCEEDED, CLONED), t.step, t.task_id),
        )
        return Progress(
            flow=self.flow,
            pathspec=self.pathspec,
            state=self.state,
            steps=[StepProgress(**vars(s)) for s in self._steps.values()],
            tasks=[TaskProgress(**vars(t)) for t in tasks[:QUERY_TASKS]],
            foreach=[ForeachProgress(**vars(f)) for f in self._foreach.values()],
            children=list(self._children),
            compensations=list(self._compensations),
            error=self.error,
        )

    def details(self) -> str:
        """The current details (Temporal markdown), as the UI shows them."""
        title = f"**Metaflow run** `{self.pathspec}`"
        lines = [title if self.kind == "run" else f"{title} ({self.kind})"]
        if self.state != RUNNING:
            lines.append(f"**State** {self.state}")
        if self.error:
            lines.append(f"**Error** {self.error}")
        for step, active in self._active.items():
            if not active:
                continue
            labels = []
            for t in list(active.values())[:DETAIL_TASKS]:
                label = f"{t.task_id} (attempt {t.attempt})"
                labels.append(
                    label + (" waiting to retry" if t.state == RETRYING else "")
                )
            if len(active) > DETAIL_TASKS:
                labels.append(f"and {len(active) - DETAIL_TASKS} more")
            lines.append(f"**Running** {step}: " + ", ".join(labels))
        for f in self._foreach.values():
            lines.append(
                f"**Foreach** of {f.parent}: {f.done} of {f.total} splits done"
            )
        for workflow_id, what in self._children.items():
            lines.append(f"**Child workflow** {what}: `{workflow_id}`")
        for t in self._failed[:DETAIL_TASKS]:
            error = f": {t.error}" if t.error else ""
            lines.append(
                f"**Failed** {t.step}/{t.task_id} (attempt {t.attempt}){error}"
            )
        done = sum(s.succeeded for s in self._steps.values())
        if done:
            lines.append(f"**Tasks done** {done}")
        if self._undo_total:
            lines.append(
                f"**Compensations** {len(self._compensations)} of "
                f"{self._undo_total} done"
            )
            failed = [c for c in self._compensations if ": failed" in c]
            lines += [f"- {outcome}" for outcome in failed[:DETAIL_TASKS]]
        return "\n".join(lines)

    def _show(self) -> None:
        # (not while Temporal evicts the workflow: its coroutines end outside its loop)
        if self.pathspec and workflow.in_workflow():
            workflow.set_current_details(self.details())
