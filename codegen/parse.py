"""Read flow files statically with libcst and build the flow model.

Nothing of the user's code is imported or executed: base classes defined in other
modules (``from common.pipeline import Pipeline``) are located as Python would
locate them (``imports.py``: the flow's directory, ``--path``, ``PYTHONPATH``,
installed packages) and parsed the same way (``sources.py``). Values the source
spells out are folded, the rest is kept as ``Deferred`` for Metaflow (``fold.py``).

Errors do not stop the reading: a bad decorator, parameter or step is skipped and
the rest is read, so that one run reports every error (``read_flows``).
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import keyword
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import libcst as cst

from . import flow_decorators
from . import model as m
from .errors import CodegenError, CodegenErrors, Collector, Pos
from .fold import FUNCTION, Scope, value
from .imports import SearchPath, search_path
from .sources import (
    METAFLOW,
    ClassRef,
    Function,
    Loader,
    MetaflowName,
    Missing,
    Source,
    Value,
    bindings,
    dotted,
    is_metaflow,
    origin,
)

ENVIRONMENT_HINT = (
    "workers run tasks in their own Python and cannot build @pypi/@conda "
    "environments yet (Metaflow needs --environment=pypi for them); install the "
    "packages where the worker runs and remove the decorator"
)
# Metaflow decorators that Metaflow's own orchestrators cannot run here; every other
# decorator (Metaflow's, an extension's, the user's own) is forwarded as written.
UNSUPPORTED_HINTS = {
    "parallel": "@parallel (multi-node) steps cannot run on Temporal yet; "
    "use a foreach instead",
    "trigger": "event triggers are not supported yet; start runs with the worker's "
    "`trigger` command or a Temporal Schedule (@schedule)",
    "trigger_on_finish": "event triggers are not supported yet; start runs with the "
    "worker's `trigger` command or a Temporal Schedule (@schedule)",
    "exit_hook": "exit hooks are not supported yet; put the work in the end step",
    "pypi": ENVIRONMENT_HINT,
    "conda": ENVIRONMENT_HINT,
    "pypi_base": ENVIRONMENT_HINT,
    "conda_base": ENVIRONMENT_HINT,
}
# Parameter.init in metaflow/parameters.py: names Metaflow's CLI already uses.
_RESERVED = (
    "params", "with", "tag", "namespace", "obj", "tags", "decospecs", "run-id-file",
    "max-num-splits", "max-workers", "max-log-size", "user-namespace", "run-id",
    "task-id", "runner-attribute-file",
)  # fmt: skip
RESERVED_PARAMETERS = frozenset(_RESERVED) | frozenset(n.replace("-", "_") for n in _RESERVED)
# FlowSpec._NON_PARAMETERS (metaflow/flowspec.py): class attributes Metaflow never
# takes for Parameters, nor any whose name starts with "_" (FlowSpec._get_parameters).
# `name = Parameter("name")` is accepted and ignored: `self.name` is the flow's name
# and `run --name` is no such option.
NON_PARAMETERS = frozenset({"cmd", "foreach_stack", "index", "input", "name", "script_name"})
FLOWSPEC = "FlowSpec"
STATIC_HINT = "the generator reads the flow statically; use a literal or a module constant here"


# ---------------------------------------------------------------------------
# Flow classes


def load_flows(path: Path, display: str | None = None, search: SearchPath | None = None) -> list[m.Flow]:
    """Every flow class defined in ``path``, fully resolved, in source order; raises
    :class:`CodegenErrors` with every error found."""
    flows, errors = read_flows(path, display, search)
    if errors:
        raise CodegenErrors(errors)
    return flows


def read_flows(
    path: Path, display: str | None = None, search: SearchPath | None = None
) -> tuple[list[m.Flow], list[CodegenError]]:
    """The flow ``path`` runs (a list of one, or none) and every error found
    reading it.

    The flow is the class the file's ``if __name__ == "__main__":`` block
    instantiates. It is returned (so that its graph can still be checked) unless
    an error leaves its graph unknown (a bad transition, a missing base class);
    one whose decorators or parameters had errors is returned without them.
    ``search`` defaults to ``PYTHONPATH`` and the generator's installed packages.

    libcst reads and walks the syntax tree recursively: whatever Python compiles
    (an expression nested 900 deep) is read in a thread with a deep stack."""
    return _deep(_read_flows, path, display, search)


# libcst needs a few Python frames per level of nesting, Python's compiler fewer
DEEP_RECURSION_LIMIT = 50_000
DEEP_STACK_BYTES = 512 * 1024 * 1024


def _deep(fn, *args):
    """``fn(*args)`` in a thread with a large stack and recursion limit."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = fn(*args)
        except BaseException as exc:  # re-raised in the calling thread
            result["error"] = exc

    old_limit = sys.getrecursionlimit()
    try:
        old_size = threading.stack_size(DEEP_STACK_BYTES)
        try:
            thread = threading.Thread(target=run, name="mf-temporal-codegen-parse", daemon=True)
        finally:
            threading.stack_size(old_size)
        sys.setrecursionlimit(max(old_limit, DEEP_RECURSION_LIMIT))
        thread.start()
    except (RuntimeError, ValueError, MemoryError):  # no such stack here: the plain way
        sys.setrecursionlimit(old_limit)
        return fn(*args)
    try:
        thread.join()
    finally:
        sys.setrecursionlimit(old_limit)
    if "error" in result:
        raise result["error"]
    return result["value"]


