"""``@trigger`` and ``@trigger_on_finish``: read into the model and checked as Metaflow
does (its decorators' ``flow_init`` and its Argo integration's ``_process_triggers``).

A flow waits for one event: an event published by name (``@trigger``), or the end of
a successful run of another flow (``@trigger_on_finish``), each run starting once
per event. Metaflow on Argo starts a flow that waits for several events once every
one of them arrived; that is refused here, as are both decorators on one flow
(Argo refuses them together too). Arguments the source computes (``config_expr``, a
function) are Metaflow's to evaluate where the worker or ``temporal create`` loads
the flow: the model then holds no name, and the generated module says so.
See ``metaflow/plugins/events_decorator.py``.
"""

from __future__ import annotations

import re
from typing import Any

from . import model as m
from .errors import CodegenError, Pos

METAFLOW = "metaflow"
# Argo's rules for the names it compiles into its sensors (kept, so that a flow
# deploys on both; no event name can contain the `/` of workflow ids either)
EVENT_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
PAYLOAD_FIELD = re.compile(r"^[A-Za-z0-9_]+$")
FLOW_NAME = re.compile(r"^[A-Za-z0-9_]+$")
TRIGGER_ATTRIBUTES = ("event", "events", "options")
ON_FINISH_ATTRIBUTES = ("flow", "flows", "options")
ONE_EVENT_HINT = (
    "Metaflow on Argo starts such a flow once every one of the events arrived; here a "
    "flow waits for one event: keep one, or chain flows with @trigger_on_finish"
)


def trigger(
    on_event: m.Decorator | None,
    on_finish: m.Decorator | None,
    parameters: tuple[m.Parameter, ...],
    mutated: bool = False,
    project: m.Project | None = None,
) -> m.Trigger | None:
    """The flow's trigger (None without one). ``mutated``: a FlowMutator may add
    Parameters, so a mapped Parameter the source lacks is Metaflow's to check."""
    if on_event is not None and on_event.origin != METAFLOW:
        on_event = None
    if on_finish is not None and on_finish.origin != METAFLOW:
        on_finish = None
    if on_event is not None and on_finish is not None:
        raise CodegenError(
            on_finish.pos,
            "a flow with both @trigger and @trigger_on_finish",
            "Argo Workflows refuses them together too, and a run waits for one event "
            "here: keep one",
        )
    if on_event is not None:
        return _on_event(on_event, parameters, mutated)
    if on_finish is not None:
        return _on_finish(on_finish, project)
    return None


def written(d: m.Decorator) -> str:
    """The decorator's arguments as comments quote them (folded names cited)."""
    parts = []
    for key, value in d.kwargs:
        code = d.code_of(key)
        parts.append(f"{key}={code} = {value!r}" if code else f"{key}={value!r}")
    return ", ".join(parts)


