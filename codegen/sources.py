"""The flow file and the modules it imports, read with libcst, and what their names mean.

Names are resolved the way Python binds them, without running anything: a
``from common.pipeline import Pipeline`` is followed to the file ``imports.Finder``
locates (flow directory, ``--path``, ``PYTHONPATH``, installed packages), relative
imports from the importing module's own package. What a name can resolve to:

- ``ClassRef``: a class statement in some file (a base class of a flow);
- ``Value``: a module-level name bound exactly once, unconditionally, by a plain
  assignment (a candidate constant; only in local code, never in installed packages);
- ``Function``: a module-level ``def``;
- ``ModuleRef``: a module; ``MetaflowName``: something imported from Metaflow (never
  looked up: ``metaflow.FlowSpec`` is known by name);
- ``Missing``: an import Python would fail on (with the error to report);
- ``OPAQUE``: something that exists but cannot be read statically (compiled or
  standard library modules, names bound twice or inside ``if``/``for``/``try``).
"""

from __future__ import annotations

import gc
import io
import os
import sys
import tokenize
from contextlib import contextmanager
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Iterator, Union

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from .errors import CodegenError, Pos
from .imports import Finder, Module, SearchPath

METAFLOW = "metaflow"
SYNTAX_HINT = "fix the syntax error; the file must run under `python flow.py`"
DEPTH_HINT = "split deeply nested expressions or blocks into smaller pieces"
# how deep name resolution follows re-exports (import cycles end here)
MAX_DEPTH = 40


@dataclass(eq=False)
class Source:
    """One parsed file: its CST, positions, imports and module-level names."""

    path: Path
    display: str
    # how generated code cites this file (see errors.Pos.cite)
    cite: str
    module: cst.Module
    positions: Any
    # dotted module name ("__main__" for the flow file) and its package (None: none)
    name: str = "__main__"
    package: str | None = None
    # the flow's own code (flow directory, --path, PYTHONPATH): constants are read
    local: bool = True
    # local name -> (module, original name); a plain ``import x.y`` maps x -> (x, "")
    imports: dict[str, tuple[str, str]] = field(default_factory=dict)
    import_nodes: dict[str, cst.CSTNode] = field(default_factory=dict)
    # ``from metaflow import *``: every name not bound otherwise is Metaflow's
    metaflow_star: bool = False
    classes: dict[str, cst.ClassDef] = field(default_factory=dict)
    functions: dict[str, cst.FunctionDef] = field(default_factory=dict)
    _counts: Counter[str] | None = None
    _assigned: dict[str, cst.BaseExpression] = field(default_factory=dict)
    _star: bool = False

    def pos(self, node: cst.CSTNode) -> Pos:
        start = self.positions[node].start
        return Pos(self.display, start.line, start.column + 1, self.cite)

    def code(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node)

    def _index(self) -> Counter[str]:
        """How often module-level statements bind each name (computed once)."""
        if self._counts is None:
            self._counts, self._assigned, self._star = bindings(self.module.body)
            if "global" in self.module.code:
                for name in _globals(self.module):
                    self._counts[name] += 2
        return self._counts

    def constant(self, name: str) -> cst.BaseExpression | None:
        """The value of ``name`` if a plain assignment binds it once, unconditionally."""
        if self._index()[name] == 1:
            return self._assigned.get(name)
        return None

    def stable(self, name: str) -> bool:
        """Whether ``name`` is bound exactly once at module level, unconditionally."""
        return self._index()[name] == 1

    def binds(self, name: str) -> bool:
        """Whether anything at module level binds ``name`` (or a star import might)."""
        return self._index()[name] > 0 or self._star


def bindings(
    statements: Any,
) -> tuple[Counter[str], dict[str, cst.BaseExpression], bool]:
    """For a module or class body: how often each name is bound (a binding inside
    ``if``/``for``/``try``/... counts 2), the value of each name a plain assignment
    binds, and whether a star import binds unknown names."""
    binder = _Binder()
    assigned: dict[str, cst.BaseExpression] = {}
    for stmt in statements:
        simple = isinstance(
            stmt, (cst.SimpleStatementLine, cst.ClassDef, cst.FunctionDef)
        )
        binder.weight = 1 if simple else 2
        stmt.visit(binder)
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                _note_assignment(small, assigned)
    return binder.counts, assigned, binder.star


