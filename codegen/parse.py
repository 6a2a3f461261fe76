"""Read flow files statically with libcst and build the flow model.

Nothing of the user's code is imported or executed: base classes defined in local
modules (``from common.pipeline import Pipeline``) are found on disk next to the flow
file and parsed the same way.
"""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from . import flow_decorators
from . import model as m
from .errors import CodegenError, Pos

METAFLOW = "metaflow"

# Metaflow step decorators that a task runs with unchanged: forwarded as written.
SUPPORTED_STEP_DECORATORS = frozenset(
    {
        "batch",
        "card",
        "catch",
        "environment",
        "kubernetes",
        "resources",
        "retry",
        "secrets",
        "timeout",
    }
)
SUPPORTED_FLOW_DECORATORS = frozenset({"project", "schedule"})
ENVIRONMENT_HINT = (
    "workers run tasks in their own Python and cannot build @pypi/@conda "
    "environments yet (Metaflow needs --environment=pypi for them); install the "
    "packages where the worker runs and remove the decorator"
)
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


@dataclass
class _ClassDef:
    """A class found in a source file, with enough context to resolve its bases."""

    node: cst.ClassDef
    source: _Source


@dataclass
class _Source:
    """One parsed file: its CST, positions and import table."""

    path: Path
    display: str
    module: cst.Module
    positions: Any
    # local name -> (module, original name); a plain ``import x`` maps x -> (x, "")
    imports: dict[str, tuple[str, str]] = field(default_factory=dict)
    classes: dict[str, cst.ClassDef] = field(default_factory=dict)
    functions: set[str] = field(default_factory=set)

    def pos(self, node: cst.CSTNode) -> Pos:
        start = self.positions[node].start
        return Pos(self.display, start.line, start.column + 1)

    def code(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node)


class _Loader:
    """Parses the flow file and, on demand, the local modules it imports from."""

    def __init__(self, root: Path):
        self.root = root
        self.cache: dict[Path, _Source] = {}

    def load(self, path: Path, display: str) -> _Source:
        path = path.resolve()
        if path not in self.cache:
            self.cache[path] = _read_source(path, display)
        return self.cache[path]

    def module_file(self, source: _Source, module: str) -> Path | None:
        """The file of a local module, looked up like Python would from the flow dir."""
        level = len(module) - len(module.lstrip("."))
        parts = module.lstrip(".").split(".") if module.strip(".") else []
        base = source.path.parent if level else self.root
        for _ in range(max(level - 1, 0)):
            base = base.parent
        candidate = base.joinpath(*parts)
        for path in (candidate.with_suffix(".py"), candidate / "__init__.py"):
            if parts and path.is_file():
                return path
        return None

    def resolve_class(self, source: _Source, expr: cst.BaseExpression):
        """Resolve a base-class expression to a local class, "FlowSpec", or None."""
        name = _dotted(expr)
        if name is None:
            return None
        head, _, rest = name.partition(".")
        if not rest and head in source.classes:
            return _ClassDef(source.classes[head], source)
        if head in source.imports:
            module, original = source.imports[head]
            target = original or ""
            if rest:
                module = f"{module}.{original}" if original else module
                module, _, target = f"{module}.{rest}".rpartition(".")
            if module.split(".")[0] == METAFLOW and target == "FlowSpec":
                return "FlowSpec"
            path = self.module_file(source, module)
            if path is None:
                return None
            display = _display(path, self.root, source)
            other = self.load(path, display)
            if target in other.classes:
                return _ClassDef(other.classes[target], other)
            if target in other.imports:
                return self.resolve_class(other, cst.Name(target))
        return None


def _display(path: Path, root: Path, source: _Source) -> str:
    try:
        rel = path.resolve().relative_to(source.path.parent.resolve())
        return str(Path(source.display).parent / rel)
    except ValueError:
        return str(path)


