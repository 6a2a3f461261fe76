"""Values the source spells out, read statically; the rest deferred to Metaflow.

``value(scope, expr)`` folds literals, module-level constants and literal containers
(in the flow file and the local modules it imports), names bound to them and simple
constant expressions (arithmetic, string concatenation and ``%``, unary operators,
containers whose items fold, ``{**BASE, "k": 1}``, ``dict(a=1)``, f-strings of
foldable parts, subscripts, conditional expressions). A name is a constant only when
one plain assignment binds it, once, unconditionally (not in ``if``/``for``/``try``,
never rebound, not declared ``global`` by a function).

Anything else is a :class:`model.Deferred` that Metaflow computes: ``CONFIG_EXPR``
for ``config_expr(...)`` and expressions on a ``Config`` attribute, ``CALL`` for
calls, lambdas and names bound to functions, ``EXPR`` for the rest.
"""

from __future__ import annotations

import ast
import operator
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import libcst as cst

from . import model as m
from .errors import CodegenError
from .sources import (
    ClassAttr,
    ClassRef,
    Function,
    Loader,
    Source,
    Value,
    dotted,
    is_metaflow,
)

STATIC_HINT = (
    "the generator reads the flow statically; use a literal or a module constant here"
)
# A class-body name bound to a function (a method), not a value.
FUNCTION = "function"
MAX_DEPTH = 50
# folding never builds anything bigger than this (a str/bytes/list/tuple length)
MAX_SIZE = 100_000


# source text of any node, also of one parsed on its own (an f-string's field)
_code = cst.Module(body=[]).code_for_node


class NotConstant(Exception):
    """The expression cannot be folded."""


@dataclass(frozen=True)
class Scope:
    """Where an expression is evaluated: a module, and maybe a class body in it."""

    loader: Loader
    source: Source
    # names bound in the class body: their value expression if bound once by a plain
    # assignment, FUNCTION for a method, None for anything else (Parameters, ...)
    class_names: dict[str, Any] = field(default_factory=dict)
    # Config attributes of the class and its bases
    configs: frozenset[str] = frozenset()


def value(scope: Scope, expr: cst.BaseExpression) -> tuple[Any, str | None]:
    """``expr``'s value and, when it was folded from names or an expression, its source
    text (None for a plain literal); or a :class:`model.Deferred` and None."""
    code = scope.source.code(expr)
    try:
        folded = fold(scope, expr)
    except NotConstant:
        return m.Deferred(code, scope.source.pos(expr), classify(scope, expr)), None
    return folded, (None if is_literal(code) else code)


def static(scope: Scope, expr: cst.BaseExpression, what: str) -> Any:
    """A value the generator must know (a literal or a constant), else an error."""
    folded, _ = value(scope, expr)
    if isinstance(folded, m.Deferred):
        raise CodegenError(
            scope.source.pos(expr),
            f"{what} must be a literal, got `{folded.code}`",
            STATIC_HINT,
        )
    return folded