def _note_assignment(
    small: cst.BaseSmallStatement, assigned: dict[str, cst.BaseExpression]
) -> None:
    if isinstance(small, cst.Assign):
        for target in small.targets:
            if isinstance(target.target, cst.Name):
                assigned[target.target.value] = small.value
    elif isinstance(small, cst.AnnAssign) and small.value is not None:
        if isinstance(small.target, cst.Name):
            assigned[small.target.value] = small.value


def _target_names(target: cst.CSTNode) -> list[str]:
    if isinstance(target, cst.Name):
        return [target.value]
    if isinstance(target, (cst.Tuple, cst.List)):
        return [n for e in target.elements for n in _target_names(e.value)]
    if isinstance(target, cst.StarredElement):
        return _target_names(target.value)
    return []


class _Binder(cst.CSTVisitor):
    """Counts the module-level bindings of each name (2 for a conditional one)."""

    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self.weight = 1
        self.star = False

    def _bind(self, names: list[str], weight: int | None = None) -> None:
        for name in names:
            self.counts[name] += weight or self.weight

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        self._bind(_target_names(node.target))

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._bind(_target_names(node.target))

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._bind(_target_names(node.target), 2)

    def visit_For(self, node: cst.For) -> None:
        self._bind(_target_names(node.target), 2)

    def visit_WithItem(self, node: cst.WithItem) -> None:
        if node.asname is not None:
            self._bind(_target_names(node.asname.name))

    def visit_ExceptHandler(self, node: cst.ExceptHandler) -> None:
        if node.name is not None:
            self._bind(_target_names(node.name.name), 2)

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self._bind(_target_names(node.target), 2)

    def visit_Del(self, node: cst.Del) -> None:
        self._bind(_target_names(node.target), 2)

    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            self._bind([(alias.evaluated_alias or alias.evaluated_name).split(".")[0]])

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        if isinstance(node.names, cst.ImportStar):
            self.star = True
            return
        for alias in node.names:
            self._bind([alias.evaluated_alias or alias.evaluated_name])

    def visit_MatchAs(self, node: cst.MatchAs) -> None:
        if node.name is not None:
            self._bind([node.name.value], 2)

    def visit_MatchStar(self, node: cst.MatchStar) -> None:
        if node.name is not None:
            self._bind([node.name.value], 2)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        self._bind([node.name.value])
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        self._bind([node.name.value])
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def visit_ListComp(self, node: cst.ListComp) -> bool:
        return False

    def visit_SetComp(self, node: cst.SetComp) -> bool:
        return False

    def visit_DictComp(self, node: cst.DictComp) -> bool:
        return False

    def visit_GeneratorExp(self, node: cst.GeneratorExp) -> bool:
        return False


def _globals(module: cst.Module) -> set[str]:
    """Names some function declares ``global`` (it may rebind them)."""
    found: set[str] = set()

    class Visitor(cst.CSTVisitor):
        def visit_Global(self, node: cst.Global) -> None:
            found.update(n.name.value for n in node.names)

    module.visit(Visitor())
    return found


def _dotted(expr: cst.CSTNode | None) -> str | None:
    if isinstance(expr, cst.Name):
        return expr.value
    if isinstance(expr, cst.Attribute):
        head = _dotted(expr.value)
        return f"{head}.{expr.attr.value}" if head else None
    return None


dotted = _dotted


def callee(deco: cst.Decorator) -> cst.BaseExpression:
    """What a decorator names: ``step`` for ``@step`` and ``@step(start=True)``."""
    expr = deco.decorator
    return expr.func if isinstance(expr, cst.Call) else expr


def docstring(node: cst.ClassDef | cst.FunctionDef) -> str:
    """The class's or function's cleaned docstring, "" without one."""
    return node.get_docstring(clean=True) or ""


def origin(source: Source, name: str) -> tuple[str, str]:
    """(origin module, bare name) of a decorator or callable named in ``source``."""
    head, _, rest = name.partition(".")
    if head in source.imports:
        module, original = source.imports[head]
        module = absolute_module(source, module) or module
        if rest:
            return module.split(".")[0], rest.split(".")[-1]
        return module, original
    if name in source.functions or name in source.classes:
        return source.name if source.name != "__main__" else source.path.stem, name
    if source.metaflow_star and not source.stable(head):
        return METAFLOW, name.split(".")[-1]
    return "", name