def _read_flows(path: Path, display: str | None, search: SearchPath | None):
    display = display or str(path)
    search = search_path() if search is None else search
    loader = Loader(path, display, search)
    errors = Collector()
    try:
        source = loader.flow()
    except CodegenError as err:
        return [], err.errors
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    memo: dict[int, tuple[list[Any], list[CodegenError]]] = {}
    classes = []
    for node in source.classes.values():
        ref = ClassRef(node, source)
        mro, missing = _linearize(loader, ref, memo, ())
        classes.append((ref, mro, missing))
    flow_classes = [c for c in classes if FLOWSPEC in c[1]]
    for ref, mro, missing in classes:
        # an import that cannot be resolved matters for flows (and for what looks
        # like one); a helper class's may be an installed package the generator's
        # environment lacks
        certain = FLOWSPEC in mro or not flow_classes or _has_steps(ref)
        for err in missing:
            if certain or isinstance(err, _Undefined):
                errors.add(err)
    target = _main_flow(loader, source, classes, memo, errors)
    if target is None:
        return [], errors.errors
    ref, mro, missing = target
    if missing:
        for err in missing:
            errors.add(err)
        return [], errors.errors
    flow = _build_flow(loader, ref, mro, sha, errors)
    return ([] if flow is None else [flow]), errors.errors


# ---------------------------------------------------------------------------
# Which flow the file runs: the class its ``if __name__ == "__main__":`` block
# instantiates (Metaflow's command line starts there; other FlowSpec classes in
# the file, bases or alternatives, are not flows of their own)

MAIN_HINT = (
    'add `if __name__ == "__main__": {name}()` at the end of the file: '
    "`python flow.py run` does nothing without it"
)


def _main_flow(loader: Loader, source: Source, classes: list, memo: dict, errors: Collector):
    """(ClassRef, MRO, missing-base errors) of the flow the ``__main__`` block
    instantiates; None (with the error recorded) when there is none."""
    display = source.display
    leaves = _leaf_flows(classes)
    blocks = [stmt for stmt in source.module.body if _is_main_test(stmt)]
    calls = []  # (call, source, unconditional, symbol) in execution order
    block_of = []  # the __main__ block each call runs from
    for block in blocks:
        _main_calls(loader, source, _statements(block.body), True, calls, set(), 0)
        block_of += [block] * (len(calls) - len(block_of))
    flows, others, no_cli, unresolved = [], [], [], []
    for (call, where, unconditional, symbol), block in zip(calls, block_of):
        if isinstance(symbol, Missing):  # an import Python fails on
            unresolved.append(symbol.error(where.pos(call)))
            continue
        mro, missing = _linearize(loader, symbol, memo, ())
        if FLOWSPEC not in mro and not missing:
            others.append((call, where, symbol))
            continue
        if _no_cli(call):
            no_cli.append((call, where, symbol))
            continue
        flows.append((call, where, unconditional, symbol, mro, missing, block))
    if flows:
        first = flows[0]
        names = sorted({f[3].name for f in flows})
        if not first[2] and len({id(f[3].node) for f in flows}) > 1:
            call, where = first[0], first[1]
            errors.add(
                CodegenError(
                    where.pos(call),
                    "the __main__ block may instantiate any of the flows "
                    + ", ".join(names)
                    + "; the generator cannot know which one runs",
                    "instantiate exactly one flow in the __main__ block, unconditionally "
                    "(generate each flow from a file of its own)",
                )
            )
            return None
        call, where, _, symbol, mro, missing, block = first
        if symbol.source is source and source.pos(symbol.node) > source.pos(block):
            errors.add(
                CodegenError(
                    where.pos(call),
                    f"{symbol.name} is instantiated before its class statement "
                    "(Python raises NameError)",
                    f"move the __main__ block below class {symbol.name}",
                )
            )
            return None
        return symbol, mro, missing
    if unresolved:
        for err in unresolved:
            errors.add(err)
        return None
    if no_cli:
        call, where, symbol = no_cli[0]
        errors.add(
            CodegenError(
                where.pos(call),
                f"{symbol.name}(use_cli=False) does not run the flow: Metaflow's "
                "command line never starts",
                f"call {symbol.name}() in the __main__ block",
            )
        )
        return None
    if others:
        call, where, symbol = others[0]
        errors.add(
            CodegenError(
                where.pos(call),
                f"the __main__ block instantiates {symbol.name}, which is not a Metaflow "
                "flow (it does not derive from metaflow.FlowSpec)",
                f"instantiate the flow class instead: "
                f"`if __name__ == \"__main__\": {leaves[0].name if leaves else 'MyFlow'}()`",
            )
        )
        return None
    if not [c for c in classes if FLOWSPEC in c[1]]:
        if errors:  # a missing base class already explains why nothing is a flow
            return None
        errors.add(
            CodegenError(
                Pos(display, 1, 1, source.cite),
                "no Metaflow flow found: no class derives from metaflow.FlowSpec",
                "define `class MyFlow(FlowSpec)` with `from metaflow import FlowSpec`",
            )
        )
        return None
    name = leaves[0].name if len(leaves) == 1 else "MyFlow"
    where = leaves[0].source.pos(leaves[0].node.name) if leaves else Pos(display, 1, 1, source.cite)
    if blocks:
        message = "the __main__ block instantiates no flow"
        where = source.pos(blocks[0])
    else:
        message = 'no `if __name__ == "__main__":` block instantiates a flow'
    if len(leaves) > 1:
        message += " (the file defines " + ", ".join(sorted(c.name for c in leaves)) + ")"
    errors.add(CodegenError(where, message, MAIN_HINT.format(name=name)))
    return None


