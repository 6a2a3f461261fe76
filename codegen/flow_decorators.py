"""``@schedule`` and ``@project``: read into the model and checked as Metaflow does
(the branch that ``--branch``/``--production`` select is validation's: ``validate``).

Metaflow checks some of this only when a flow is deployed (Argo refuses to schedule a
flow with a required Parameter that has no default; a bad cron fails at the
scheduler); here every such rule is a generation-time error with a position.
See ``metaflow/plugins/aws/step_functions/schedule_decorator.py`` and
``metaflow/plugins/project_decorator.py``.
"""

from __future__ import annotations

import re
import zoneinfo
from typing import Any

from . import cron
from . import model as m
from .errors import CodegenError, Pos

METAFLOW = "metaflow"
# Metaflow's @schedule presets (ScheduleDecorator.flow_init).
PRESETS = (
    ("weekly", "0 0 ? * SUN *"),
    ("hourly", "0 * * * ? *"),
    ("daily", "0 0 * * ? *"),
)
SCHEDULE_ATTRIBUTES = ("cron", "weekly", "daily", "hourly", "timezone")
PROJECT_ATTRIBUTES = ("name", "branch", "production")
# project_decorator.VALID_NAME_RE / VALID_NAME_LEN
INVALID_NAME = re.compile(r"[^a-z0-9_]")
MAX_NAME = 128


def schedule(
    d: m.Decorator | None, parameters: tuple[m.Parameter, ...]
) -> m.Schedule | None:
    """The flow's schedule; None without @schedule or with every preset off."""
    if d is None or d.origin != METAFLOW:
        return None
    args = _attributes(d, SCHEDULE_ATTRIBUTES, deferred=SCHEDULE_ATTRIBUTES)
    _check_required(parameters)
    written = ", ".join(f"{k}={v!r}" for k, v in d.kwargs)
    if any(isinstance(v, m.Deferred) for v in args.values()):
        # Metaflow evaluates it when the worker starts (which checks the cron then)
        return m.Schedule(None, written, None, d.pos)
    # Metaflow reads an empty cron= as none given.
    expression = args.get("cron") or None
    if expression is not None and not isinstance(expression, str):
        raise CodegenError(
            d.pos_of("cron"),
            "@schedule(cron=) must be a string",
            "write an EventBridge expression such as cron='0 12 * * ? *'",
        )
    if expression is None:
        daily = args.get("daily", True)
        expression = next(
            (
                preset
                for key, preset in PRESETS
                if (daily if key == "daily" else args.get(key))
            ),
            None,
        )
        if expression is None:
            # Metaflow (and Argo) then schedule nothing.
            return None
    else:
        try:
            cron.parse(expression)
        except cron.CronError as err:
            raise CodegenError(d.pos_of("cron"), err.message, err.hint) from None
    timezone = args.get("timezone")
    if timezone is not None:
        _check_timezone(d, timezone)
    return m.Schedule(expression, written, timezone, d.pos)


def _check_required(parameters: tuple[m.Parameter, ...]) -> None:
    for p in parameters:
        if p.required and not p.has_default:
            raise CodegenError(
                p.pos,
                f"Parameter {p.name!r} is required and has no default, so a scheduled "
                "run cannot set it",
                "give it a default (as Metaflow's Argo Workflows scheduler requires), "
                "or drop @schedule",
            )


def _check_timezone(d: m.Decorator, timezone: Any) -> None:
    known = zoneinfo.available_timezones()
    if not isinstance(timezone, str) or (known and timezone not in known):
        raise CodegenError(
            d.pos_of("timezone"),
            f"unknown time zone {timezone!r} in @schedule(timezone=)",
            "use an IANA time zone name such as 'Europe/Paris' or 'America/Los_Angeles'",
        )


def project(d: m.Decorator | None) -> m.Project | None:
    """The flow's @project, its name and decorator-given branch checked. A name only
    Metaflow can compute (``config_expr``) stays Deferred: the worker has Metaflow
    evaluate it when it starts."""
    if d is None or d.origin != METAFLOW:
        return None
    args = _attributes(d, PROJECT_ATTRIBUTES, deferred=("name",))
    name = args.get("name")
    if isinstance(name, m.Deferred):
        pass
    elif not name or not isinstance(name, str):
        raise CodegenError(
            d.pos, "@project needs a name", "write @project(name='some_name')"
        )
    else:
        check_name(d.pos_of("name"), name, "The @project name")
    branch = args.get("branch")
    if branch is not None:
        check_name(d.pos_of("branch"), str(branch), "The branch name")
    production = args.get("production")
    return m.Project(
        name,
        None if branch is None else str(branch),
        None if production is None else bool(production),
        d.pos,
    )


def _attributes(
    d: m.Decorator, known: tuple[str, ...], deferred: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The decorator's arguments; a Deferred value is accepted only for ``deferred``."""
    args = dict(d.kwargs)
    if "_args" in args:
        raise CodegenError(
            d.pos,
            f"@{d.name} takes keyword arguments only",
            f"write @{d.name}({known[0]}=...)",
        )
    for key, value in args.items():
        if key not in known:
            raise CodegenError(
                d.pos_of(key),
                f"@{d.name} does not support the attribute {key!r}",
                "supported attributes: " + ", ".join(known),
            )
        if isinstance(value, m.Deferred) and key not in deferred:
            raise CodegenError(
                d.pos_of(key),
                f"@{d.name}({key}=) must be known when generating, got `{value.code}`",
                "it decides the deployment's names and schedule, so the generated "
                "workflow needs it; use a literal or a module constant here",
            )
    return args


def check_name(pos: Pos, name: str, what: str) -> None:
    if INVALID_NAME.search(name):
        raise CodegenError(
            pos,
            f"{what} must contain only lowercase alphanumeric characters and underscores, "
            f"got {name!r}",
            "Metaflow rejects it too; e.g. "
            + repr(INVALID_NAME.sub("_", name.lower())),
        )
    if len(name) > MAX_NAME:
        raise CodegenError(
            pos, f"{what} is longer than {MAX_NAME} characters", "shorten it"
        )