def _read_source(path: Path, display: str) -> _Source:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CodegenError(Pos(display, 1, 1), f"cannot read file: {exc}") from None
    syntax_hint = "fix the syntax error; the file must run under `python flow.py`"
    try:
        # CPython's own message and position (what `python flow.py` prints).
        compile(text, display, "exec", ast.PyCF_ONLY_AST)
    except SyntaxError as exc:
        raise CodegenError(
            Pos(display, exc.lineno or 1, exc.offset or 1),
            f"invalid Python: {exc.msg}",
            syntax_hint,
        ) from None
    except ValueError as exc:  # e.g. null bytes in the source
        raise CodegenError(Pos(display, 1, 1), f"invalid Python: {exc}", syntax_hint) from None
    try:
        module = cst.parse_module(text)
    except cst.ParserSyntaxError as exc:
        raise CodegenError(
            Pos(display, exc.raw_line, exc.raw_column + 1),
            f"invalid Python: {exc.message}",
            syntax_hint,
        ) from None
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    source = _Source(path, display, module, wrapper.resolve(PositionProvider))
    for stmt in module.body:
        _index_statement(source, stmt)
    return source


def _index_statement(source: _Source, stmt: cst.CSTNode) -> None:
    if isinstance(stmt, cst.ClassDef):
        source.classes[stmt.name.value] = stmt
    elif isinstance(stmt, cst.FunctionDef):
        source.functions.add(stmt.name.value)
    elif isinstance(stmt, cst.SimpleStatementLine):
        for small in stmt.body:
            if isinstance(small, cst.ImportFrom) and not isinstance(
                small.names, cst.ImportStar
            ):
                module = "." * len(small.relative) + (_dotted(small.module) or "")
                for alias in small.names:
                    original = _dotted(alias.name)
                    local = _dotted(alias.asname.name) if alias.asname else original
                    source.imports[local] = (module, original)
            elif isinstance(small, cst.Import):
                for alias in small.names:
                    dotted = _dotted(alias.name)
                    if alias.asname:
                        source.imports[_dotted(alias.asname.name)] = (dotted, "")
                    else:
                        head = dotted.split(".")[0]
                        source.imports[head] = (head, "")


def _dotted(expr: cst.CSTNode | None) -> str | None:
    if isinstance(expr, cst.Name):
        return expr.value
    if isinstance(expr, cst.Attribute):
        head = _dotted(expr.value)
        return f"{head}.{expr.attr.value}" if head else None
    return None


def _literal(source: _Source, expr: cst.BaseExpression, what: str) -> Any:
    try:
        return ast.literal_eval(source.code(expr))
    except (ValueError, SyntaxError):
        raise CodegenError(
            source.pos(expr),
            f"{what} must be a literal, got `{source.code(expr)}`",
            "the generator reads the flow statically; use a literal value here",
        ) from None


def _origin(source: _Source, name: str) -> tuple[str, str]:
    """(origin module, bare name) of a decorator or callable named in ``source``."""
    head, _, rest = name.partition(".")
    if head in source.imports:
        module, original = source.imports[head]
        if rest:
            return module.split(".")[0], rest.split(".")[-1]
        return module, original
    if name in source.functions or name in source.classes:
        return source.path.stem, name
    return "", name


def _is_metaflow(
    source: _Source, expr: cst.BaseExpression, name: str, package: str = METAFLOW
) -> bool:
    """Whether ``expr`` names ``name`` imported from ``package`` (or a submodule)."""
    dotted = _dotted(expr)
    if dotted is None:
        return False
    origin, bare = _origin(source, dotted)
    return origin.split(".")[0] == package and bare == name


# ---------------------------------------------------------------------------
# Flow classes