def _leaf_flows(classes: list) -> list[ClassRef]:
    """The file's FlowSpec classes that no other class of the file derives from."""
    flow_classes = [c for c in classes if FLOWSPEC in c[1]]
    subclassed = {id(b.node) for _, mro, _ in flow_classes for b in mro[1:] if isinstance(b, ClassRef)}
    return [ref for ref, _, _ in flow_classes if id(ref.node) not in subclassed]


def _is_main_test(stmt: cst.CSTNode) -> bool:
    """``if __name__ == "__main__":`` (either order, any quotes)."""
    if not isinstance(stmt, cst.If):
        return False
    test = stmt.test
    if not isinstance(test, cst.Comparison) or len(test.comparisons) != 1:
        return False
    comparison = test.comparisons[0]
    if not isinstance(comparison.operator, cst.Equal):
        return False
    sides = [test.left, comparison.comparator]
    names = [s for s in sides if isinstance(s, cst.Name) and s.value == "__name__"]
    strings = [s for s in sides if isinstance(s, cst.SimpleString) and s.evaluated_value == "__main__"]
    return len(names) == 1 and len(strings) == 1


# how deep the __main__ block is followed into the functions it calls
MAX_CALL_DEPTH = 20


def _main_calls(loader: Loader, source: Source, body, unconditional: bool, calls: list, seen: set, depth: int) -> None:
    """The class instantiations of the statements ``body`` (in ``source``), in
    order, following calls of module-level functions; ``unconditional``: whether
    the statements run whenever the block does."""
    for stmt in body:
        if isinstance(stmt, cst.SimpleStatementLine):
            for call in _calls(stmt):
                name = dotted(call.func)
                if name is None:
                    continue
                try:
                    symbol = loader.resolve(source, name)
                except CodegenError:
                    continue
                if isinstance(symbol, (ClassRef, Missing)):
                    calls.append((call, source, unconditional, symbol))
                elif isinstance(symbol, Function) and depth < MAX_CALL_DEPTH:
                    key = (id(symbol.source), symbol.name)
                    fn = symbol.source.functions.get(symbol.name)
                    if fn is not None and key not in seen:
                        seen.add(key)
                        _main_calls(loader, symbol.source, _statements(fn.body), unconditional, calls, seen, depth + 1)
        elif isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
            continue
        elif isinstance(stmt, (cst.With, cst.Try, cst.TryStar)):
            _main_calls(loader, source, _statements(stmt.body), unconditional, calls, seen, depth)
            for handler in getattr(stmt, "handlers", ()):
                _main_calls(loader, source, _statements(handler.body), False, calls, seen, depth)
            for part in (getattr(stmt, "orelse", None), getattr(stmt, "finalbody", None)):
                if part is not None:
                    _main_calls(loader, source, _statements(part.body), False, calls, seen, depth)
        elif isinstance(stmt, cst.BaseCompoundStatement):
            for block in _blocks(stmt):
                _main_calls(loader, source, block, False, calls, seen, depth)


def _statements(suite: cst.BaseSuite) -> list:
    """The statements of an indented block or of a one-line suite (``if x: a()``)."""
    if isinstance(suite, cst.SimpleStatementSuite):
        return [cst.SimpleStatementLine(body=suite.body)]
    return list(suite.body)