def absolute_module(source: Source, module: str) -> str | None:
    """The absolute name of ``module`` as imported in ``source``; None if a relative
    import cannot be resolved (no package, or beyond the top-level package)."""
    level = len(module) - len(module.lstrip("."))
    rest = module[level:]
    if not level:
        return rest
    parts = source.package.split(".") if source.package else []
    if level - 1 >= len(parts):
        return None
    base = ".".join(parts[: len(parts) - (level - 1)])
    return f"{base}.{rest}" if rest else base


def is_metaflow(
    source: Source, expr: cst.BaseExpression, name: str, package: str = METAFLOW
) -> bool:
    """Whether ``expr`` names ``name`` imported from ``package`` (or a submodule)."""
    name_of = _dotted(expr)
    if name_of is None:
        return False
    module, bare = origin(source, name_of)
    return module.split(".")[0] == package and bare == name


def read_source(path: Path, display: str, cite: str, **fields: Any) -> Source:
    """Parse ``path``; a file that is not valid Python is an error at CPython's position."""
    text = _read_text(path, display, cite)
    try:
        # CPython's own message and position (what `python flow.py` prints): the
        # whole compiler (`return` outside a function is the compiler's error), at
        # the recursion limit of a fresh interpreter (how deeply it may nest)
        with _recursion_limit(PYTHON_RECURSION_LIMIT):
            compile(text, display, "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise CodegenError(
            Pos(display, exc.lineno or 1, exc.offset or 1, cite),
            f"invalid Python: {exc.msg}",
            SYNTAX_HINT,
        ) from None
    except (MemoryError, RecursionError):
        raise CodegenError(
            Pos(display, 1, 1, cite),
            "invalid Python: the file nests too deeply to compile (`python flow.py` fails "
            "with RecursionError too)",
            DEPTH_HINT,
        ) from None
    except ValueError as exc:
        raise CodegenError(
            Pos(display, 1, 1, cite), f"invalid Python: {exc}", SYNTAX_HINT
        ) from None
    try:
        # libcst makes a great many objects and no garbage cycles: collecting
        # while it runs only costs time (a third of it on a 10,000-step flow)
        with _no_gc():
            module = cst.parse_module(text)
            positions = _positions(module)
    except cst.ParserSyntaxError as exc:
        raise CodegenError(
            Pos(display, exc.raw_line, exc.raw_column + 1, cite),
            f"invalid Python: {exc.message}",
            SYNTAX_HINT,
        ) from None
    except RecursionError:
        raise CodegenError(
            Pos(display, 1, 1, cite), "the file nests too deeply to be read", DEPTH_HINT
        ) from None
    source = Source(path, display, cite, module, positions, **fields)
    for stmt in module.body:
        _index_statement(source, stmt)
    return source


# sys.getrecursionlimit() of a fresh `python flow.py`
PYTHON_RECURSION_LIMIT = 1000


def _positions(module: cst.Module) -> Any:
    """``PositionProvider``'s mapping, as ``MetadataWrapper.resolve`` computes it;
    but resolve then walks the whole tree once more for batchable providers even
    when there are none (half the time on a big file), so the provider is run
    directly where libcst allows it."""
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    gen = getattr(PositionProvider, "_gen", None)
    if gen is None or PositionProvider.METADATA_DEPENDENCIES:
        return wrapper.resolve(PositionProvider)
    return PositionProvider()._gen(wrapper)


@contextmanager
def _no_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def _recursion_limit(limit: int) -> Iterator[None]:
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(limit)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


ENCODING_HINT = (
    "save the file as UTF-8, or declare its encoding on the first or second line "
    "(`# -*- coding: latin-1 -*-`), as Python requires (PEP 263)"
)


