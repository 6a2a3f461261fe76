"""Render a plan into Python source with the jinja2 templates in ``templates/``."""

from __future__ import annotations

import functools
import re
import textwrap
from importlib import resources
from typing import Any

import jinja2

from . import __version__
from . import model as m
from .contract import (
    COMPENSATE_WORKFLOW_SUFFIX,
    DATASTORE_ROOT_OPTION,
    METAFLOW_OPTIONS,
    LOOP_WORKFLOW_SUFFIX,
    PROGRESS_QUERY,
    RUNTIME_API,
    graph_line,
    task_queue,
)
from .options import Target
from .plan import Plan, chunk_class
from .validate import Branch, Checked, Evaluated, StepOptions

PY_TYPES = {"str": "str", "int": "int", "float": "float", "bool": "bool", "json": "Any"}


@functools.cache
def _env() -> jinja2.Environment:
    from .cache import template_cache

    folder = resources.files("mf_temporal_codegen.templates")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        bytecode_cache=template_cache(jinja2),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["py"] = _py
    env.filters["pydoc"] = _pydoc
    env.globals["unknown_node"] = _unknown_node
    return env


def _unknown_node(node: Any) -> str:
    """What a template calls for a plan node it has no branch for: a bug, loudly."""
    raise TypeError(f"templates/statements.j2 cannot render plan node {node!r}")