def _blocks(stmt: cst.BaseCompoundStatement) -> list:
    """The statement lists of a compound statement (if/elif/else, loops, match)."""
    found = []
    todo: list = [stmt]
    while todo:
        node = todo.pop(0)
        body = getattr(node, "body", None)
        if isinstance(body, cst.BaseSuite):
            found.append(_statements(body))
        todo.extend(getattr(node, "cases", None) or ())
        orelse = getattr(node, "orelse", None)
        if orelse is not None:
            todo.append(orelse)
    return found


def _calls(stmt: cst.SimpleStatementLine) -> list[cst.Call]:
    """The calls in a simple statement line, outermost first (not in lambdas)."""
    found: list[cst.Call] = []

    class Visitor(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            found.append(node)

        def visit_Lambda(self, node: cst.Lambda) -> bool:
            return False

    stmt.visit(Visitor())
    return found


def _no_cli(call: cst.Call) -> bool:
    """``Flow(use_cli=False)``: the flow is created without its command line."""
    return any(
        a.keyword is not None and a.keyword.value == "use_cli"
        and isinstance(a.value, cst.Name) and a.value.value == "False"
        for a in call.args
    )


def _linearize(loader: Loader, cls: ClassRef, memo: dict, stack: tuple) -> tuple[list[Any], list[CodegenError]]:
    """Python's MRO (C3) of ``cls`` over the classes that can be read, FLOWSPEC for
    Metaflow's FlowSpec; and the errors of bases that cannot be found."""
    key = id(cls.node)
    if key in memo:
        return memo[key]
    if key in stack:  # Python refuses cyclic inheritance; stop here
        return [cls], []
    bases: list[list[Any]] = []
    errors: list[CodegenError] = []
    for arg in cls.node.bases:
        if arg.keyword is not None or arg.star:
            continue
        expr = arg.value.value if isinstance(arg.value, cst.Subscript) else arg.value
        name = dotted(expr)
        if name is None:
            continue
        try:
            symbol = loader.resolve(cls.source, name)
            if _defined_later(cls, symbol):
                # the class statement runs before that one: the name means what
                # an import above binds, else nothing yet
                head = name.split(".")[0]
                node = cls.source.import_nodes.get(head)
                if node is None or cls.source.pos(node) > cls.source.pos(cls.node):
                    errors.append(_undefined_yet(cls, arg.value, name, symbol))
                    continue
                symbol = loader.resolve_import(cls.source, name)
        except CodegenError as err:  # a base module that does not parse
            errors += err.errors
            continue
        if isinstance(symbol, ClassRef) and (id(symbol.node) == key or id(symbol.node) in stack):
            # reported where the cycle was entered (the flow's own class, first)
            errors.append(
                _Undefined(
                    symbol.source.pos(symbol.node.name),
                    f"cyclic inheritance: {symbol.name} derives from {cls.name}, which "
                    f"derives from {symbol.name} (Python cannot create these classes)",
                    f"remove {symbol.name} from the bases of {cls.name} "
                    f"({cls.source.display}:{cls.source.pos(arg.value).line})",
                )
            )
            continue
        if isinstance(symbol, MetaflowName):
            if symbol.name.rsplit(".", 1)[-1] == FLOWSPEC:
                bases.append([FLOWSPEC])
        elif isinstance(symbol, ClassRef):
            mro, missing = _linearize(loader, symbol, memo, stack + (key,))
            bases.append(mro)
            errors += missing
        elif isinstance(symbol, Missing):
            errors.append(symbol.error(cls.source.pos(arg.value)))
        elif symbol is None and not _defined(cls.source, name.split(".")[0]):
            errors.append(
                _Undefined(
                    cls.source.pos(arg.value),
                    f"base class {name} of {cls.name} is not defined (Python raises NameError)",
                    f"import {name.split('.')[0]} or define it before the class",
                )
            )
    result = [cls] + _merge(bases + [[b[0] for b in bases]]), errors
    memo[key] = result
    return result


def _defined_later(cls: ClassRef, symbol: Any) -> bool:
    """Whether the base ``symbol`` is a class statement of the same file at or
    after ``cls``'s own (``class Base(Base)``, ``class A(B)`` above ``class B``)."""
    return (
        isinstance(symbol, ClassRef)
        and symbol.source is cls.source
        and cls.source.pos(symbol.node) >= cls.source.pos(cls.node)
    )


def _undefined_yet(cls: ClassRef, expr: cst.BaseExpression, name: str, symbol: ClassRef) -> CodegenError:
    if symbol.node is cls.node:
        return _Undefined(
            cls.source.pos(expr),
            f"class {cls.name} derives from itself (Python raises NameError: "
            f"{name} is not defined yet)",
            f"derive {cls.name} from FlowSpec or from a class defined above it",
        )
    return _Undefined(
        cls.source.pos(expr),
        f"base class {name} of {cls.name} is defined below it (Python raises "
        f"NameError: {name} is not defined yet)",
        f"move class {symbol.name} above class {cls.name}",
    )


class _Undefined(CodegenError):
    """A base class name bound nowhere: certain to fail when Python runs the file
    (unlike an import the generator's environment cannot resolve)."""


def _defined(source: Source, name: str) -> bool:
    """Whether ``name`` is bound in ``source``'s module or is a builtin."""
    return name in source.classes or name in source.imports or source.binds(name) or hasattr(builtins, name)


def _key(item: Any) -> Any:
    return item if item == FLOWSPEC else id(item.node)


def _merge(seqs: list[list[Any]]) -> list[Any]:
    """C3 merge; an inconsistent order (Python raises TypeError) falls back to
    depth-first order."""
    seqs = [list(s) for s in seqs if s]
    result: list[Any] = []
    while seqs:
        for seq in seqs:
            head = _key(seq[0])
            if not any(head in map(_key, s[1:]) for s in seqs):
                break
        else:
            seen = {_key(r) for r in result}
            for s in seqs:
                for item in s:
                    if _key(item) not in seen:
                        seen.add(_key(item))
                        result.append(item)
            return result
        result.append(seq[0])
        seqs = [s[1:] if _key(s[0]) == head else s for s in seqs]
        seqs = [s for s in seqs if s]
    return result


def _has_steps(cls: ClassRef) -> bool:
    return any(
        isinstance(stmt, cst.FunctionDef)
        and any(is_metaflow(cls.source, _target(d), "step") for d in stmt.decorators)
        for stmt in cls.node.body.body
    )


def _target(deco: cst.Decorator) -> cst.BaseExpression:
    expr = deco.decorator
    return expr.func if isinstance(expr, cst.Call) else expr


def _class_scope(loader: Loader, link: ClassRef, configs: set[str]) -> Scope:
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
            elif any(is_metaflow(link.source, expr.func, n) for n in ("Parameter", "IncludeFile")):
                names[name] = None
    return Scope(loader, link.source, names, frozenset(configs))


def _build_flow(loader: Loader, cls: ClassRef, mro: list[Any], sha: str, errors: Collector) -> m.Flow | None:
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
                d = _decorator(module_scope, deco)
                _check_supported(d, "flow decorator")
                # Metaflow's own flow decorators once per flow (a subclass's wins);
                # mutators and other decorators as often as they are applied
                decorators[d.name if d.origin == METAFLOW else (d.name, d.origin, d.pos)] = d
        scope = _class_scope(loader, link, config_names)
        for stmt in link.node.body.body:
            if isinstance(stmt, cst.FunctionDef):
                name = stmt.name.value
                steps.pop(name, None)
                handlers.pop(name, None)
                try:
                    step = _step(scope, stmt, errors)
                except CodegenError as err:
                    errors.add(err)
                    broken = True
                    continue
                if step is not None:
                    steps[name] = step
                    continue
                with errors.guard():
                    handler = _compensation(link.source, stmt)
                    if handler is not None:
                        handlers[name] = handler
            elif isinstance(stmt, cst.SimpleStatementLine):
                for small in stmt.body:
                    with errors.guard():
                        _class_attribute(scope, small, params, configs)
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
        start, end = _start_end(name, pos, ordered)
    except CodegenError as err:
        errors.add(err)
        return None
    typed = tuple(_typed(s, start, end) for s in ordered)
    parameters = tuple(sorted(params.values(), key=lambda p: p.name))
    schedule = project = None
    with errors.guard():
        schedule = flow_decorators.schedule(decorators.get("schedule"), parameters)
    with errors.guard():
        project = flow_decorators.project(decorators.get("project"))
    return m.Flow(
        name=name,
        # the file `python flow.py` runs, even when the class is imported into it
        file=loader.flow_display,
        sha256=sha,
        pos=pos,
        doc=_docstring(cls.node),
        parameters=parameters,
        configs=tuple(sorted(configs.values(), key=lambda c: c.name)),
        decorators=tuple(sorted(decorators.values(), key=lambda d: (d.name, d.origin, d.pos))),
        steps=typed,
        start=start,
        end=end,
        compensations=_one_per_step(handlers.values(), errors),
        schedule=schedule,
        project=project,
    )


def _one_per_step(handlers, errors: Collector) -> tuple[m.Compensation, ...]:
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


def _docstring(node: cst.ClassDef | cst.FunctionDef) -> str:
    doc = node.get_docstring(clean=True)
    return doc or ""


def _check_supported(d: m.Decorator, what: str) -> None:
    """Reject a Metaflow decorator that Metaflow's orchestrators cannot run here."""
    if d.origin == METAFLOW and d.name in UNSUPPORTED_HINTS:
        raise CodegenError(d.pos, f"unsupported {what} @{d.name}", UNSUPPORTED_HINTS[d.name])


# ---------------------------------------------------------------------------
# Parameters and Configs

# The positional order of each constructor's arguments (metaflow 2.19).
PARAMETER_ARGS = ("name", "default", "type", "help", "required", "show_default")
INCLUDE_FILE_ARGS = ("name", "required", "is_text", "encoding", "help", "parser")
CONFIG_ARGS = ("name", "default", "default_value", "help", "required", "parser", "plain")
JSON_TYPES = {"JSONType", "JSONTypeClass"}
TYPES = ("str", "int", "float", "bool")


def _class_attribute(scope: Scope, small: cst.CSTNode, params, configs) -> None:
    if isinstance(small, cst.Assign) and len(small.targets) == 1:
        target = small.targets[0].target
    elif isinstance(small, cst.AnnAssign) and small.value is not None:
        target = small.target
    else:
        return
    if not isinstance(target, cst.Name):
        return
    attr = target.value
    # a later class attribute replaces whatever a base class bound to the name
    params.pop(attr, None)
    configs.pop(attr, None)
    call = small.value
    if not isinstance(call, cst.Call):
        return
    source = scope.source
    if attr.startswith("_") or attr in NON_PARAMETERS:
        if any(is_metaflow(source, call.func, n) for n in ("Parameter", "IncludeFile")):
            return  # Metaflow never registers it: no command-line option, no artifact
    if is_metaflow(source, call.func, "Parameter"):
        params[attr] = _parameter(scope, attr, call, "parameter")
    elif is_metaflow(source, call.func, "IncludeFile"):
        params[attr] = _parameter(scope, attr, call, "include_file")
    elif is_metaflow(source, call.func, "Config"):
        args = _arguments(source, call, CONFIG_ARGS)
        name = _name(scope, call, args, attr)
        plain = bool(_static(scope, args["plain"], "plain")) if "plain" in args else False
        configs[attr] = m.Config(attr, name, source.pos(small), plain)


def _arguments(source: Source, call: cst.Call, names: tuple[str, ...]) -> dict[str, cst.BaseExpression]:
    """The call's arguments by parameter name (positional ones by ``names``)."""
    args: dict[str, cst.BaseExpression] = {}
    positional = 0
    for arg in call.args:
        if arg.star:
            raise CodegenError(
                source.pos(arg),
                f"cannot read `{source.code(arg).strip(', ')}` in `{source.code(call.func)}(...)` statically",
                "pass the arguments one by one, by keyword",
            )
        if arg.keyword is not None:
            args[arg.keyword.value] = arg.value
        elif positional < len(names):
            args[names[positional]] = arg.value
            positional += 1
    return args


def _static(scope: Scope, expr: cst.BaseExpression, what: str) -> Any:
    """A value the generator must know (a literal or a constant)."""
    folded, _ = value(scope, expr)
    if isinstance(folded, m.Deferred):
        raise CodegenError(scope.source.pos(expr), f"{what} must be a literal, got `{folded.code}`", STATIC_HINT)
    return folded


def _name(scope: Scope, call: cst.Call, args: dict[str, cst.BaseExpression], attr: str) -> str:
    expr = args.get("name")
    if expr is None:
        raise CodegenError(
            scope.source.pos(call),
            f"{attr}: a name is required",
            f"give the name first: `{attr} = {scope.source.code(call.func)}({attr!r}, ...)`",
        )
    name = _static(scope, expr, "the name")
    if not isinstance(name, str):
        raise CodegenError(
            scope.source.pos(expr),
            f"{attr}: the name must be a string, got `{scope.source.code(expr)}`",
            f"name it with a string, e.g. {attr!r}",
        )
    return name


def _parameter(scope: Scope, attr: str, call: cst.Call, kind: str) -> m.Parameter:
    source = scope.source
    args = _arguments(source, call, PARAMETER_ARGS if kind == "parameter" else INCLUDE_FILE_ARGS)
    name = _name(scope, call, args, attr)
    if name in RESERVED_PARAMETERS:
        raise CodegenError(
            source.pos(args["name"]),
            f"Parameter name {name!r} is a reserved word in Metaflow",
            "rename the parameter: Metaflow's own command-line options use that name "
            "(Metaflow refuses it too)",
        )
    _check_option_name(source, args["name"], name)
    has_default = "default" in args
    default, default_code = value(scope, args["default"]) if has_default else (None, None)
    if kind == "include_file":
        ptype = "str"
    else:
        ptype = _parameter_type(scope, name, args.get("type"), default)
    required = value(scope, args["required"])[0] if "required" in args else False
    help_text = value(scope, args["help"])[0] if "help" in args else ""
    return m.Parameter(
        attr=attr,
        name=name,
        type=ptype,
        default=default,
        has_default=has_default and default is not None,
        required=bool(required) if not isinstance(required, m.Deferred) else False,
        help="" if help_text is None or isinstance(help_text, m.Deferred) else str(help_text),
        pos=source.pos(call),
        kind=kind,
        default_code=default_code,
    )


def _check_option_name(source: Source, expr: cst.BaseExpression, name: str) -> None:
    """Metaflow makes a Parameter the command-line option ``--<name>``, which click
    names ``<name>`` with "-" as "_", lower-cased: that must be an identifier. The
    generated Params dataclass has a field of that name (but lower-cased)."""
    option = name.replace("-", "_")
    if not option.lower().isidentifier():
        raise CodegenError(
            source.pos(expr),
            f"Parameter name {name!r} cannot be a command-line option",
            "use letters, digits, '_' and '-', not starting with a digit: Metaflow "
            "refuses it too (click: \"Could not determine name for option\")",
        )
    if keyword.iskeyword(option):
        raise CodegenError(
            source.pos(expr),
            f"Parameter name {name!r} is a Python keyword: the generated Params "
            "dataclass cannot have a field of that name",
            f"rename the parameter (e.g. {name + '_value'!r}); Metaflow itself accepts it",
        )


def _parameter_type(scope: Scope, name: str, type_expr, default) -> str:
    if type_expr is not None:
        bare = _type_name(scope, type_expr)
        if bare in TYPES:
            return bare
        if bare in JSON_TYPES:
            return "json"
        raise CodegenError(
            scope.source.pos(type_expr),
            f"Parameter {name!r}: unsupported type `{scope.source.code(type_expr)}`",
            "use str, int, float, bool or metaflow.JSONType",
        )
    if isinstance(default, m.Deferred):
        return "auto"  # Metaflow takes the type of the evaluated default
    for pytype in (bool, int, float, str):
        if isinstance(default, pytype):
            return pytype.__name__
    if isinstance(default, (dict, list)):
        return "json"
    return "str"


def _type_name(scope: Scope, expr: cst.BaseExpression, depth: int = 0) -> str:
    """The bare name of a ``type=``: str/int/float/bool/JSONType, through aliases."""
    written = dotted(expr) or ""
    bare = written.split(".")[-1]
    if bare in TYPES or bare in JSON_TYPES or not written or depth > 10 or written in scope.class_names:
        return bare
    symbol = scope.loader.resolve(scope.source, written, values=True)
    if isinstance(symbol, Value) and dotted(symbol.expr):
        return _type_name(Scope(scope.loader, symbol.source), symbol.expr, depth + 1)
    return bare


# ---------------------------------------------------------------------------
# Decorators


def _decorator(scope: Scope, deco: cst.Decorator) -> m.Decorator:
    source = scope.source
    expr = deco.decorator
    call = expr if isinstance(expr, cst.Call) else None
    name_of = dotted(call.func if call else expr)
    if name_of is None:
        raise CodegenError(
            source.pos(deco),
            f"cannot read decorator `@{source.code(expr)}`",
            "use a plain @name or @name(...) decorator",
        )
    module, name = origin(source, name_of)
    kwargs: list[tuple[str, Any]] = []
    arg_pos: list[tuple[str, Pos]] = []
    arg_code: list[tuple[str, str]] = []
    positional: list[Any] = []
    for arg in call.args if call else ():
        folded, code = value(scope, arg.value)
        if arg.star == "**":
            if isinstance(folded, dict) and all(isinstance(k, str) for k in folded):
                text = source.code(arg.value)
                for key, item in folded.items():
                    kwargs.append((key, item))
                    arg_pos.append((key, source.pos(arg.value)))
                    arg_code.append((key, f"{text}[{key!r}]"))
            else:
                if not isinstance(folded, m.Deferred):
                    folded = m.Deferred(source.code(arg.value), source.pos(arg.value), m.EXPR)
                kwargs.append(("_kwargs", folded))
        elif arg.star == "*":
            if isinstance(folded, (list, tuple)):
                positional.extend(folded)
            else:
                positional.append(folded)
        elif arg.keyword is None:
            positional.append(folded)
        else:
            key = arg.keyword.value
            kwargs.append((key, folded))
            arg_pos.append((key, source.pos(arg.value)))
            if code is not None:
                arg_code.append((key, code))
    if positional:
        kwargs.append(("_args", tuple(positional)))
    mutator = module != METAFLOW and _may_mutate(scope.loader, source, name_of)
    return m.Decorator(
        name, module, tuple(kwargs), source.pos(deco), tuple(arg_pos), tuple(arg_code), mutator
    )


MUTATORS = frozenset({"StepMutator", "FlowMutator"})


def _may_mutate(loader: Loader, source: Source, name: str, depth: int = 0) -> bool:
    """Whether the decorator ``name`` may add or change decorators when Metaflow
    loads the flow: a StepMutator/FlowMutator subclass, or one the generator cannot
    read into (a value, an installed package). A ``@user_step_decorator`` function
    or a UserStepDecorator class cannot."""
    if depth > 20:
        return True
    try:
        symbol = loader.resolve(source, name)
    except CodegenError:
        return True
    if isinstance(symbol, MetaflowName):
        return symbol.name.rsplit(".", 1)[-1] in MUTATORS
    if isinstance(symbol, ClassRef):
        bases = [dotted(a.value) for a in symbol.node.bases if a.keyword is None]
        return any(base is None or _may_mutate(loader, symbol.source, base, depth + 1) for base in bases)
    return not isinstance(symbol, Function)


# ---------------------------------------------------------------------------
# Compensations

COMPENSATE_MODULE = "mf_temporal_codegen"


def _is_compensate(source: Source, deco: cst.Decorator) -> bool:
    return is_metaflow(source, _target(deco), "compensate", COMPENSATE_MODULE)


def _compensation(source: Source, fn: cst.FunctionDef) -> m.Compensation | None:
    """The ``@compensate("step")`` on a (non-step) method, or None."""
    deco = next((d for d in fn.decorators if _is_compensate(source, d)), None)
    if deco is None:
        return None
    usage = "write @compensate(\"<step name>\") above a method that takes only self"
    call = deco.decorator
    args = call.args if isinstance(call, cst.Call) else ()
    if len(args) != 1 or (args[0].keyword and args[0].keyword.value != "step"):
        raise CodegenError(
            source.pos(deco), "@compensate takes exactly one step name", usage
        )
    target = args[0].value
    if not isinstance(target, cst.SimpleString):
        raise CodegenError(
            source.pos(target),
            "@compensate needs the step name as a string literal, "
            f"got `{source.code(target)}`",
            usage,
        )
    params = fn.params
    positional = len(params.posonly_params) + len(params.params)
    starred = not isinstance(params.star_arg, cst.MaybeSentinel) or params.star_kwarg
    if positional != 1 or params.kwonly_params or starred:
        raise CodegenError(
            source.pos(fn.name),
            f"compensation {fn.name.value} must take only self",
            "it reads the undone task's artifacts from self and its context from "
            "current.compensation",
        )
    return m.Compensation(
        handler=fn.name.value,
        step=target.evaluated_value,
        doc=_docstring(fn),
        pos=source.pos(deco),
    )


# ---------------------------------------------------------------------------
# Steps


def _step(scope: Scope, fn: cst.FunctionDef, errors: Collector) -> m.Step | None:
    """The step ``fn`` defines, or None; errors in its decorators are recorded in
    ``errors`` (the decorator is skipped), others (its transition) raised."""
    source = scope.source
    step_deco = None
    others = []
    for deco in fn.decorators:
        if is_metaflow(source, _target(deco), "step"):
            step_deco = deco
        else:
            others.append(deco)
    if step_deco is None:
        return None
    kept = []
    for deco in others:
        if _is_compensate(source, deco):
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
                flags[arg.keyword.value] = bool(_static(scope, arg.value, f"@step({arg.keyword.value}=)"))
    decorators = []
    for deco in kept:
        with errors.guard():
            d = _decorator(scope, deco)
            _check_supported(d, "decorator")
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
        doc=_docstring(fn),
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
        return _switch(source, pos, positional, keyword)
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


def _switch(source, pos, positional, keyword) -> dict[str, Any]:
    if "condition" not in keyword:
        raise CodegenError(
            pos,
            "self.next() with a dict of cases (a switch) needs condition='attr'",
            "name the artifact whose value picks the case: "
            "self.next({'x': self.a, 'y': self.b}, condition='attr')",
        )
    if len(positional) != 1:
        raise CodegenError(pos, "a switch takes exactly one dict of cases", _FORMS)
    cond = keyword["condition"]
    if not isinstance(cond, cst.SimpleString):
        raise CodegenError(
            source.pos(cond),
            f"switch condition must be a string literal, got `{source.code(cond)}`",
            "write condition='attr' naming an artifact set on self",
        )
    cases = []
    for element in positional[0].value.elements:
        if not isinstance(element, cst.DictElement):
            raise CodegenError(source.pos(element), "dynamic switch cases", _FORMS)
        cases.append((_case_key(source, element.key), _self_step(source, element.value)))
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


def _start_end(name: str, pos: Pos, steps: list[m.Step]) -> tuple[str, str]:
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


def _typed(step: m.Step, start: str, end: str) -> m.Step:
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
