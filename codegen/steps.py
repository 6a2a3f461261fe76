"""``@step`` methods: their transitions (``self.next(...)``), the start and end
steps, and Metaflow's node type for each (as ``metaflow/graph.py`` reads them)."""

from __future__ import annotations

import ast
from dataclasses import replace
from typing import Any

import libcst as cst

from . import model as m
from .decorators import (
    UNSUPPORTED_HINTS,
    check_supported,
    is_compensate,
    read_decorator,
)
from .errors import CodegenError, Collector, Pos
from .fold import Scope, static
from .sources import Source, callee, docstring, dotted, is_metaflow


def read_step(scope: Scope, fn: cst.FunctionDef, errors: Collector) -> m.Step | None:
    """The step ``fn`` defines, or None; errors in its decorators are recorded in
    ``errors`` (the decorator is skipped), others (its transition) raised."""
    source = scope.source
    step_deco = None
    others = []
    for deco in fn.decorators:
        if is_metaflow(source, callee(deco), "step"):
            step_deco = deco
        else:
            others.append(deco)
    if step_deco is None:
        return None
    kept = []
    for deco in others:
        if is_compensate(source, deco):
            errors.add(
                CodegenError(
                    source.pos(deco),
                    f"step {fn.name.value} cannot also be a compensation",
                    "put the undo logic in a separate method without @step",
                )
            )
        else:
            kept.append(deco)
    flags = {}
    if isinstance(step_deco.decorator, cst.Call):
        for arg in step_deco.decorator.args:
            if arg.keyword and arg.keyword.value in ("start", "end"):
                flags[arg.keyword.value] = bool(
                    static(scope, arg.value, f"@step({arg.keyword.value}=)")
                )
    decorators = []
    for deco in kept:
        with errors.guard():
            d = read_decorator(scope, deco)
            check_supported(d, "decorator")
            decorators.append(d)
    name = fn.name.value
    num_args = len(fn.params.posonly_params) + len(fn.params.params)
    transition = _transition(source, fn)
    return m.Step(
        name=name,
        kind="",
        next=transition.get("next", ()),
        num_args=num_args,
        decorators=tuple(decorators),
        doc=docstring(fn),
        pos=source.pos(fn.name),
        next_pos=transition.get("pos"),
        foreach_var=transition.get("foreach"),
        condition=transition.get("condition"),
        switch_cases=transition.get("cases", ()),
        is_start=flags.get("start", False),
        is_end=flags.get("end", False),
    )


_FORMS = (
    "use self.next(self.a), self.next(self.a, self.b), "
    "self.next(self.a, foreach='items') or "
    "self.next({'x': self.a, 'y': self.b}, condition='attr')"
)


def _tail_call(fn: cst.FunctionDef) -> cst.Call | None:
    body = fn.body.body
    if not body or not isinstance(body[-1], cst.SimpleStatementLine):
        return None
    last = body[-1].body[-1]
    if not isinstance(last, cst.Expr) or not isinstance(last.value, cst.Call):
        return None
    if dotted(last.value.func) != "self.next":
        return None
    return last.value


def _self_step(source: Source, expr: cst.BaseExpression) -> str:
    name = dotted(expr)
    if name and name.startswith("self.") and name.count(".") == 1:
        return name.split(".")[1]
    raise CodegenError(
        source.pos(expr),
        f"dynamic transition `{source.code(expr)}` in self.next()",
        "name the next step statically as self.<step>; " + _FORMS,
    )


def _transition(source: Source, fn: cst.FunctionDef) -> dict[str, Any]:
    call = _tail_call(fn)
    if call is None:
        return {}
    pos = source.pos(call)
    positional = [a for a in call.args if a.keyword is None and not a.star]
    keyword = {a.keyword.value: a.value for a in call.args if a.keyword}
    starred = [a for a in call.args if a.star]
    if starred:
        raise CodegenError(
            source.pos(starred[0]),
            f"starred argument `{source.code(starred[0]).strip(', ')}` in self.next() "
            "is dynamic",
            "name every next step statically; " + _FORMS,
        )
    if "num_parallel" in keyword:
        raise CodegenError(
            source.pos(keyword["num_parallel"]),
            "self.next(..., num_parallel=N) (@parallel) is not supported yet",
            UNSUPPORTED_HINTS["parallel"],
        )
    if positional and isinstance(positional[0].value, cst.Dict):
        return _switch(source, pos, positional[0].value, len(positional), keyword)
    unknown = sorted(set(keyword) - {"foreach"})
    if unknown:
        raise CodegenError(
            source.pos(keyword[unknown[0]]),
            f"unknown self.next() argument `{unknown[0]}=`",
            _FORMS,
        )
    if not positional:
        raise CodegenError(pos, "self.next() names no step", _FORMS)
    targets = tuple(_self_step(source, a.value) for a in positional)
    result: dict[str, Any] = {"next": targets, "pos": pos}
    if "foreach" in keyword:
        expr = keyword["foreach"]
        if not isinstance(expr, cst.SimpleString):
            raise CodegenError(
                source.pos(expr),
                f"foreach variable must be a string literal naming an artifact, "
                f"got `{source.code(expr)}`",
                "write self.next(self.step, foreach='items') with items set on self",
            )
        if len(targets) != 1:
            raise CodegenError(pos, "a foreach must name exactly one step", _FORMS)
        result["foreach"] = expr.evaluated_value
    return result