def _read_text(path: Path, display: str, cite: str) -> str:
    """The file's text, decoded as Python decodes a source file (a BOM or a PEP 263
    coding declaration, else UTF-8), with universal newlines."""
    where = Pos(display, 1, 1, cite)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CodegenError(
            where, "no such file", "check the path of the flow file"
        ) from None
    except IsADirectoryError:
        raise CodegenError(
            where,
            "is a directory, not a flow file",
            "name the flow's .py file (e.g. flows/my_flow.py)",
        ) from None
    except OSError as exc:
        raise CodegenError(
            where,
            f"cannot read file: {exc.strerror or exc}",
            "check that the file exists and is readable",
        ) from None
    null = data.find(b"\0")
    if null >= 0:
        line, col = _line_col(data, null)
        raise CodegenError(
            Pos(display, line, col, cite),
            "invalid Python: the file contains a NUL byte (source code cannot contain null bytes)",
            "remove the NUL byte; is this a binary file or saved in UTF-16?",
        )
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        if not str(exc.msg).startswith("invalid or missing encoding declaration"):
            # an unknown encoding, or a BOM that contradicts the declared one
            raise CodegenError(
                Pos(display, exc.lineno or 1, 1, cite),
                f"invalid Python: {exc.msg}",
                ENCODING_HINT,
            ) from None
        encoding = "utf-8"  # a first line that is not UTF-8: reported below
    try:
        return io.TextIOWrapper(io.BytesIO(data), encoding, newline=None).read()
    except UnicodeDecodeError as exc:
        line, col = _line_col(data, exc.start)
        declared = (
            "no encoding declared" if encoding == "utf-8" else f"declared {encoding}"
        )
        raise CodegenError(
            Pos(display, line, col, cite),
            f"invalid Python: byte {data[exc.start]:#04x} is not {exc.encoding} ({declared})",
            ENCODING_HINT,
        ) from None


