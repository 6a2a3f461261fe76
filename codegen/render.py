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
from .parse import SourceExpr
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
    max_workers: int = 16


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


# Metaflow's defaults: @retry(times=3, minutes_between_retries=2); @catch adds 3
# retries for platform errors (its fallback task runs in the last ones).
RETRY_TIMES, RETRY_MINUTES, CATCH_ERROR_RETRIES = 3, 2, 3
MAX_ATTEMPTS = 6


def _with_specs(top_level: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """Decorators given with ``--with name:key=value,...`` at generation time."""
    specs = {}
    for option in top_level:
        if option.startswith("--with="):
            name, _, attrs = option[len("--with=") :].partition(":")
            pairs = (a.partition("=") for a in attrs.split(",") if a)
            specs[name] = {k.strip(): v.strip() for k, _, v in pairs}
    return specs


def _number(deco: m.Decorator, key: str, default: float) -> float:
    value = deco.arg(key, default)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise CodegenError(
            deco.pos,
            f"@{deco.name}({key}=...) must be a number literal, got `{value!r}`",
            "the workflow sets Temporal's retry policy and timeouts from it when "
            "generating, so it must be known statically",
        ) from None


def _decorator_or_with(step: m.Step, name: str, withs) -> m.Decorator | None:
    """The step's own Metaflow decorator ``name``, else the one ``--with`` adds."""
    deco = step.decorator(name)
    if deco is not None and deco.origin == "metaflow":
        return deco
    if name in withs:
        return m.Decorator(name, "metaflow", tuple(sorted(withs[name].items())), step.pos)
    return None


def _step_options(step: m.Step, flow: m.Flow, withs) -> list[tuple[str, Any]]:
    options: list[tuple[str, Any]] = []
    if step.kind == m.FOREACH:
        options.append(("foreach", True))
    if step.kind == m.SWITCH:
        options.append(("switch", True))
    retry = _decorator_or_with(step, "retry", withs)
    catch = _decorator_or_with(step, "catch", withs)
    retries = int(_number(retry, "times", RETRY_TIMES)) if retry else 0
    if retries + 2 > MAX_ATTEMPTS:
        raise CodegenError(
            retry.pos,
            f"@retry(times={retries}) asks for more attempts than Metaflow allows",
            f"the maximum number of retries is @retry(times={MAX_ATTEMPTS - 2}) "
            f"(Metaflow's MAX_ATTEMPTS is {MAX_ATTEMPTS})",
        )
    error_retries = CATCH_ERROR_RETRIES if catch else 0
    if retries:
        options.append(("retries", retries))
    if error_retries:
        options.append(("error_retries", error_retries))
    if retries or error_retries:
        minutes = _number(retry, "minutes_between_retries", RETRY_MINUTES) if retry else RETRY_MINUTES
        options.append(("retry_delay_seconds", int(minutes * 60)))
    timeout = _decorator_or_with(step, "timeout", withs)
    if timeout is not None:
        seconds = sum(
            int(_number(timeout, unit, 0)) * factor
            for unit, factor in (("seconds", 1), ("minutes", 60), ("hours", 3600))
        )
        options.append(("timeout_seconds", seconds))
    environment = step.decorator("environment")
    if environment is not None and environment.origin == "metaflow":
        env = environment.arg("vars", {}) or {}
        if not isinstance(env, dict) or any(isinstance(v, SourceExpr) for v in env.values()):
            raise CodegenError(
                environment.pos,
                "@environment(vars=...) must be a literal dict of literal values",
                "the orchestrator sets these variables, so it must know them when "
                "generating; config_expr values are not supported here yet",
            )
        options.append(("env", {str(k): str(v) for k, v in env.items()}))
    compensation = flow.compensation(step.name)
    if compensation is not None:
        options.append(("compensation", compensation.handler))
    return options


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


def _param_view(p: m.Parameter) -> dict[str, Any]:
    annotation = PY_TYPES[p.type]
    required = p.required and not p.has_default
    if not p.has_default and not p.required:
        annotation += " | None"
    doc = p.help or f"Metaflow parameter {p.name!r}."
    if p.name != p.field:
        doc += f" (--{p.name})"
    return {"field": p.field, "annotation": annotation, "required": required, "default": p.default, "doc": doc}


def _deployment(flow: m.Flow, target: Target) -> dict[str, Any]:
    """@project and @schedule constants, and the task queue the deployment is named by."""
    branch = flow_decorators.branch(flow, target.top_level)
    project = schedule = None
    name = flow.name
    if branch is not None:
        name = branch.flow_name(flow.name)
        project = {"name": branch.project, "branch": branch.branch, "line": flow.project.pos.line}
    if flow.schedule is not None:
        s = flow.schedule
        schedule = {"cron": s.cron, "timezone": s.timezone, "written": s.written, "line": s.pos.line}
    return {
        "project": project,
        "schedule": schedule,
        "deployment_name": name,
        "task_queue": f"metaflow-{name}" if name else None,
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
    specs = [
        {
            "const": const(name),
            "name": name,
            "options": _step_options(plan.graph[name].step, flow, withs),
        }
        for name in plan.graph.order
    ]
    context = {
        "version": __version__,
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
