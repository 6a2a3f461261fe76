"""What generated modules and the runtime agree on, in one place.

The generator imports this module (it has no dependencies); so does the runtime, which
never imports the generator. A change here changes generated code or the way the
runtime reads it.
"""

from __future__ import annotations

from collections.abc import Sequence

# The runtime API generated modules are written against; the runtime refuses a
# module that needs another one (``runtime.require_api``). Bump it whenever a change
# here or in the runtime breaks modules generated before.
RUNTIME_API = 3

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