def load_flows(path: Path, display: str | None = None) -> list[m.Flow]:
    """Every flow class defined in ``path``, fully resolved, in source order."""
    display = display or str(path)
    loader = _Loader(path.resolve().parent)
    source = loader.load(path, display)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    flows = []
    candidates = [_ClassDef(c, source) for c in source.classes.values()]
    flow_classes = [c for c in candidates if _lineage(loader, c) is not None]
    subclassed = {
        _dotted(base.value)
        for c in flow_classes
        for base in c.node.bases
        if _dotted(base.value)
    }
    for cls in flow_classes:
        if cls.node.name.value in subclassed:
            continue
        flows.append(_build_flow(loader, cls, sha))
    if not flows:
        raise CodegenError(
            Pos(display, 1, 1),
            "no Metaflow flow found: no class derives from metaflow.FlowSpec",
            "define `class MyFlow(FlowSpec)` with `from metaflow import FlowSpec`",
        )
    return flows


def _lineage(loader: _Loader, cls: _ClassDef) -> list[_ClassDef] | None:
    """Classes from the most basic flow class to ``cls``; None if not a FlowSpec."""
    for base in cls.node.bases:
        resolved = loader.resolve_class(cls.source, base.value)
        if resolved == "FlowSpec":
            return [cls]
        if isinstance(resolved, _ClassDef):
            chain = _lineage(loader, resolved)
            if chain is not None:
                return chain + [cls]
    return None


def _build_flow(loader: _Loader, cls: _ClassDef, sha: str) -> m.Flow:
    steps: dict[str, m.Step] = {}
    params: dict[str, m.Parameter] = {}
    configs: dict[str, m.Config] = {}
    decorators: dict[str, m.Decorator] = {}
    handlers: dict[str, m.Compensation] = {}
    for link in _lineage(loader, cls):
        for deco in link.node.decorators:
            d = _decorator(link.source, deco)
            _check_supported(d, "flow decorator", SUPPORTED_FLOW_DECORATORS)
            decorators[d.name] = d
        for stmt in link.node.body.body:
            if isinstance(stmt, cst.FunctionDef):
                name = stmt.name.value
                steps.pop(name, None)
                handlers.pop(name, None)
                step = _step(link.source, stmt)
                handler = _compensation(link.source, stmt)
                if step is not None:
                    steps[name] = step
                elif handler is not None:
                    handlers[name] = handler
            elif isinstance(stmt, cst.SimpleStatementLine):
                for small in stmt.body:
                    _class_attribute(link.source, small, params, configs)
    source = cls.source
    name = cls.node.name.value
    pos = source.pos(cls.node.name)
    if not steps:
        raise CodegenError(pos, f"flow {name} has no @step methods")
    ordered = sorted(steps.values(), key=lambda s: (s.pos.file, s.pos.line))
    start, end = _start_end(name, pos, ordered)
    typed = tuple(_typed(s, start, end) for s in ordered)
    parameters = tuple(sorted(params.values(), key=lambda p: p.name))
    return m.Flow(
        name=name,
        file=source.display,
        sha256=sha,
        pos=pos,
        doc=_docstring(cls.node),
        parameters=parameters,
        configs=tuple(sorted(configs.values(), key=lambda c: c.name)),
        decorators=tuple(sorted(decorators.values(), key=lambda d: d.name)),
        steps=typed,
        start=start,
        end=end,
        compensations=_one_per_step(handlers.values()),
        schedule=flow_decorators.schedule(decorators.get("schedule"), parameters),
        project=flow_decorators.project(decorators.get("project")),
    )


def _one_per_step(handlers) -> tuple[m.Compensation, ...]:
    """The compensations sorted by step; two for one step is an error."""
    by_step: dict[str, m.Compensation] = {}
    for handler in sorted(handlers, key=lambda h: h.pos):
        first = by_step.setdefault(handler.step, handler)
        if first is not handler:
            raise CodegenError(
                handler.pos,
                f"step {handler.step} already has a compensation: {first.handler} "
                f"({first.pos})",
                "give each step at most one @compensate method",
            )
    return tuple(by_step[name] for name in sorted(by_step))


def _docstring(node: cst.ClassDef | cst.FunctionDef) -> str:
    doc = node.get_docstring(clean=True)
    return doc or ""


