"""What generated modules and the runtime agree on, in one place.

The generator imports this module (it has no dependencies); so does the runtime, which
never imports the generator. A change here changes generated code or the way the
runtime reads it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

# The runtime API generated modules are written against; the runtime refuses a
# module that needs another one (``runtime.require_api``). Bump it whenever a change
# here or in the runtime breaks modules generated before.
RUNTIME_API = 4

# Metaflow's constants (pinned against Metaflow by tests/test_parity.py):
# attempts of one task, the first included (metaflow_config.MAX_ATTEMPTS)
MAX_ATTEMPTS = 6
# @retry() defaults: times=3, minutes_between_retries=2
RETRY_TIMES, RETRY_MINUTES = 3, 2
# @catch adds this many retries for platform errors (catch_decorator)
CATCH_ERROR_RETRIES = 3
# Tasks of one foreach running at once unless --max-workers says otherwise
# (Metaflow's `run --max-workers` default)
DEFAULT_MAX_WORKERS = 16

# Metaflow's top-level options the runtime passes to every command explicitly, as
# Metaflow's own runtime passes them to its tasks: option -> the Metaflow setting
# (metaflow_config) ``python flow.py run`` takes its default from, and Metaflow's
# default when nothing sets it. Given when generating, an option is pinned in the
# module (``FlowRef.top_level``); else the worker reads the setting from its Metaflow
# configuration (``runtime.settings``). ``--datastore-root`` is pinned too or follows
# the datastore's ``DATASTORE_SYSROOT_<TYPE>``.
METAFLOW_OPTIONS = {
    "metadata": ("DEFAULT_METADATA", "local"),
    "datastore": ("DEFAULT_DATASTORE", "local"),
    "environment": ("DEFAULT_ENVIRONMENT", "local"),
    "event-logger": ("DEFAULT_EVENT_LOGGER", "nullSidecarLogger"),
    "monitor": ("DEFAULT_MONITOR", "nullSidecarMonitor"),
}
DATASTORE_ROOT_OPTION = "datastore-root"

# Error types the step activity raises and the workflow tells apart: a task's user
# code failed (counted against @retry, retried by the workflow), a task exited 0
# without Metaflow's record that it completed, a task would exceed MAX_ATTEMPTS.
TASK_FAILED = "MetaflowTaskFailed"
TASK_NOT_RECORDED = "MetaflowTaskNotRecorded"
TOO_MANY_ATTEMPTS = "MetaflowTooManyAttempts"

# Names on Temporal: the task queue of a deployment, and the workflow types of a
# flow's loop and compensation child workflows.
TASK_QUEUE_PREFIX = "metaflow-"
LOOP_WORKFLOW_SUFFIX = ".loop"
COMPENSATE_WORKFLOW_SUFFIX = ".compensate"

# Custom search attributes of every run and of its chunk, loop and compensation
# child workflows (name -> Temporal's type). The starter (trigger, schedule) sets
# them, the workflow adds the run id (known only once it runs) and hands them all to
# its children. A namespace needs them registered once (the worker does it where it
# may, see ``runtime.visibility``).
SEARCH_ATTRIBUTE_FLOW = "MetaflowFlow"
# Metaflow's project flow name ``<project>.<branch>.<Flow>``, or the flow name
SEARCH_ATTRIBUTE_DEPLOYMENT = "MetaflowDeployment"
# ``temporal-<first workflow run id>``
SEARCH_ATTRIBUTE_RUN_ID = "MetaflowRunId"
SEARCH_ATTRIBUTE_USER = "MetaflowUser"
SEARCH_ATTRIBUTE_PROJECT = "MetaflowProject"
SEARCH_ATTRIBUTE_BRANCH = "MetaflowBranch"
SEARCH_ATTRIBUTE_TAGS = "MetaflowTags"
SEARCH_ATTRIBUTES = {
    SEARCH_ATTRIBUTE_FLOW: "Keyword",
    SEARCH_ATTRIBUTE_DEPLOYMENT: "Keyword",
    SEARCH_ATTRIBUTE_RUN_ID: "Keyword",
    SEARCH_ATTRIBUTE_USER: "Keyword",
    SEARCH_ATTRIBUTE_PROJECT: "Keyword",
    SEARCH_ATTRIBUTE_BRANCH: "Keyword",
    SEARCH_ATTRIBUTE_TAGS: "KeywordList",
}
# The query every generated workflow answers with its steps and tasks by state
# (``temporal workflow query --type progress --workflow-id ID``).
PROGRESS_QUERY = "progress"
# Metaflow task metadata that points back at the Temporal workflow running the task
# (as Argo's ``argo-workflow-name``): field -> the environment variable the step
# activity hands it to the task in. The step decorator ``temporal_internal``
# (``mf_temporal_codegen.task_metadata``, added to every step with ``--with``) and
# compensation tasks record them.
TASK_DECORATOR = "temporal_internal"
TASK_METADATA_ENV = {
    "temporal-workflow-id": "METAFLOW_TEMPORAL_WORKFLOW_ID",
    "temporal-workflow-run-id": "METAFLOW_TEMPORAL_WORKFLOW_RUN_ID",
    "temporal-workflow-type": "METAFLOW_TEMPORAL_WORKFLOW_TYPE",
    "temporal-namespace": "METAFLOW_TEMPORAL_NAMESPACE",
    "temporal-task-queue": "METAFLOW_TEMPORAL_TASK_QUEUE",
    "temporal-activity-id": "METAFLOW_TEMPORAL_ACTIVITY_ID",
    "temporal-workflow-url": "METAFLOW_TEMPORAL_WORKFLOW_URL",
}


def task_metadata(env: Mapping[str, str]) -> dict[str, str]:
    """The Temporal fields of a task's metadata found in its environment ``env``."""
    return {name: env[var] for name, var in TASK_METADATA_ENV.items() if env.get(var)}


# The ``workflow.patched`` id of the search attributes a run sets on itself: runs
# that started before it replay without them.
VISIBILITY_PATCH = "mf-temporal-visibility-1"

# Event triggers (``@trigger``/``@trigger_on_finish``): the environment variable the
# step activity hands a triggered run's event to every task in (a JSON list of
# ``{"type": "event"|"run", "payload": {...}}``, as Argo hands each pod its event
# payloads in ``METAFLOW_ARGO_EVENT_PAYLOAD_*``); ``temporal_internal`` turns it into
# ``current.trigger``. And the ``workflow.patched`` id of the announcement a run
# that succeeded makes (``@trigger_on_finish`` of other deployments): runs that
# finished before it replay without it.
TRIGGER_ENV = "METAFLOW_TEMPORAL_TRIGGER"
ANNOUNCE_PATCH = "mf-temporal-announce-finish-1"


def task_queue(deployment: str) -> str:
    """The task queue of a deployment (the flow name or Metaflow's project flow name)."""
    return TASK_QUEUE_PREFIX + deployment


def graph_line(
    name: str,
    kind: str,
    next_steps: Sequence[str],
    foreach_var: str | None = None,
    condition: str | None = None,
) -> str:
    """One step of a flow's graph as generated modules record it (``GRAPH``) and the
    worker compares it with Metaflow's graph: ``name kind -> a, b`` plus the foreach
    variable or switch condition, e.g. ``train foreach -> fold (foreach folds)``."""
    line = f"{name} {kind}"
    if next_steps:
        line += " -> " + ", ".join(next_steps)
    if foreach_var:
        line += f" (foreach {foreach_var})"
    if condition:
        line += f" (switch on {condition})"
    return line
