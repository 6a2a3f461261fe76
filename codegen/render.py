"""Render a plan into Python source with the jinja2 templates in ``templates/``."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jinja2

from . import __version__
from . import flow_decorators
from . import model as m
from .errors import CodegenError
from .contract import (
    CATCH_ERROR_RETRIES,
    COMPENSATE_WORKFLOW_SUFFIX,
    DEFAULT_MAX_WORKERS,
    LOOP_WORKFLOW_SUFFIX,
    MAX_ATTEMPTS,
    RETRY_MINUTES,
    RETRY_TIMES,
    RUNTIME_API,
    graph_line,
    task_queue,
)
from .plan import Plan, chunk_class, const, var

PY_TYPES = {"str": "str", "int": "int", "float": "float", "bool": "bool", "json": "Any"}


@dataclass(frozen=True)
class Target:
    """Where and how a module is generated (everything that reaches the header)."""

    # flow file relative to the output directory, with forward slashes
    source: str
    # the exact command that regenerates the output
    command: str
    # dotted package of the output directory ("" when unknown)
    package: str
    top_level: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    # top-level options for Metaflow's init only (--config, --config-value)
    init_options: tuple[str, ...] = ()
    max_workers: int = DEFAULT_MAX_WORKERS


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
    env.filters["var"] = var
    env.filters["pydoc"] = _pydoc
    return env



def _py(value: Any) -> str:
    """A Python literal for ``value`` with a stable, sorted form."""
    if isinstance(value, dict):
        items = ", ".join(f"{_py(k)}: {_py(v)}" for k, v in sorted(value.items(), key=lambda kv: str(kv[0])))
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




def _with_specs(top_level: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """Decorators given with ``--with name:key=value,...`` at generation time."""
    specs = {}
    for option in top_level:
        if option.startswith("--with="):
            name, _, attrs = option[len("--with=") :].partition(":")
            pairs = (a.partition("=") for a in attrs.split(",") if a)
            specs[name] = {k.strip(): v.strip() for k, _, v in pairs}
    return specs


def _number(deco: m.Decorator, key: str, default: float) -> float | m.Deferred:
    """A number argument of a Metaflow decorator; Deferred when only Metaflow knows it."""
    value = deco.arg(key, default)
    if isinstance(value, m.Deferred):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        raise CodegenError(
            deco.pos_of(key),
            f"@{deco.name}({key}=...) must be a number, got `{value!r}`",
            "Metaflow rejects it too; give a number (or a config_expr)",
        ) from None


def _decorator_or_with(step: m.Step, name: str, withs) -> m.Decorator | None:
    """The step's own Metaflow decorator ``name``, else the one ``--with`` adds."""
    deco = step.decorator(name)
    if deco is not None and deco.origin == "metaflow":
        return deco
    if name in withs:
        return m.Decorator(name, "metaflow", tuple(sorted(withs[name].items())), step.pos)
    return None


def _written(deco: m.Decorator, key: str) -> str:
    """``@name(key=<source>)``, for comments about a value Metaflow evaluates."""
    value = deco.arg(key)
    code = value.code if isinstance(value, m.Deferred) else deco.code_of(key) or repr(value)
    return f"@{deco.name}({key}={code})"


def mutators(flow: m.Flow) -> list[m.Decorator]:
    """Flow decorators that are not Metaflow's: FlowMutators (or user flow
    decorators) that may change any step's decorators when Metaflow loads the flow."""
    return [d for d in flow.decorators if d.mutator]


