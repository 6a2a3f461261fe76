"""The flow model of a class: its MRO's bodies read base first (a subclass's
definitions win), errors collected so that one run reports all of them."""

from __future__ import annotations

from typing import Any, Iterable

import libcst as cst

from . import flow_decorators, triggers
from . import model as m
from .decorators import check_supported, read_compensation, read_decorator
from .errors import CodegenError, Collector
from .fold import FUNCTION, Scope
from .parameters import class_attribute
from .sources import METAFLOW, ClassRef, Loader, bindings, docstring, is_metaflow
from .steps import read_step, start_end, with_kind


def class_scope(loader: Loader, link: ClassRef, configs: set[str]) -> Scope:
    """The class body's names (constants, methods, Parameters, Configs), for folding."""
    counts, assigned, _ = bindings(link.node.body.body)
    names: dict[str, Any] = {}
    for name, count in counts.items():
        names[name] = assigned.get(name) if count == 1 else None
    for stmt in link.node.body.body:
        if isinstance(stmt, cst.FunctionDef) and counts[stmt.name.value] == 1:
            names[stmt.name.value] = FUNCTION
    for name, expr in assigned.items():
        if isinstance(expr, cst.Call):
            if is_metaflow(link.source, expr.func, "Config"):
                configs.add(name)
                names[name] = None
            elif any(
                is_metaflow(link.source, expr.func, n)
                for n in ("Parameter", "IncludeFile")
            ):
                names[name] = None
    return Scope(loader, link.source, names, frozenset(configs))


def build_flow(
    loader: Loader, cls: ClassRef, mro: list[Any], sha: str, errors: Collector
) -> m.Flow | None:
    """The flow class ``cls`` (its MRO ``mro``, file digest ``sha``); None when an
    error (recorded in ``errors``) leaves its steps unknown."""
    steps: dict[str, m.Step] = {}
    params: dict[str, m.Parameter] = {}
    configs: dict[str, m.Config] = {}
    decorators: dict[Any, m.Decorator] = {}
    handlers: dict[str, m.Compensation] = {}
    config_names: set[str] = set()
    broken = False
    for link in reversed([c for c in mro if isinstance(c, ClassRef)]):
        module_scope = Scope(loader, link.source)
        for deco in link.node.decorators:
            with errors.guard():
                d = read_decorator(module_scope, deco)
                check_supported(d, "flow decorator")
                # Metaflow's own flow decorators once per flow (a subclass's wins);
                # mutators and other decorators as often as they are applied
                decorators[
                    d.name if d.origin == METAFLOW else (d.name, d.origin, d.pos)
                ] = d
        scope = class_scope(loader, link, config_names)
        for stmt in link.node.body.body:
            if isinstance(stmt, cst.FunctionDef):
                name = stmt.name.value
                steps.pop(name, None)
                handlers.pop(name, None)
                try:
                    step = read_step(scope, stmt, errors)
                except CodegenError as err:
                    errors.add(err)
                    broken = True
                    continue
                if step is not None:
                    steps[name] = step
                    continue
                with errors.guard():
                    handler = read_compensation(link.source, stmt)
                    if handler is not None:
                        handlers[name] = handler
            elif isinstance(stmt, cst.SimpleStatementLine):
                for small in stmt.body:
                    with errors.guard():
                        class_attribute(scope, small, params, configs)
    source = cls.source
    name = cls.node.name.value
    pos = source.pos(cls.node.name)
    if broken:
        return None
    if not steps:
        errors.add(
            CodegenError(
                pos,
                f"flow {name} has no @step methods",
                "decorate the flow's methods with @step (`from metaflow import step`): "
                "a flow needs at least a start and an end step",
            )
        )
        return None
    ordered = sorted(steps.values(), key=lambda s: (s.pos.file, s.pos.line))
    try:
        start, end = start_end(name, pos, ordered)
    except CodegenError as err:
        errors.add(err)
        return None
    typed = tuple(with_kind(s, start, end) for s in ordered)
    parameters = tuple(sorted(params.values(), key=lambda p: p.name))
    schedule = project = trigger = None
    with errors.guard():
        schedule = flow_decorators.schedule(decorators.get("schedule"), parameters)
    with errors.guard():
        project = flow_decorators.project(decorators.get("project"))
    with errors.guard():
        trigger = triggers.trigger(
            decorators.get("trigger"),
            decorators.get("trigger_on_finish"),
            parameters,
            mutated=any(d.mutator for d in decorators.values()),
            project=project,
        )
    return m.Flow(
        name=name,
        # the file `python flow.py` runs, even when the class is imported into it
        file=loader.flow_display,
        sha256=sha,
        pos=pos,
        doc=docstring(cls.node),
        parameters=parameters,
        configs=tuple(sorted(configs.values(), key=lambda c: c.name)),
        decorators=tuple(
            sorted(decorators.values(), key=lambda d: (d.name, d.origin, d.pos))
        ),
        steps=typed,
        start=start,
        end=end,
        compensations=_one_per_step(handlers.values(), errors),
        schedule=schedule,
        project=project,
        trigger=trigger,
    )


def _one_per_step(
    handlers: Iterable[m.Compensation], errors: Collector
) -> tuple[m.Compensation, ...]:
    """The compensations sorted by step; two for one step is an error."""
    by_step: dict[str, m.Compensation] = {}
    for handler in sorted(handlers, key=lambda h: h.pos):
        first = by_step.setdefault(handler.step, handler)
        if first is not handler:
            errors.add(
                CodegenError(
                    handler.pos,
                    f"step {handler.step} already has a compensation: {first.handler} "
                    f"({first.pos})",
                    "give each step at most one @compensate method",
                )
            )
    return tuple(by_step[name] for name in sorted(by_step))
