"""Payloads exchanged between generated workflows and the runtime activities.

Only references travel through Temporal (pathspecs, task ids, split counts), never
artifacts. Every type here is a plain dataclass so Temporal's default converter
serialises it.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

# Task id of every run's ``_parameters`` task (Metaflow's ``init``).
PARAMETERS_TASK_ID = "t-params"
# Steps with at least this many inputs (wide joins) get them compacted, see
# ``compact_paths``: 10,000 plain paths would be a ~700 KB payload.
COMPACT_INPUTS_FROM = 32


@dataclass(frozen=True)
class ConfigRef:
    """A Metaflow ``Config`` of the flow: its name, attribute and ``plain`` flag."""

    name: str
    attr: str
    plain: bool = False


@dataclass(frozen=True)
class CodePackage:
    """Metaflow's code package of a run (``MetaflowPackage``), in its datastore."""

    # sha1 of the archive: its key in the datastore's content-addressed store
    sha: str
    # where the datastore keeps it (``METAFLOW_CODE_URL``)
    url: str
    # the datastore's type (``METAFLOW_CODE_DS``)
    ds_type: str
    # ``MetaflowPackage.package_metadata``: the archive's format and layout
    metadata: str
    # the flow file inside the package (the package holds the flow's directory)
    flow_file: str


@dataclass(frozen=True)
class FlowRef:
    """The flow a generated module orchestrates.

    `file` is the flow file relative to the directory of the generated module; the
    worker resolves it against that directory, so checkouts can live anywhere.
    """

    name: str
    file: str
    # Top-level options fixed at generation time (``--metadata=local``,
    # ``--with=retry``, ``--branch=x`` ...), forwarded to init and every step. Those of
    # ``contract.METAFLOW_OPTIONS`` (and ``--datastore-root``) not fixed here are
    # taken from the worker's Metaflow config, and passed explicitly too.
    top_level: tuple[str, ...] = ()
    # Run tags fixed at generation time (``--tag``).
    tags: tuple[str, ...] = ()
    # The flow's Configs: resolved once per run by ``init`` (from their defaults and
    # ``init_options``) and handed to every task, as Metaflow's runtime does.
    configs: tuple[ConfigRef, ...] = ()
    # Top-level options for ``init`` only (``--config NAME PATH``, ``--config-value``).
    init_options: tuple[str, ...] = ()
    # Parameters whose defaults Metaflow evaluates before ``init`` (deploy-time
    # functions and the like: ``init`` alone would turn them into None).
    deploy_time_defaults: tuple[str, ...] = ()
    # Runs carry Metaflow's code package (generated with ``--code-package``): the
    # worker that starts a run gives it the package it built from its checkout
    # (:mod:`.packages`), and every task runs from it, on any worker.
    packaged: bool = False
    # The package of this run (set when the run starts; None: tasks run from the
    # worker's checkout).
    package: CodePackage | None = None


@dataclass(frozen=True)
class StepFacts:
    """A step's orchestration facts as Metaflow derives them from its decorators
    (after configs, ``FlowMutator``s and ``--with``)."""

    retries: int = 0
    error_retries: int = 0
    retry_delay_seconds: int = 0
    timeout_seconds: int = 0
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DefaultsRequest:
    """Have Metaflow evaluate deploy-time Parameter defaults for one run."""

    flow: FlowRef
    run_id: str
    # the parameters to evaluate (those the run was not given)
    names: tuple[str, ...]


@dataclass(frozen=True)
class FactsRequest:
    """Have Metaflow describe the flow's steps with one run's Config values."""

    flow: FlowRef
    run_id: str


@dataclass(frozen=True)
class InitRequest:
    """Create the ``_parameters`` task of a run (Metaflow's ``init`` command)."""

    flow: FlowRef
    run_id: str
    task_id: str
    # Parameter values keyed by Metaflow parameter name, JSON-encoded unless str.
    parameters: dict[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class StepRequest:
    """Run one Metaflow task: ``python flow.py <top> step NAME ...``."""

    flow: FlowRef
    run_id: str
    step: str
    task_id: str
    # Input pathspecs without the flow name: ``run_id/step/task_id``, or for a wide
    # join one entry in Metaflow's ``compress_list`` form (see ``compact_paths``).
    input_paths: tuple[str, ...]
    split_index: int | None = None
    # @retry(times=) of the step: user-code failures it may still retry
    max_user_code_retries: int = 0
    # The Metaflow attempt this activity's first try runs (attempts end by a user-code
    # failure, each followed by a new activity, or are lost with their worker, each
    # followed by Temporal's retry of the same activity), and how many of the
    # attempts before it were lost: those do not count against @retry.
    first_attempt: int = 0
    lost_attempts: int = 0
    # Environment variables from @environment, applied by the orchestrator.
    env: dict[str, str] = field(default_factory=dict)
    # @timeout of the step in seconds (Metaflow enforces it too); 0 = none.
    timeout_seconds: int = 0
    tags: tuple[str, ...] = ()
    # What to read back from the finished task.
    read_num_splits: bool = False
    read_transition: bool = False
    # the run this one resumes (Metaflow's ``--clone-run-id``: the task records it)
    origin_run_id: str | None = None


@dataclass(frozen=True)
class OriginRequest:
    """Read what a resumed run may reuse of the run ``origin_run_id``."""

    flow: FlowRef
    origin_run_id: str


@dataclass(frozen=True)
class OriginRun:
    """What a run left behind for a resume: its Parameter values (as ``init`` reads
    them) and, per step, the ids of the tasks it finished successfully."""

    parameters: dict[str, str]
    succeeded: dict[str, list[str]]


@dataclass(frozen=True)
class CloneRequest:
    """Clone ``origin_run_id/step/task_id`` into this run under the same task id
    (Metaflow's ``step --clone-only``, as its ``resume`` clones a task)."""

    flow: FlowRef
    run_id: str
    step: str
    task_id: str
    origin_run_id: str
    read_num_splits: bool = False
    read_transition: bool = False
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskResult:
    """A finished Metaflow task, as a reference."""

    step: str
    task_id: str
    # ``run_id/step/task_id``
    path: str
    # Width of the foreach this task opened (``_foreach_num_splits``).
    num_splits: int | None = None
    # The step a switch chose (``_transition[0][0]``).
    next_step: str | None = None
    attempt: int = 0


@dataclass(frozen=True)
class Undo:
    """A registered compensation: run ``handler`` to undo task ``step/task_id``."""

    handler: str
    step: str
    task_id: str
    # ``run_id/step/task_id`` of the task's first input: what the compensation reads
    # when the task never stored its own artifacts
    fallback: str


@dataclass(frozen=True)
class CompensateRequest:
    """Run one compensation as the Metaflow task ``_compensate_<step>/<task_id>``."""

    flow: FlowRef
    run_id: str
    undo: Undo
    tags: tuple[str, ...] = ()


def compact_paths(paths: Sequence[str]) -> tuple[str, ...]:
    """``StepRequest.input_paths`` for ``paths``: as they are for a few, else one string
    ``PREFIX:SUFFIX,SUFFIX,...`` (Metaflow's ``compress_list`` without zlib, which
    ``metaflow.util.decompress_list`` expands) that keeps a 10,000-way join's request
    around 60 KB. Order is kept; pathspecs never contain ``,`` or ``:``."""
    if len(paths) < COMPACT_INPUTS_FROM:
        return tuple(paths)
    low, high = min(paths), max(paths)
    size = next((i for i, (a, b) in enumerate(zip(low, high)) if a != b), len(low))
    return (paths[0][:size] + ":" + ",".join(p[size:] for p in paths),)