def _check_supported(d: m.Decorator, what: str, supported: frozenset[str], extra: str = "") -> None:
    """Reject a Metaflow decorator the generated workflow cannot honour."""
    if d.origin != METAFLOW:
        return
    if d.name in UNSUPPORTED_HINTS:
        raise CodegenError(d.pos, f"unsupported {what} @{d.name}", UNSUPPORTED_HINTS[d.name])
    if d.name not in supported:
        raise CodegenError(
            d.pos,
            f"unsupported {what} @{d.name}",
            f"supported Metaflow {what}s: "
            + ", ".join(f"@{n}" for n in sorted(supported))
            + extra,
        )


def _class_attribute(source, small, params, configs) -> None:
    if not (
        isinstance(small, cst.Assign)
        and len(small.targets) == 1
        and isinstance(small.targets[0].target, cst.Name)
        and isinstance(small.value, cst.Call)
    ):
        return
    attr = small.targets[0].target.value
    call = small.value
    if _is_metaflow(source, call.func, "Parameter"):
        params[attr] = _parameter(source, attr, call)
    elif _is_metaflow(source, call.func, "Config"):
        name = _call_name(source, call, attr)
        keyword = {a.keyword.value: a.value for a in call.args if a.keyword}
        plain = "plain" in keyword and bool(_literal(source, keyword["plain"], "plain"))
        configs[attr] = m.Config(attr, name, source.pos(small), plain)
    elif _is_metaflow(source, call.func, "IncludeFile"):
        raise CodegenError(
            source.pos(call),
            "IncludeFile parameters are not supported yet",
            "read the file in the start step, or use a Config",
        )


def _call_name(source: _Source, call: cst.Call, attr: str) -> str:
    positional = [a for a in call.args if a.keyword is None]
    keyword = {a.keyword.value: a.value for a in call.args if a.keyword}
    expr = positional[0].value if positional else keyword.get("name")
    if expr is None:
        raise CodegenError(source.pos(call), f"{attr}: a name is required")
    return _literal(source, expr, "the name")


JSON_TYPES = {"JSONType", "JSONTypeClass"}


def _parameter(source: _Source, attr: str, call: cst.Call) -> m.Parameter:
    name = _call_name(source, call, attr)
    keyword = {a.keyword.value: a.value for a in call.args if a.keyword}
    has_default = "default" in keyword
    default = None
    if has_default:
        expr = keyword["default"]
        try:
            default = ast.literal_eval(source.code(expr))
        except (ValueError, SyntaxError):
            raise CodegenError(
                source.pos(expr),
                f"Parameter {name!r}: the default must be a literal, "
                f"got `{source.code(expr)}`",
                "deploy-time defaults (functions, config_expr) are not supported "
                "yet; use a literal default",
            ) from None
    ptype = _parameter_type(source, name, keyword.get("type"), default)
    required = bool(
        _literal(source, keyword["required"], "required")
        if "required" in keyword
        else False
    )
    help_text = (
        _literal(source, keyword["help"], "help") if "help" in keyword else ""
    ) or ""
    return m.Parameter(
        attr=attr,
        name=name,
        type=ptype,
        default=default,
        has_default=has_default and default is not None,
        required=required,
        help=str(help_text),
        pos=source.pos(call),
    )


def _parameter_type(source, name, type_expr, default) -> str:
    if type_expr is not None:
        dotted = _dotted(type_expr) or ""
        bare = dotted.split(".")[-1]
        if bare in ("str", "int", "float", "bool"):
            return bare
        if bare in JSON_TYPES:
            return "json"
        raise CodegenError(
            source.pos(type_expr),
            f"Parameter {name!r}: unsupported type `{source.code(type_expr)}`",
            "use str, int, float, bool or metaflow.JSONType",
        )
    for pytype in (bool, int, float, str):
        if isinstance(default, pytype):
            return pytype.__name__
    if isinstance(default, (dict, list)):
        return "json"
    return "str"


