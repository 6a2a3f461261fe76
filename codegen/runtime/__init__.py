"""Runtime support imported by generated workflow modules (``RUNTIME_API``).

This package root is what workflow code sees: it imports only Temporal's workflow
API, never Metaflow. The activities (which run Metaflow) live in ``.activities``
and are registered by the worker (``.worker``).
"""

from ..contract import RUNTIME_API
from .deployment import Project, Schedule
from .orchestration import execute, run_chunk, run_loop
from .progress import ForeachProgress, Progress, StepProgress, TaskProgress, Tracker
from .scope import Run
from .specs import (
    Chunk,
    ChunkResult,
    Loop,
    LoopResult,
    RunInfo,
    RunOptions,
    RunResult,
    StepFailed,
    StepSpec,
    Task,
    Unwind,
    task_id,
    unknown_branch,
)
from .triggers import EventTrigger, FlowTrigger, TriggerInfo, Triggers
from .unwind import run_compensations
from .payloads import (
    CompensateRequest,
    ConfigRef,
    DefaultsRequest,
    FactsRequest,
    FlowRef,
    StepFacts,
    InitRequest,
    StepRequest,
    TaskResult,
    Undo,
)


class RuntimeMismatch(ImportError):
    """A generated module needs another runtime API than the installed one."""


def require_api(needed: int) -> None:
    """Refuse, at import, a generated module written for another runtime API."""
    if needed != RUNTIME_API:
        raise RuntimeMismatch(
            f"this module was generated for runtime API {needed}, the installed "
            f"mf-temporal-codegen provides {RUNTIME_API}: regenerate it with the "
            "installed version (its REGENERATE command), or install the version "
            "that generated it"
        )


__all__ = [
    "RUNTIME_API",
    "RuntimeMismatch",
    "require_api",
    "Chunk",
    "ChunkResult",
    "CompensateRequest",
    "ConfigRef",
    "DefaultsRequest",
    "EventTrigger",
    "FactsRequest",
    "FlowRef",
    "FlowTrigger",
    "ForeachProgress",
    "InitRequest",
    "Loop",
    "LoopResult",
    "Progress",
    "Project",
    "Run",
    "RunInfo",
    "RunOptions",
    "RunResult",
    "Schedule",
    "StepFacts",
    "StepFailed",
    "StepProgress",
    "StepRequest",
    "StepSpec",
    "Task",
    "TaskProgress",
    "TaskResult",
    "Tracker",
    "TriggerInfo",
    "Triggers",
    "Undo",
    "Unwind",
    "execute",
    "run_chunk",
    "run_compensations",
    "run_loop",
    "task_id",
    "unknown_branch",
]