def _line_col(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column of a byte offset."""
    line_start = max(data.rfind(b"\n", 0, offset), data.rfind(b"\r", 0, offset)) + 1
    return data.count(b"\n", 0, offset) + 1, offset - line_start + 1


def _index_statement(source: Source, stmt: cst.CSTNode) -> None:
    if isinstance(stmt, cst.ClassDef):
        source.classes[stmt.name.value] = stmt
    elif isinstance(stmt, cst.FunctionDef):
        source.functions[stmt.name.value] = stmt
    elif isinstance(stmt, cst.SimpleStatementLine):
        for small in stmt.body:
            if isinstance(small, cst.ImportFrom) and isinstance(
                small.names, cst.ImportStar
            ):
                if (
                    not small.relative
                    and (_dotted(small.module) or "").split(".")[0] == METAFLOW
                ):
                    source.metaflow_star = True
            elif isinstance(small, cst.ImportFrom) and not isinstance(
                small.names, cst.ImportStar
            ):
                module = "." * len(small.relative) + (_dotted(small.module) or "")
                for alias in small.names:
                    original = alias.evaluated_name
                    local = alias.evaluated_alias or original
                    source.imports[local] = (module, original)
                    source.import_nodes[local] = small
            elif isinstance(small, cst.Import):
                for alias in small.names:
                    name = alias.evaluated_name
                    local = alias.evaluated_alias or name.split(".")[0]
                    source.imports[local] = (
                        name if alias.evaluated_alias else local,
                        "",
                    )
                    source.import_nodes[local] = small


# ---------------------------------------------------------------------------
# What a name means


@dataclass(frozen=True, eq=False)
class ClassRef:
    """A class statement found in some file."""

    node: cst.ClassDef
    source: Source

    @property
    def name(self) -> str:
        return self.node.name.value


@dataclass(frozen=True)
class Value:
    """A module-level name bound once by ``name = <expr>``."""

    expr: cst.BaseExpression
    source: Source
    name: str


@dataclass(frozen=True)
class Function:
    """A module-level ``def``."""

    source: Source
    name: str


@dataclass(frozen=True)
class ModuleRef:
    module: Module


@dataclass(frozen=True)
class MetaflowName:
    """A name from the ``metaflow`` package ("" for the package itself)."""

    name: str


@dataclass(frozen=True)
class ClassAttr:
    """An attribute of a class (e.g. ``Base.config``)."""

    cls: ClassRef
    attr: str


@dataclass(frozen=True)
class Missing:
    """An import Python would fail on; ``pos`` None: at the name that needs it."""

    message: str
    hint: str
    pos: Pos | None = None

    def error(self, pos: Pos) -> CodegenError:
        return CodegenError(self.pos or pos, self.message, self.hint)


class _Opaque:
    def __repr__(self) -> str:
        return "OPAQUE"


OPAQUE = _Opaque()
Symbol = Union[
    ClassRef,
    Value,
    Function,
    ModuleRef,
    MetaflowName,
    ClassAttr,
    Missing,
    _Opaque,
    None,
]


class Loader:
    """Parses the flow file and, on demand, the modules its names lead to.

    Every path is made from the flow file's ``Path`` type, so when that is the
    generation cache's tracked path every file read and probe is recorded."""

    def __init__(self, flow_path: Path, display: str, search: SearchPath):
        make = type(flow_path)
        self.flow_path = flow_path
        self.flow_display = display
        # sys.path[0] of `python flow.py`: the script's directory, symlinks resolved
        self.flow_dir = flow_path.resolve().parent
        self.finder = Finder(
            [(self.flow_dir, True)]
            + [(make(d), True) for d in search.local]
            + [(make(d), False) for d in search.installed]
        )
        self.cwd = os.getcwd()
        self.cache: dict[str, Source] = {}

    def flow(self) -> Source:
        cite = PurePath(self.flow_display).name
        return self._load(
            self.flow_path,
            self.flow_display,
            cite,
            name="__main__",
            package=None,
            local=True,
        )

    def _load(self, path: Path, display: str, cite: str, **fields: Any) -> Source:
        key = str(path.resolve())
        if key not in self.cache:
            self.cache[key] = read_source(path, display, cite, **fields)
        return self.cache[key]

    def module_source(self, module: Module) -> Source | None:
        """The parsed source of ``module`` (None: a namespace package or compiled)."""
        if module.file is None:
            return None
        package = (
            module.name if module.is_package else module.name.rpartition(".")[0] or None
        )
        return self._load(
            module.file,
            self.display(module.file),
            self._cite(module.file, module.root),
            name=module.name,
            package=package,
            local=module.local,
        )

    def display(self, path: Path | str) -> str:
        """How errors name ``path``: relative to the working directory when the flow
        was named relatively and the file is below it, else absolute."""
        absolute = os.path.abspath(path)
        if os.path.isabs(self.flow_display):
            return absolute
        rel = os.path.relpath(absolute, self.cwd)
        return (
            absolute if rel.split(os.sep)[0] == os.pardir else PurePath(rel).as_posix()
        )

    def _cite(self, path: Path, root: Path) -> str:
        """A module's file relative to the flow's directory when below it, else to
        the import ``root`` it was found under (e.g. ``common/pipeline.py``)."""
        file = os.path.abspath(path)
        for base in (str(self.flow_dir), os.path.abspath(root)):
            rel = os.path.relpath(file, base)
            if rel.split(os.sep)[0] != os.pardir:
                return PurePath(rel).as_posix()
        return PurePath(file).name

    def searched(self) -> str:
        """The directories searched for a top-level module, for messages."""
        return ", ".join(self.display(d) or "." for d in self.finder.directories())

    # -- resolution

    def resolve(
        self, source: Source, name: str, values: bool = False, depth: int = 0
    ) -> Symbol:
        """What the dotted ``name`` means in ``source``'s module scope.

        With ``values``, module constants are resolved too, but only in local code
        (installed packages are located for base classes only)."""
        head, *rest = name.split(".")
        symbol = self._name(source, head, values, depth)
        for attr in rest:
            symbol = self._attribute(symbol, attr, values, depth)
        return symbol

    def resolve_import(self, source: Source, name: str) -> Symbol:
        """What the dotted ``name`` means through the import that binds its first
        part in ``source`` (not a class statement of the same name)."""
        head, *rest = name.split(".")
        symbol = self._imported(source, head, False, 0)
        for attr in rest:
            symbol = self._attribute(symbol, attr, False, 0)
        return symbol

    def _name(self, source: Source, name: str, values: bool, depth: int) -> Symbol:
        if depth > MAX_DEPTH:
            return OPAQUE
        if name in source.classes and not values:
            return ClassRef(source.classes[name], source)
        if name in source.imports:
            if values and not source.stable(name):
                return OPAQUE
            return self._imported(source, name, values, depth)
        if values and not source.stable(name):
            return OPAQUE if source.binds(name) else None
        if name in source.classes:
            return ClassRef(source.classes[name], source)
        if name in source.functions:
            return Function(source, name)
        if source.metaflow_star and not source.stable(name):
            return MetaflowName(name)
        if values:
            expr = source.constant(name)
            return Value(expr, source, name) if expr is not None else OPAQUE
        return None

    def _imported(self, source: Source, name: str, values: bool, depth: int) -> Symbol:
        module, original = source.imports[name]
        node = source.import_nodes[name]
        statement = source.code(node).strip()
        absolute = self._absolute(source, module)
        if isinstance(absolute, Missing):
            return Missing(
                absolute.message.format(statement=statement),
                absolute.hint,
                source.pos(node),
            )
        if absolute.split(".")[0] == METAFLOW:
            rest = absolute.partition(".")[2]
            return MetaflowName(".".join(p for p in (rest, original) if p))
        found = self.finder.find(absolute)
        if found is None:
            return self._not_found(source, node, statement, absolute)
        if not original:
            return ModuleRef(found)
        member = self.member(found, original, values, depth + 1)
        if isinstance(member, Missing) and member.pos is None:
            return Missing(member.message, member.hint, source.pos(node))
        return member

    def _not_found(
        self, source: Source, node: cst.CSTNode, statement: str, absolute: str
    ) -> Missing:
        parts = absolute.split(".")
        missing = next(
            ".".join(parts[:i])
            for i in range(1, len(parts) + 1)
            if self.finder.find(".".join(parts[:i])) is None
        )
        # the package above the missing module was found: its directories were searched
        parent = (
            self.finder.find(missing.rpartition(".")[0]) if "." in missing else None
        )
        if parent is None:
            where = f"searched {self.searched()}"
        else:
            where = "searched " + ", ".join(self.display(p) for p in parent.locations)
        return Missing(
            f"cannot find module {missing!r} for `{statement}` ({where})",
            "the generator looks for imports as `python flow.py` does (the flow's "
            "directory, then PYTHONPATH, then installed packages) without importing "
            "them; add the directory that holds it with --path DIR or PYTHONPATH=DIR",
            source.pos(node),
        )

    def _absolute(self, source: Source, module: str) -> str | Missing:
        absolute = absolute_module(source, module)
        if absolute is not None:
            return absolute
        if source.package is None:
            what = (
                "the flow file, which Python runs as __main__"
                if source.name == "__main__"
                else f"top-level module {source.name!r}"
            )
            return Missing(
                "relative import `{statement}` in "
                + what.replace("{", "{{").replace("}", "}}"),
                "a relative import needs a package (attempted relative import with no "
                "known parent package); use an absolute import (from module import name)",
            )
        return Missing(
            "relative import `{statement}` goes beyond the top-level package "
            f"{source.package.split('.')[0]!r}",
            "use fewer leading dots, or an absolute import",
        )

    def member(self, module: Module, name: str, values: bool, depth: int = 0) -> Symbol:
        """``module.name``: a name its source binds, else its submodule ``name``."""
        if module.opaque or (values and not module.local):
            return OPAQUE
        source = self.module_source(module)
        if source is not None and (
            name in source.classes
            or name in source.functions
            or name in source.imports
            or source.binds(name)
        ):
            symbol = self._name(source, name, values, depth + 1)
            if symbol is not None:
                return symbol
        sub = self.finder.find(f"{module.name}.{name}")
        if sub is not None:
            return ModuleRef(sub)
        if source is not None and source.binds(name):
            return OPAQUE
        where = f"{self.display(module.file)}" if module.file else "a namespace package"
        return Missing(
            f"cannot import name {name!r} from {module.name!r} ({where})",
            f"define {name} in that module, or fix the import",
        )

    def _attribute(self, symbol: Symbol, attr: str, values: bool, depth: int) -> Symbol:
        if isinstance(symbol, ModuleRef):
            return self.member(symbol.module, attr, values, depth + 1)
        if isinstance(symbol, MetaflowName):
            return MetaflowName(f"{symbol.name}.{attr}" if symbol.name else attr)
        if isinstance(symbol, ClassRef):
            return ClassAttr(symbol, attr)
        if isinstance(symbol, Missing):
            return symbol
        return OPAQUE