def is_literal(code: str) -> bool:
    try:
        ast.literal_eval(code.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return True


def _literal(code: str) -> Any:
    try:
        return ast.literal_eval(code)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise NotConstant from None


def fold(scope: Scope, expr: cst.BaseExpression, depth: int = 0) -> Any:
    """The constant value of ``expr``; raises :class:`NotConstant`."""
    if depth > MAX_DEPTH:
        raise NotConstant
    code = _code
    if isinstance(expr, (cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString)):
        return _literal(code(expr).strip())
    if isinstance(expr, cst.ConcatenatedString):
        left, right = fold(scope, expr.left, depth + 1), fold(
            scope, expr.right, depth + 1
        )
        if type(left) is not type(right) or not isinstance(left, (str, bytes)):
            raise NotConstant
        return _sized(left + right)
    if isinstance(expr, cst.FormattedString):
        return _fstring(scope, code(expr).strip(), depth)
    if isinstance(expr, cst.Name):
        return _name(scope, expr.value, depth)
    if isinstance(expr, cst.Attribute):
        name = dotted(expr)
        if name is None:
            raise NotConstant
        return _dotted_value(scope, name, depth)
    if isinstance(expr, cst.UnaryOperation):
        operand = fold(scope, expr.expression, depth + 1)
        return _apply(UNARY.get(type(expr.operator)), operand)
    if isinstance(expr, cst.BinaryOperation):
        left, right = fold(scope, expr.left, depth + 1), fold(
            scope, expr.right, depth + 1
        )
        return _binary(type(expr.operator), left, right)
    if isinstance(expr, cst.BooleanOperation):
        left = fold(scope, expr.left, depth + 1)
        if isinstance(expr.operator, cst.And):
            return fold(scope, expr.right, depth + 1) if left else left
        return left if left else fold(scope, expr.right, depth + 1)
    if isinstance(expr, cst.IfExp):
        test = fold(scope, expr.test, depth + 1)
        return fold(scope, expr.body if test else expr.orelse, depth + 1)
    if isinstance(expr, (cst.Tuple, cst.List, cst.Set)):
        items: list[Any] = []
        for element in expr.elements:
            if isinstance(element, cst.StarredElement):
                items.extend(_iterable(fold(scope, element.value, depth + 1)))
            else:
                items.append(fold(scope, element.value, depth + 1))
        _sized(items)
        kind = {cst.Tuple: tuple, cst.List: list, cst.Set: set}[type(expr)]
        return _apply(kind, items)
    if isinstance(expr, cst.Dict):
        result: dict[Any, Any] = {}
        for entry in expr.elements:
            if isinstance(entry, cst.DictElement):
                key = fold(scope, entry.key, depth + 1)
                _apply(hash, key)
                result[key] = fold(scope, entry.value, depth + 1)
            else:  # **mapping
                result.update(_mapping(fold(scope, entry.value, depth + 1)))
        return _sized(result)
    if isinstance(expr, cst.Subscript):
        return _subscript(scope, expr, depth)
    if isinstance(expr, cst.Call):
        return _call(scope, expr, depth)
    raise NotConstant


def _name(scope: Scope, name: str, depth: int) -> Any:
    if name in ("True", "False", "None") and name not in scope.class_names:
        return {"True": True, "False": False, "None": None}[name]
    if name in scope.configs:
        raise NotConstant
    if name in scope.class_names:
        bound = scope.class_names[name]
        if not isinstance(bound, cst.BaseExpression):
            raise NotConstant
        # the class body binds names after their own use as well; a cycle ends at MAX_DEPTH
        return fold(scope, bound, depth + 1)
    return _symbol(scope, scope.loader.resolve(scope.source, name, values=True), depth)


def _dotted_value(scope: Scope, name: str, depth: int) -> Any:
    head = name.split(".")[0]
    if head in scope.configs or head in scope.class_names:
        raise NotConstant
    return _symbol(scope, scope.loader.resolve(scope.source, name, values=True), depth)


def _symbol(scope: Scope, symbol: Any, depth: int) -> Any:
    if isinstance(symbol, Value):
        return fold(Scope(scope.loader, symbol.source), symbol.expr, depth + 1)
    raise NotConstant


def _apply(fn: Any, *args: Any) -> Any:
    if fn is None:
        raise NotConstant
    try:
        return fn(*args)
    except Exception:
        raise NotConstant from None


def _sized(result: Any) -> Any:
    if (
        isinstance(result, (str, bytes, list, tuple, dict, set))
        and len(result) > MAX_SIZE
    ):
        raise NotConstant
    return result


def _iterable(items: Any) -> list[Any]:
    if not isinstance(items, (list, tuple, str, bytes, dict, set, frozenset)):
        raise NotConstant
    return list(items)


def _mapping(items: Any) -> dict[Any, Any]:
    if not isinstance(items, dict):
        raise NotConstant
    return items


UNARY: dict[type, Callable[[Any], Any]] = {
    cst.Minus: operator.neg,
    cst.Plus: operator.pos,
    cst.Not: operator.not_,
    cst.BitInvert: operator.invert,
}
BINARY: dict[type, Callable[[Any, Any], Any]] = {
    cst.Add: operator.add,
    cst.Subtract: operator.sub,
    cst.Multiply: operator.mul,
    cst.Divide: operator.truediv,
    cst.FloorDivide: operator.floordiv,
    cst.Modulo: operator.mod,
    cst.Power: operator.pow,
    cst.LeftShift: operator.lshift,
    cst.RightShift: operator.rshift,
    cst.BitOr: operator.or_,
    cst.BitAnd: operator.and_,
    cst.BitXor: operator.xor,
}
NUMBERS = (bool, int, float, complex)
SEQUENCES = (str, bytes, list, tuple)


def _binary(op: type, left: Any, right: Any) -> Any:
    fn = BINARY.get(op)
    if op is cst.Power and not (
        isinstance(left, NUMBERS)
        and isinstance(right, NUMBERS)
        and abs(right) <= 128
        and abs(left) <= 2**64
    ):
        raise NotConstant
    if op is cst.LeftShift and not (isinstance(right, int) and right <= 256):
        raise NotConstant
    if op is cst.Multiply:
        for seq, times in ((left, right), (right, left)):
            if (
                isinstance(seq, SEQUENCES)
                and isinstance(times, int)
                and len(seq) * max(times, 0) > MAX_SIZE
            ):
                raise NotConstant
    if (
        op is cst.Modulo
        and isinstance(left, (str, bytes))
        and re.search(
            r"\d{6,}", left if isinstance(left, str) else left.decode("latin-1")
        )
    ):
        raise NotConstant
    return _sized(_apply(fn, left, right))


def _subscript(scope: Scope, expr: cst.Subscript, depth: int) -> Any:
    target = fold(scope, expr.value, depth + 1)
    if len(expr.slice) != 1:
        raise NotConstant
    index = expr.slice[0].slice
    if isinstance(index, cst.Index) and index.star is None:
        return _apply(operator.getitem, target, fold(scope, index.value, depth + 1))
    if isinstance(index, cst.Slice):
        bounds = [
            None if part is None else fold(scope, part, depth + 1)
            for part in (index.lower, index.upper, index.step)
        ]
        return _apply(operator.getitem, target, _apply(slice, *bounds))
    raise NotConstant


def _call(scope: Scope, call: cst.Call, depth: int) -> Any:
    """``dict(...)`` of foldable arguments; any other call is not a constant."""
    if not (isinstance(call.func, cst.Name) and call.func.value == "dict") or _shadowed(
        scope, "dict"
    ):
        raise NotConstant
    result: dict[Any, Any] = {}
    positional = [a for a in call.args if a.keyword is None and not a.star]
    if len(positional) > 1 or any(a.star == "*" for a in call.args):
        raise NotConstant
    if positional:
        result.update(_apply(dict, fold(scope, positional[0].value, depth + 1)))
    for arg in call.args:
        if arg.star == "**":
            items = _mapping(fold(scope, arg.value, depth + 1))
            if not all(isinstance(key, str) for key in items):
                raise NotConstant  # keywords must be strings
            result.update(items)
        elif arg.keyword is not None:
            result[arg.keyword.value] = fold(scope, arg.value, depth + 1)
    return result


def _shadowed(scope: Scope, name: str) -> bool:
    return name in scope.class_names or scope.source.binds(name)


def _fstring(scope: Scope, code: str, depth: int) -> str:
    """An f-string whose replacement fields all fold (read through Python's ast)."""
    try:
        tree = ast.parse(code, mode="eval").body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        raise NotConstant from None
    return _joined(scope, code, tree, depth)


def _joined(scope: Scope, code: str, node: ast.AST, depth: int) -> str:
    if not isinstance(node, ast.JoinedStr):
        raise NotConstant
    parts = []
    for part in node.values:
        if isinstance(part, ast.Constant) and isinstance(part.value, str):
            parts.append(part.value)
            continue
        if not isinstance(part, ast.FormattedValue):
            raise NotConstant
        segment = ast.get_source_segment(code, part.value)
        if segment is None:
            raise NotConstant
        try:
            inner = cst.parse_expression(segment.strip())
        except cst.ParserSyntaxError:
            raise NotConstant from None
        folded = fold(scope, inner, depth + 1)
        converted = {-1: lambda v: v, 115: str, 114: repr, 97: ascii}.get(
            part.conversion
        )
        spec = (
            _joined(scope, code, part.format_spec, depth + 1)
            if part.format_spec
            else ""
        )
        if re.search(r"\d{6,}", spec):
            raise NotConstant
        parts.append(_apply(format, _apply(converted, folded), spec))
    return _sized("".join(parts))


# ---------------------------------------------------------------------------
# What Metaflow does with what cannot be folded


def classify(scope: Scope, expr: cst.BaseExpression) -> str:
    """The :class:`model.Deferred` kind of an expression that does not fold."""
    if mentions_config(scope, expr):
        return m.CONFIG_EXPR
    if isinstance(expr, (cst.Call, cst.Lambda)):
        return m.CALL
    name = dotted(expr)
    if name is not None and _is_function(scope, name):
        return m.CALL
    return m.EXPR


def _is_function(scope: Scope, name: str) -> bool:
    head = name.split(".")[0]
    if head in scope.class_names:
        return "." not in name and scope.class_names[head] == FUNCTION
    return isinstance(scope.loader.resolve(scope.source, name), Function)


def mentions_config(scope: Scope, expr: cst.BaseExpression) -> bool:
    """Whether ``expr`` uses ``config_expr(...)`` or a ``Config`` attribute."""
    found = False

    class Visitor(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> bool:
            nonlocal found
            if is_metaflow(scope.source, node.func, "config_expr"):
                found = True
            return not found

        def visit_Name(self, node: cst.Name) -> None:
            nonlocal found
            if node.value in scope.configs:
                found = True

        def visit_Attribute(self, node: cst.Attribute) -> bool:
            nonlocal found
            name = dotted(node)
            if name is not None and name.count(".") >= 1 and _class_config(scope, name):
                found = True
            node.value.visit(self)
            return False

        def visit_Arg(self, node: cst.Arg) -> bool:
            node.value.visit(self)
            return False

        def visit_Param(self, node: cst.Param) -> bool:
            return False

    expr.visit(Visitor())
    return found


def _class_config(scope: Scope, name: str) -> bool:
    """``Base.config...``: an attribute of a flow class that is a ``Config``."""
    head, attr = name.split(".")[:2]
    if head in scope.class_names or head in scope.configs:
        return False
    symbol = scope.loader.resolve(scope.source, f"{head}.{attr}")
    return isinstance(symbol, ClassAttr) and _declares_config(
        scope.loader, symbol.cls, attr, 0
    )


def _declares_config(loader: Loader, cls: ClassRef, attr: str, depth: int) -> bool:
    if depth > MAX_DEPTH:
        return False
    for stmt in cls.node.body.body:
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                if (
                    isinstance(small, cst.Assign)
                    and any(
                        isinstance(t.target, cst.Name) and t.target.value == attr
                        for t in small.targets
                    )
                    and isinstance(small.value, cst.Call)
                ):
                    return is_metaflow(cls.source, small.value.func, "Config")
    for base in cls.node.bases:
        name = dotted(base.value)
        resolved = loader.resolve(cls.source, name) if name else None
        if isinstance(resolved, ClassRef) and _declares_config(
            loader, resolved, attr, depth + 1
        ):
            return True
    return False
