"""What a generated module says about its deployment (``@project``, ``@schedule``) and
the names the worker and trigger derive from it.

The dataclasses are module constants of generated workflow modules (no side effects,
safe in the workflow sandbox). :func:`resolve` runs in the worker and trigger only: the
user branch of a ``@project`` flow depends on who runs the worker, so it is resolved
there, never when the workflow module is imported.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any, cast

from ..contract import task_queue

# The user tasks run as when none is set (activities.DEFAULT_USER).
DEFAULT_OWNER = "temporal"


@dataclass(frozen=True)
class Project:
    """``@project(name=...)`` and the branch fixed at generation time.

    ``branch`` is Metaflow's branch name (``test.x``, ``prod``, ``prod.x``) or None for
    the user branch ``user.<owner>``.
    """

    # None: Metaflow evaluates it (``@project(name=config_expr(...))``) when the
    # worker or the trigger starts
    name: str | None
    branch: str | None = None


@dataclass(frozen=True)
class Schedule:
    """``@schedule``: Metaflow's cron expression (EventBridge syntax) and time zone.

    ``cron`` None: Metaflow evaluates the decorator when the worker starts."""

    cron: str | None
    timezone: str | None = None


@dataclass(frozen=True)
class Deployment:
    """The names one deployment of a flow uses on Temporal."""

    # Metaflow's project flow name (``<project>.<branch>.<Flow>``) or the flow name
    name: str
    task_queue: str
    # the project branch, None without @project
    branch: str | None = None
    # for a user branch: the owner, given to every task as METAFLOW_OWNER
    owner: str | None = None
    # the @project name, None without @project
    project: str | None = None

    @property
    def schedule_id(self) -> str:
        return self.name

    def new_workflow_id(self) -> str:
        return f"{self.name}-{uuid.uuid4().hex[:12]}"


def resolve(
    module: ModuleType,
    env: Mapping[str, str] | None = None,
    project_name: str | None = None,
) -> Deployment:
    """The deployment of a generated module for the user in ``env`` (default: ours);
    ``project_name`` is the @project name Metaflow evaluated, for a module that
    leaves it to Metaflow (:func:`needs_metaflow`)."""
    env = os.environ if env is None else env
    flow = module.FLOW.name
    project: Project | None = getattr(module, "PROJECT", None)
    if project is None:
        return Deployment(flow, module.TASK_QUEUE)
    owner = None
    branch = project.branch
    if branch is None:
        owner = project_owner(env)
        branch = f"user.{owner}"
    named = project.name or project_name
    name = f"{named}.{branch}.{flow}"
    return Deployment(name, module.TASK_QUEUE or task_queue(name), branch, owner, named)


def needs_metaflow(module: ModuleType) -> bool:
    """Whether only Metaflow can name the deployment (a computed @project name)."""
    project: Project | None = getattr(module, "PROJECT", None)
    return project is not None and project.name is None


def project_owner(env: Mapping[str, str]) -> str:
    """The owner of a user branch as Metaflow finds it: METAFLOW_OWNER, else the user
    (``metaflow.util.get_username`` order), else the user tasks run as."""
    if env.get("METAFLOW_OWNER"):
        return env["METAFLOW_OWNER"]
    return metaflow_user(env) or DEFAULT_OWNER


def metaflow_user(env: Mapping[str, str] | None = None) -> str | None:
    """The user as Metaflow names it (``metaflow.util.get_username``: METAFLOW_USER,
    from the environment or Metaflow's config, then SUDO_USER, USERNAME, USER; never
    root), None when there is none."""
    env = os.environ if env is None else env
    from metaflow import metaflow_config_funcs

    configured = env.get("METAFLOW_USER") or next(
        (
            config["METAFLOW_USER"]
            # Metaflow declares both `= None` and fills them in later (dicts)
            for config in cast(
                "tuple[dict[str, Any] | None, ...]",
                (
                    metaflow_config_funcs.METAFLOW_LOCAL_CONFIG,
                    metaflow_config_funcs.METAFLOW_CONFIG,
                ),
            )
            if config and config.get("METAFLOW_USER")
        ),
        None,
    )
    for user in (
        configured,
        env.get("SUDO_USER"),
        env.get("USERNAME"),
        env.get("USER"),
    ):
        if user and user != "root":
            return user
    return None
