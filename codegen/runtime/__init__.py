"""Runtime support imported by generated workflow modules (runtime API version 1).

This package root is what workflow code sees: it imports only Temporal's workflow
API, never Metaflow. The activities (which run Metaflow) live in ``.activities``
and are registered by the worker (``.worker``).
"""

from .deployment import Project, Schedule
from .orchestration import (
    Chunk,
    Run,
    RunInfo,
    RunOptions,
    RunResult,
    StepFailed,
    StepSpec,
    Task,
    execute,
    run_chunk,
    task_id,
    unknown_branch,
)
from .payloads import FlowRef, InitRequest, StepRequest, TaskResult

RUNTIME_API = 1

__all__ = [
    "Chunk",
    "FlowRef",
    "InitRequest",
    "Project",
    "Run",
    "RunInfo",
    "RunOptions",
    "RunResult",
    "Schedule",
    "StepFailed",
    "StepRequest",
    "StepSpec",
    "Task",
    "TaskResult",
    "execute",
    "run_chunk",
    "task_id",
    "unknown_branch",
]