def _switch(
    source: Source,
    pos: Pos,
    table: cst.Dict,
    positional: int,
    keyword: dict[str, cst.BaseExpression],
) -> dict[str, Any]:
    """The transition of ``self.next({...}, condition=...)``: ``table`` is the first of
    ``positional`` arguments."""
    if "condition" not in keyword:
        raise CodegenError(
            pos,
            "self.next() with a dict of cases (a switch) needs condition='attr'",
            "name the artifact whose value picks the case: "
            "self.next({'x': self.a, 'y': self.b}, condition='attr')",
        )
    if positional != 1:
        raise CodegenError(pos, "a switch takes exactly one dict of cases", _FORMS)
    cond = keyword["condition"]
    if not isinstance(cond, cst.SimpleString):
        raise CodegenError(
            source.pos(cond),
            f"switch condition must be a string literal, got `{source.code(cond)}`",
            "write condition='attr' naming an artifact set on self",
        )
    cases = []
    for element in table.elements:
        if not isinstance(element, cst.DictElement):
            raise CodegenError(source.pos(element), "dynamic switch cases", _FORMS)
        cases.append(
            (_case_key(source, element.key), _self_step(source, element.value))
        )
    return {
        "next": tuple(step for _, step in cases),
        "pos": pos,
        "condition": cond.evaluated_value,
        "cases": tuple(cases),
    }


def _case_key(source: Source, key: cst.BaseExpression) -> str:
    # Metaflow's graph reads the keys from the source too and accepts only these
    # (a module constant is rejected by Metaflow as well), so nothing is folded here.
    name = dotted(key)
    if name and name.startswith("self.") and name.count(".") == 2:
        _, config, item = name.split(".")
        return f"config:{config}.{item}"
    if isinstance(key, (cst.SimpleString, cst.Integer, cst.Float)) or (
        isinstance(key, cst.Name) and key.value in ("True", "False", "None")
    ):
        return ast.literal_eval(source.code(key))
    raise CodegenError(
        source.pos(key),
        f"switch key `{source.code(key)}` is not a literal",
        "keys must be string or number literals or self.config.<name>.<key>",
    )


def start_end(name: str, pos: Pos, steps: list[m.Step]) -> tuple[str, str]:
    """The start and end steps of flow ``name``: by name or ``@step(start=/end=True)``."""
    names = {s.name for s in steps}

    def resolve(flag: str, fallback: str) -> str:
        annotated = [s.name for s in steps if getattr(s, f"is_{flag}")]
        if len(steps) == 1:
            return steps[0].name
        if len(annotated) > 1:
            raise CodegenError(
                pos,
                f"multiple steps are annotated with @step({flag}=True): "
                + ", ".join(sorted(annotated)),
                "exactly one is allowed",
            )
        if annotated:
            if fallback in names:
                raise CodegenError(
                    pos,
                    f"ambiguous {flag} step: {annotated[0]} is annotated with "
                    f"@step({flag}=True) but a step named {fallback!r} also exists",
                    f"rename the {fallback!r} step or drop the annotation",
                )
            return annotated[0]
        if fallback in names:
            return fallback
        raise CodegenError(
            pos,
            f"flow {name} has no {flag} step",
            f"name a step {fallback!r} or use @step({flag}=True)",
        )

    return resolve("start", "start"), resolve("end", "end")


def with_kind(step: m.Step, start: str, end: str) -> m.Step:
    """Assign Metaflow's node type, as ``metaflow/graph.py`` does."""
    if step.name == end:
        kind = m.END
    elif step.condition is not None:
        kind = m.SWITCH
    elif step.foreach_var is not None:
        kind = m.FOREACH
    elif len(step.next) > 1:
        kind = m.SPLIT
    elif step.num_args > 1:
        kind = m.JOIN
    elif step.name == start:
        kind = m.START
    else:
        kind = m.LINEAR
    return replace(step, kind=kind)