def _py(value: Any) -> str:
    """A Python literal for ``value`` with a stable, sorted form."""
    if isinstance(value, dict):
        items = ", ".join(
            f"{_py(k)}: {_py(v)}"
            for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))
        )
        return "{" + items + "}"
    if isinstance(value, tuple):
        inner = ", ".join(_py(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return "[" + ", ".join(_py(v) for v in value) + "]"
    return repr(value)


def _pydoc(text: str) -> str:
    """Text safe inside a triple-quoted docstring."""
    return str(text).replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


def _spec_args(options: StepOptions) -> list[tuple[str, Any]]:
    """The ``StepSpec`` keyword arguments of a step, in the order the module shows them."""
    args: list[tuple[str, Any]] = []
    if options.foreach:
        args.append(("foreach", True))
    if options.switch:
        args.append(("switch", True))
    if options.from_metaflow:
        args.append(("from_metaflow", True))
    else:
        if options.retries:
            args.append(("retries", options.retries))
        if options.error_retries:
            args.append(("error_retries", options.error_retries))
        if options.retries or options.error_retries:
            args.append(("retry_delay_seconds", options.retry_delay_seconds))
        if options.timeout_seconds is not None:
            args.append(("timeout_seconds", options.timeout_seconds))
        if options.env is not None:
            args.append(("env", options.env))
    if options.compensation is not None:
        args.append(("compensation", options.compensation))
    if options.task_queue is not None:
        args.append(("task_queue", options.task_queue))
    return args


def _reason(fact: Evaluated) -> str:
    """The comment line for a fact Metaflow evaluates."""
    return f"{fact.written} ({_where(fact.pos)}){fact.note}"


def _where(pos) -> str:
    """``file:line`` as comments cite sources (see ``errors.Pos.cited``)."""
    return f"{pos.cited}:{pos.line}"


def _sketch(plan: Plan) -> list[str]:
    lines = []
    for name in plan.graph.order:
        step = plan.graph[name].step
        if step.kind == m.SWITCH:
            cases = ", ".join(f"{k!r}: {s}" for k, s in step.switch_cases)
            lines.append(f"{name} -> switch on {step.condition}: {{{cases}}}")
        elif step.kind == m.FOREACH:
            lines.append(f"{name} -> foreach {step.foreach_var}: {step.next[0]}")
        elif step.next:
            lines.append(f"{name} -> {', '.join(step.next)}")
        else:
            lines.append(f"{name} (end)")
    return lines


RUN_START = "evaluated by Metaflow when each run starts"


def _param_view(p: m.Parameter) -> dict[str, Any]:
    """How a Parameter appears in the generated input dataclass."""
    deferred = isinstance(p.default, m.Deferred)
    # "auto": Metaflow converts the value to the evaluated default's type
    annotation = "str" if p.type == "auto" else PY_TYPES[p.type]
    required = p.required and not p.has_default and not deferred
    default = None if deferred else p.default
    if (not p.has_default or deferred) and not required:
        annotation += " | None"
    doc = p.help or f"Metaflow parameter {p.name!r}"
    if p.name != p.field:
        doc += f" (--{p.name})"
    doc = doc if doc.endswith((".", "!", "?")) else doc + "."
    if p.kind == "include_file":
        doc += (
            " IncludeFile: the path of a file, read when the run starts by Metaflow's"
            " init in the worker's working directory."
        )
    if deferred:
        doc += f" Default: {p.default.code} ({_where(p.default.pos)}), {RUN_START}."
    elif p.default_code:
        doc += f" Default: {p.default_code} = {_py(p.default)}, folded when generating ({_where(p.pos)})."
    return {
        "field": p.field,
        "annotation": annotation,
        "required": required,
        "default": default,
        "doc": doc,
    }


def deploy_time_defaults(flow: m.Flow) -> tuple[str, ...]:
    """Parameters whose defaults Metaflow evaluates up front (maybe deploy-time
    functions); Metaflow's init computes the others (values, Config expressions)."""
    return tuple(
        p.name
        for p in flow.parameters
        if isinstance(p.default, m.Deferred) and p.default.kind != m.CONFIG_EXPR
    )


def graph_lines(plan: Plan) -> list[str]:
    """The graph as the worker compares it with Metaflow's, in the flow's order."""
    return [
        graph_line(
            name,
            step.kind,
            step.next,
            step.foreach_var,
            step.condition,
        )
        for name in plan.graph.order
        for step in [plan.graph[name].step]
    ]


# Metaflow's settings every task gets explicitly (``contract.METAFLOW_OPTIONS`` and
# the datastore root), in the order the generated comment names them.
SETTINGS = ("metadata", "datastore", DATASTORE_ROOT_OPTION, *METAFLOW_OPTIONS)


def settings_comment(top_level: tuple[str, ...]) -> list[str]:
    """The lines of the comment that says which of Metaflow's settings the module
    pins (given when generating) and which every worker takes from its own Metaflow
    config, as ``python flow.py run`` does where it runs."""
    pinned, given = [], set()
    for i, arg in enumerate(top_level):
        name, eq, value = arg[2:].partition("=")
        if not arg.startswith("--") or name not in SETTINGS:
            continue
        if not eq:  # ``--name value``
            if i + 1 >= len(top_level):
                continue
            value = top_level[i + 1]
        pinned.append(f"--{name}={value}")
        given.add(name)
    rest = [s.replace("-", " ") for s in dict.fromkeys(SETTINGS) if s not in given]
    sentences = (
        "Metaflow settings pinned here (given when generating): "
        + (", ".join(pinned) if pinned else "none")
        + ".",
        "From the worker's Metaflow config (its METAFLOW_* variables, then its config "
        "files, as `python flow.py run` there): "
        + (", ".join(rest) if rest else "none")
        + "; also the service URL and storage credentials.",
    )
    return [
        line
        for text in sentences
        for line in textwrap.wrap(
            text, 86, break_long_words=False, break_on_hyphens=False
        )
    ]


def _deployment(flow: m.Flow, branch: Branch | None) -> dict[str, Any]:
    """@project and @schedule constants, and the task queue the deployment is named by."""
    project = schedule = None
    name: str | None = flow.name
    if branch is not None and flow.project is not None:
        name = branch.flow_name(flow.name)
        written = flow.project.name
        project = {
            "name": None if isinstance(written, m.Deferred) else written,
            "name_expr": written.code if isinstance(written, m.Deferred) else None,
            "branch": branch.branch,
            "where": _where(flow.project.pos),
        }
    if flow.schedule is not None:
        s = flow.schedule
        schedule = {
            "cron": s.cron,
            "timezone": s.timezone,
            "written": s.written,
            "where": _where(s.pos),
        }
    return {
        "project": project,
        "schedule": schedule,
        "triggers": _triggers(flow, branch),
        "deployment_name": name,
        "task_queue": task_queue(name) if name else None,
    }


PUBLISH = "mf-temporal-codegen publish"
SUBSCRIBED = (
    "`temporal create` and the worker keep the subscription on the Temporal server."
)


def _triggers(flow: m.Flow, branch: Branch | None) -> dict[str, Any] | None:
    """The ``TRIGGERS`` constant: what the source spells out of @trigger or
    @trigger_on_finish, and comment lines that say what starts a run."""
    t = flow.trigger
    if t is None:
        return None
    deco = "@trigger" if t.kind == m.EVENT_TRIGGER else "@trigger_on_finish"
    head = f"{deco}({t.written}) ({_where(t.pos)}):"
    events: list[dict[str, Any]] = []
    flows: list[dict[str, Any]] = []
    if t.from_metaflow:
        text = (
            f"{head} evaluated by Metaflow where the worker or `temporal create` loads "
            "the flow, which then keeps the subscription on the Temporal server. Each "
            "event starts one run (once per event id)."
        )
        if t.kind == m.EVENT_TRIGGER:
            events.append({"name": None, "parameters": {}})
        else:
            flows.append({"flow": None, "project": None, "branch": None})
    elif t.kind == m.EVENT_TRIGGER:
        mapping = (
            " Its payload sets the Parameters below (Metaflow's default for one "
            "event: each Parameter from the payload field of its name)."
            if t.default_mapping and t.parameters
            else (
                " Its payload sets the Parameters below (Parameter: payload field)."
                if t.parameters
                else ""
            )
        )
        text = (
            f"{head} each event {t.name} published (`{PUBLISH} {t.name} --payload "
            f"KEY=VALUE`) starts one run, once per event id.{mapping} {SUBSCRIBED}"
        )
        events.append({"name": t.name, "parameters": dict(t.parameters)})
    else:
        text = (
            f"{head} each run of {t.flow} that succeeds "
            f"({_upstream_event(t, flow, branch)}) starts one run, once per upstream "
            f"run; current.trigger.run is that run. {SUBSCRIBED}"
        )
        flows.append({"flow": t.flow, "project": t.project, "branch": t.branch})
    return {"comment": textwrap.wrap(text, 86), "events": events, "flows": flows}


def _upstream_event(t: m.Trigger, flow: m.Flow, branch: Branch | None) -> str:
    """The event a @trigger_on_finish waits for, as far as generation knows it."""
    if flow.project is None:
        if t.project and t.branch:
            return f"metaflow.{t.project}.{t.branch}.{t.flow}.end"
        return f"metaflow.{t.flow}.end"
    project = t.project or (
        branch.project
        if branch is not None and not isinstance(branch.project, m.Deferred)
        else None
    )
    known = t.branch or (branch.branch if branch is not None else None)
    if project and known:
        return f"metaflow.{project}.{known}.{t.flow}.end"
    return (
        f"metaflow.<project>.<branch>.{t.flow}.end on this deployment's project "
        "branch, as Metaflow resolves it"
    )


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def module_names(flow: m.Flow) -> tuple[str, str]:
    """Base names (no .py) of the workflow and worker modules of ``flow``."""
    base = snake(flow.name)
    return f"{base}_workflow", f"{base}_worker"


def render(plan: Plan, checked: Checked, target: Target) -> dict[str, str]:
    """File name -> unformatted source, for the modules of one flow."""
    flow = plan.flow
    workflow_module, worker_module = module_names(flow)
    params = [_param_view(p) for p in flow.parameters]
    params.sort(key=lambda p: (not p["required"], p["field"]))
    specs = []
    for name in plan.graph.order:
        options = checked.steps[name]
        deferred = [_reason(fact) for fact in options.evaluated]
        specs.append(
            {
                "const": plan.names.const(name),
                "name": name,
                "options": _spec_args(options),
                "deferred": deferred,
            }
        )
    context = {
        "version": __version__,
        "runtime_api": RUNTIME_API,
        "loop_workflow": flow.name + LOOP_WORKFLOW_SUFFIX,
        "compensate_workflow": flow.name + COMPENSATE_WORKFLOW_SUFFIX,
        "source": target.source,
        "source_name": target.source.rsplit("/", 1)[-1],
        "command": target.command,
        "package": target.package,
        "flow": flow,
        "plan": plan,
        "plan_flow_name": flow.name,
        "params": params,
        "uses_any": any(p["annotation"].startswith("Any") for p in params),
        "specs": specs,
        "sketch": _sketch(plan),
        "graph_lines": graph_lines(plan),
        "any_from_metaflow": any(
            ("from_metaflow", True) in spec["options"] for spec in specs
        ),
        "deploy_time_defaults": deploy_time_defaults(flow),
        "mutators": [f"@{d.name} ({_where(d.pos)})" for d in flow.mutators],
        "top_level": target.options.top_level,
        "settings_comment": settings_comment(target.options.top_level),
        "tags": target.options.tags,
        "init_options": target.init_options,
        "code_package": target.options.code_package,
        "max_workers": target.options.max_workers,
        "workflow_timeout": target.options.workflow_timeout,
        "progress_query": PROGRESS_QUERY,
        "chunk_class": lambda method: chunk_class(flow, method),
        "workflow_module": workflow_module,
        "worker_module": worker_module,
        **_deployment(flow, checked.branch),
    }
    return {
        f"{workflow_module}.py": _env().get_template("workflow.py.j2").render(context),
        f"{worker_module}.py": _env().get_template("worker.py.j2").render(context),
    }