def _step_options(step: m.Step, flow: m.Flow, withs) -> tuple[list[tuple[str, Any]], list[str]]:
    """The StepSpec keyword arguments of ``step`` and, when its orchestration facts
    come from Metaflow, the reasons (one comment line each)."""
    options: list[tuple[str, Any]] = []
    deferred: list[str] = []
    if step.kind == m.FOREACH:
        options.append(("foreach", True))
    if step.kind == m.SWITCH:
        options.append(("switch", True))
    facts: list[tuple[str, Any]] = []
    retry = _decorator_or_with(step, "retry", withs)
    catch = _decorator_or_with(step, "catch", withs)
    retries: float | m.Deferred = _number(retry, "times", RETRY_TIMES) if retry else 0
    minutes: float | m.Deferred = (
        _number(retry, "minutes_between_retries", RETRY_MINUTES) if retry else RETRY_MINUTES
    )
    for key, value in (("times", retries), ("minutes_between_retries", minutes)):
        if isinstance(value, m.Deferred):
            deferred.append(f"{_written(retry, key)} ({_where(value.pos)})")
    if not isinstance(retries, m.Deferred) and retries + 2 > MAX_ATTEMPTS:
        raise CodegenError(
            retry.pos,
            f"@retry(times={int(retries)}) asks for more attempts than Metaflow allows",
            f"the maximum number of retries is @retry(times={MAX_ATTEMPTS - 2}) "
            f"(Metaflow's MAX_ATTEMPTS is {MAX_ATTEMPTS})",
        )
    error_retries = CATCH_ERROR_RETRIES if catch else 0
    if not deferred:
        if retries:
            facts.append(("retries", int(retries)))
        if error_retries:
            facts.append(("error_retries", error_retries))
        if retries or error_retries:
            facts.append(("retry_delay_seconds", int(minutes * 60)))
    timeout = _decorator_or_with(step, "timeout", withs)
    if timeout is not None:
        seconds = 0
        for unit, factor in (("seconds", 1), ("minutes", 60), ("hours", 3600)):
            value = _number(timeout, unit, 0)
            if isinstance(value, m.Deferred):
                deferred.append(f"{_written(timeout, unit)} ({_where(value.pos)})")
            else:
                seconds += int(value) * factor
        facts.append(("timeout_seconds", seconds))
    environment = step.decorator("environment")
    if environment is not None and environment.origin == "metaflow":
        env = environment.arg("vars", {}) or {}
        if isinstance(env, m.Deferred) or not isinstance(env, dict) or any(
            isinstance(v, m.Deferred) for v in env.values()
        ):
            where = _where(environment.pos_of("vars"))
            deferred.append(f"{_written(environment, 'vars')} ({where})")
        else:
            facts.append(("env", {str(k): str(v) for k, v in env.items()}))
    own = [d for d in step.decorators if d.mutator]
    if own:
        names = ", ".join(f"@{d.name}" for d in own)
        deferred.append(f"{names} ({_where(own[0].pos)}) may change its decorators (a StepMutator)")
    # Facts Metaflow evaluates are all taken from Metaflow, when each run starts (a
    # FlowMutator may change any step's: the module says so once, at the top).
    options += [("from_metaflow", True)] if deferred or mutators(flow) else facts
    compensation = flow.compensation(step.name)
    if compensation is not None:
        options.append(("compensation", compensation.handler))
    return options, deferred


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
    return {"field": p.field, "annotation": annotation, "required": required, "default": default, "doc": doc}


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


def _deployment(flow: m.Flow, target: Target) -> dict[str, Any]:
    """@project and @schedule constants, and the task queue the deployment is named by."""
    branch = flow_decorators.branch(flow, target.top_level)
    project = schedule = None
    name = flow.name
    if branch is not None:
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
        schedule = {"cron": s.cron, "timezone": s.timezone, "written": s.written, "where": _where(s.pos)}
    return {
        "project": project,
        "schedule": schedule,
        "deployment_name": name,
        "task_queue": task_queue(name) if name else None,
    }


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def module_names(flow: m.Flow) -> tuple[str, str]:
    """Base names (no .py) of the workflow and worker modules of ``flow``."""
    base = snake(flow.name)
    return f"{base}_workflow", f"{base}_worker"


def render(plan: Plan, target: Target) -> dict[str, str]:
    """File name -> unformatted source, for the modules of one flow."""
    flow = plan.flow
    workflow_module, worker_module = module_names(flow)
    params = [_param_view(p) for p in flow.parameters]
    params.sort(key=lambda p: (not p["required"], p["field"]))
    withs = _with_specs(target.top_level)
    specs = []
    for name in plan.graph.order:
        options, deferred = _step_options(plan.graph[name].step, flow, withs)
        specs.append({"const": const(name), "name": name, "options": options, "deferred": deferred})
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
        "any_from_metaflow": any(("from_metaflow", True) in spec["options"] for spec in specs),
        "deploy_time_defaults": deploy_time_defaults(flow),
        "mutators": [f"@{d.name} ({_where(d.pos)})" for d in mutators(flow)],
        "top_level": target.top_level,
        "tags": target.tags,
        "init_options": target.init_options,
        "max_workers": target.max_workers,
        "chunk_class": lambda method: chunk_class(flow, method),
        "workflow_module": workflow_module,
        "worker_module": worker_module,
        **_deployment(flow, target),
    }
    return {
        f"{workflow_module}.py": _env().get_template("workflow.py.j2").render(context),
        f"{worker_module}.py": _env().get_template("worker.py.j2").render(context),
    }