def _decorator(source: _Source, deco: cst.Decorator) -> m.Decorator:
    expr = deco.decorator
    call = expr if isinstance(expr, cst.Call) else None
    dotted = _dotted(call.func if call else expr)
    if dotted is None:
        raise CodegenError(
            source.pos(deco),
            f"cannot read decorator `@{source.code(expr)}`",
            "use a plain @name or @name(...) decorator",
        )
    origin, name = _origin(source, dotted)
    kwargs: list[tuple[str, Any]] = []
    arg_pos: list[tuple[str, Pos]] = []
    positional = []
    for arg in call.args if call else ():
        value = _decorator_value(source, arg.value)
        if arg.keyword is None:
            positional.append(value)
        else:
            kwargs.append((arg.keyword.value, value))
            arg_pos.append((arg.keyword.value, source.pos(arg.value)))
    if positional:
        kwargs.append(("_args", tuple(positional)))
    return m.Decorator(name, origin, tuple(kwargs), source.pos(deco), tuple(arg_pos))


@dataclass(frozen=True)
class SourceExpr:
    """A decorator argument that is not a literal, kept as its source text."""

    code: str

    def __repr__(self) -> str:
        return self.code


def _decorator_value(source: _Source, expr: cst.BaseExpression) -> Any:
    try:
        return ast.literal_eval(source.code(expr))
    except (ValueError, SyntaxError):
        return SourceExpr(source.code(expr))


# ---------------------------------------------------------------------------
# Compensations

COMPENSATE_MODULE = "mf_temporal_codegen"


def _is_compensate(source: _Source, deco: cst.Decorator) -> bool:
    expr = deco.decorator
    target = expr.func if isinstance(expr, cst.Call) else expr
    return _is_metaflow(source, target, "compensate", COMPENSATE_MODULE)


def _compensation(source: _Source, fn: cst.FunctionDef) -> m.Compensation | None:
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


def _step(source: _Source, fn: cst.FunctionDef) -> m.Step | None:
    step_deco = None
    others = []
    for deco in fn.decorators:
        expr = deco.decorator
        target = expr.func if isinstance(expr, cst.Call) else expr
        if _is_metaflow(source, target, "step"):
            step_deco = deco
        else:
            others.append(deco)
    if step_deco is None:
        return None
    for deco in others:
        if _is_compensate(source, deco):
            raise CodegenError(
                source.pos(deco),
                f"step {fn.name.value} cannot also be a compensation",
                "put the undo logic in a separate method without @step",
            )
    flags = {}
    if isinstance(step_deco.decorator, cst.Call):
        for arg in step_deco.decorator.args:
            if arg.keyword and arg.keyword.value in ("start", "end"):
                flags[arg.keyword.value] = bool(
                    _literal(source, arg.value, f"@step({arg.keyword.value}=)")
                )
    decorators = tuple(_decorator(source, d) for d in others)
    for d in decorators:
        _check_supported(d, "decorator", SUPPORTED_STEP_DECORATORS, " (and your own step decorators)")
    name = fn.name.value
    num_args = len(fn.params.posonly_params) + len(fn.params.params)
    transition = _transition(source, fn)
    return m.Step(
        name=name,
        kind="",
        next=transition.get("next", ()),
        num_args=num_args,
        decorators=decorators,
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
    if _dotted(last.value.func) != "self.next":
        return None
    return last.value


def _self_step(source: _Source, expr: cst.BaseExpression) -> str:
    dotted = _dotted(expr)
    if dotted and dotted.startswith("self.") and dotted.count(".") == 1:
        return dotted.split(".")[1]
    raise CodegenError(
        source.pos(expr),
        f"dynamic transition `{source.code(expr)}` in self.next()",
        "name the next step statically as self.<step>; " + _FORMS,
    )


def _transition(source: _Source, fn: cst.FunctionDef) -> dict[str, Any]:
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


def _case_key(source: _Source, key: cst.BaseExpression) -> str:
    dotted = _dotted(key)
    if dotted and dotted.startswith("self.") and dotted.count(".") == 2:
        _, config, item = dotted.split(".")
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