def _deferred(value: Any) -> bool:
    """Whether ``value`` holds anything only Metaflow can compute."""
    if isinstance(value, m.Deferred):
        return True
    if isinstance(value, dict):
        return any(_deferred(k) or _deferred(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_deferred(v) for v in value)
    return False


def _attributes(d: m.Decorator, known: tuple[str, ...]) -> dict[str, Any]:
    args = dict(d.kwargs)
    if "_args" in args:
        raise CodegenError(
            d.pos,
            f"@{d.name} takes keyword arguments only",
            f"write @{d.name}({known[0]}=...)",
        )
    for key in args:
        if key not in known and key != "_kwargs":
            raise CodegenError(
                d.pos_of(key),
                f"@{d.name} does not support the attribute {key!r}",
                "supported attributes: " + ", ".join(known),
            )
    return args


def _one(d: m.Decorator, args: dict[str, Any], single: str, many: str) -> Any:
    """The one value of ``single=`` or ``many=[...]`` (a Deferred when Metaflow
    evaluates it), Metaflow's errors for both or neither."""
    if args.get(single) and args.get(many):
        raise CodegenError(
            d.pos,
            f"@{d.name} with both {single}= and {many}=",
            f"Metaflow refuses it too: specify only one of {single} or {many}",
        )
    if args.get(single):
        return args[single]
    values = args.get(many)
    if isinstance(values, m.Deferred):
        return values
    if values and not isinstance(values, (list, tuple)):
        raise CodegenError(
            d.pos_of(many),
            f"@{d.name}({many}=) must be a list, got {values!r}",
            f"write @{d.name}({many}=[...]), as Metaflow requires",
        )
    if not values:
        raise CodegenError(
            d.pos,
            f"no {single} given to @{d.name}",
            f"Metaflow refuses it too: write @{d.name}({single}=...)",
        )
    if len(values) > 1:
        raise CodegenError(
            d.pos_of(many),
            f"@{d.name}({many}=) with {len(values)} {many}: not supported yet",
            ONE_EVENT_HINT,
        )
    return values[0]


def _on_event(
    d: m.Decorator, parameters: tuple[m.Parameter, ...], mutated: bool
) -> m.Trigger:
    args = _attributes(d, TRIGGER_ATTRIBUTES)
    if "_kwargs" in args:
        return m.Trigger(m.EVENT_TRIGGER, written(d), d.pos)
    event = _one(d, args, "event", "events")
    where = d.pos_of("event" if args.get("event") else "events")
    if _deferred(event):
        return m.Trigger(m.EVENT_TRIGGER, written(d), d.pos)
    if isinstance(event, str):
        name, mapping = event, None
    elif isinstance(event, dict):
        if "name" not in event:
            raise CodegenError(
                where,
                "the event of @trigger has no 'name'",
                "write @trigger(event={'name': 'some_event', 'parameters': {...}})",
            )
        name, mapping = event["name"], event.get("parameters", {})
        if not isinstance(name, str):
            raise CodegenError(
                where,
                f"the event name of @trigger must be a string, got {name!r}",
                "write @trigger(event={'name': 'some_event', ...})",
            )
    else:
        raise CodegenError(
            where,
            "Incorrect format for event attribute in @trigger decorator: "
            f"got {event!r}",
            "supported formats are a string and a dict: @trigger(event='foo') or "
            "@trigger(event={'name': 'foo', 'parameters': {'alpha': 'beta'}})",
        )
    if not EVENT_NAME.match(name):
        raise CodegenError(
            where,
            f"invalid event name {name!r} in @trigger",
            "only alphanumeric characters, underscores, dashes and dots (as Argo "
            "Workflows requires)",
        )
    pairs = _mapping(where, name, mapping or {})
    known = {p.name.lower(): p.name for p in parameters}
    seen: set[str] = set()
    resolved = []
    for param, key in pairs:
        if not PAYLOAD_FIELD.match(key):
            raise CodegenError(
                where,
                f"invalid payload field {key!r} for event {name!r} in @trigger",
                "only alphanumeric characters and underscores (as Argo Workflows "
                "requires)",
            )
        if param.lower() not in known and not mutated:
            raise CodegenError(
                where,
                f"Parameter {param!r} in the event mapping of @trigger is not a "
                "Parameter of the flow",
                "known Parameters: " + (", ".join(sorted(known.values())) or "none"),
            )
        if param.lower() in seen:
            raise CodegenError(
                where,
                f"Parameter {param!r} is mapped twice in @trigger",
                "map each Parameter from one payload field",
            )
        seen.add(param.lower())
        resolved.append((known.get(param.lower(), param), key))
    default = not resolved
    if default:
        # Metaflow's default for a single event: every Parameter from its name
        resolved = [(p.name, p.name.lower()) for p in parameters]
    return m.Trigger(
        m.EVENT_TRIGGER,
        written(d),
        d.pos,
        name=name,
        parameters=tuple(sorted(resolved)),
        default_mapping=default,
    )


def _mapping(where: Pos, name: str, mapping: Any) -> list[tuple[str, str]]:
    """``parameters=`` of an event as (Parameter, payload field) pairs: a dict, or a
    list of names and (Parameter, field) pairs (Metaflow's ``process_parameters``)."""
    hint = (
        "write parameters={'param': 'payload_field'} or "
        "parameters=['param', ('param', 'payload_field')]"
    )
    pairs = []
    if isinstance(mapping, dict):
        items = list(mapping.items())
    elif isinstance(mapping, list):
        items = []
        for item in mapping:
            if isinstance(item, str):
                items.append((item, item))
            elif isinstance(item, tuple) and len(item) == 2:
                items.append(item)
            else:
                raise CodegenError(
                    where,
                    f"the parameters of event {name!r} in @trigger are invalid: "
                    f"{item!r}",
                    hint,
                )
    else:
        raise CodegenError(
            where,
            f"the parameters of event {name!r} in @trigger must be a dict or a list, "
            f"got {mapping!r}",
            hint,
        )
    for param, key in items:
        if not isinstance(param, str) or not isinstance(key, str):
            raise CodegenError(
                where,
                f"the parameters of event {name!r} in @trigger are invalid: "
                f"{param!r}: {key!r}",
                hint,
            )
        pairs.append((param, key))
    return pairs


def _on_finish(d: m.Decorator, project: m.Project | None) -> m.Trigger:
    args = _attributes(d, ON_FINISH_ATTRIBUTES)
    if "_kwargs" in args:
        return m.Trigger(m.RUN_TRIGGER, written(d), d.pos)
    upstream = _one(d, args, "flow", "flows")
    where = d.pos_of("flow" if args.get("flow") else "flows")
    if _deferred(upstream):
        return m.Trigger(m.RUN_TRIGGER, written(d), d.pos)
    usage = (
        "write @trigger_on_finish(flow='FooFlow'), flow='project.branch.FooFlow' or "
        "flow={'name': 'FooFlow', 'project': 'p', 'project_branch': 'b'}"
    )
    up_project = up_branch = None
    if isinstance(upstream, str):
        dots = upstream.count(".")
        if dots == 1:
            raise CodegenError(
                where,
                f"invalid flow {upstream!r} in @trigger_on_finish",
                "give the flow name or the fully qualified "
                "project_name.branch_name.FlowName",
            )
        flow = upstream
        if dots >= 2:
            up_project, tail = upstream.split(".", 1)
            up_branch, flow = tail.rsplit(".", 1)
    elif isinstance(upstream, dict):
        named = upstream.get("name")
        if not isinstance(named, str) or "." in named:
            raise CodegenError(
                where,
                f"the flow of @trigger_on_finish needs a 'name' without dots, got "
                f"{named!r}",
                usage,
            )
        flow = named
        up_project, up_branch = upstream.get("project"), upstream.get("project_branch")
        for key, value in (("project", up_project), ("project_branch", up_branch)):
            if value is not None and not isinstance(value, str):
                raise CodegenError(
                    where,
                    f"the {key} of flow {flow} in @trigger_on_finish must be a "
                    f"string, got {value!r}",
                    usage,
                )
    else:
        raise CodegenError(
            where,
            f"Incorrect type for flow attribute in @trigger_on_finish: {upstream!r}",
            usage,
        )
    if not FLOW_NAME.match(flow):
        raise CodegenError(
            where,
            f"invalid flow name {flow!r} in @trigger_on_finish",
            "only alphanumeric characters and underscores are allowed",
        )
    if project is None and bool(up_project) != bool(up_branch):
        raise CodegenError(
            where,
            "incomplete project info in @trigger_on_finish",
            "give both 'project' and 'project_branch' (the flow has no @project to "
            "take the other from), as Metaflow's Argo Workflows requires",
        )
    return m.Trigger(
        m.RUN_TRIGGER,
        written(d),
        d.pos,
        flow=flow,
        project=up_project or None,
        branch=up_branch or None,
    )
