"""Runtime support imported by generated workflow modules (runtime API version 1).

This package root is what workflow code sees: it imports only Temporal's workflow
API, never Metaflow. The activities (which run Metaflow) live in ``.activities``
and are registered by the worker (``.worker``).
"""

from .deployment import Project, Schedule
from .orchestration import (
    Chunk,
    ChunkResult,
    Loop,
    LoopResult,
    Run,
    RunInfo,
    RunOptions,
    RunResult,
    StepFailed,
    StepSpec,
    Task,
    Unwind,
    execute,
    run_chunk,
    run_compensations,
    run_loop,
    task_id,
    unknown_branch,
)
from .payloads import (
    CompensateRequest,
    ConfigRef,
    FlowRef,
    InitRequest,
    StepRequest,
    TaskResult,
    Undo,
)

RUNTIME_API = 2

__all__ = [
    "Chunk",
    "ChunkResult",
    "CompensateRequest",
    "ConfigRef",
    "FlowRef",
    "InitRequest",
    "Loop",
    "LoopResult",
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
    "Undo",
    "Unwind",
    "execute",
    "run_chunk",
    "run_compensations",
    "run_loop",
    "task_id",
    "unknown_branch",
]
