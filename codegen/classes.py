"""Which classes a flow class derives from: Python's MRO, read without importing.

Bases are resolved through the ``Loader`` (local modules, Metaflow's names); one that
cannot be found, or that Python would fail on (undefined, defined below, cyclic), is
an error at the class statement.
"""

from __future__ import annotations

import builtins
from typing import Any, TypeGuard

import libcst as cst

from .errors import CodegenError
from .sources import (
    ClassRef,
    Loader,
    MetaflowName,
    Missing,
    Source,
    callee,
    dotted,
    is_metaflow,
)

FLOWSPEC = "FlowSpec"
# a class, its MRO (ClassRefs, FLOWSPEC) and the errors of bases that cannot be found
Resolved = tuple[ClassRef, list[Any], list[CodegenError]]
# linearize's results by id() of the class node
Memo = dict[int, tuple[list[Any], list[CodegenError]]]


def linearize(
    loader: Loader, cls: ClassRef, memo: Memo, stack: tuple[int, ...]
) -> tuple[list[Any], list[CodegenError]]:
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
            if _defined_later(symbol, cls):
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
        if isinstance(symbol, ClassRef) and (
            id(symbol.node) == key or id(symbol.node) in stack
        ):
            # reported where the cycle was entered (the flow's own class, first)
            errors.append(
                Undefined(
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
            mro, missing = linearize(loader, symbol, memo, stack + (key,))
            bases.append(mro)
            errors += missing
        elif isinstance(symbol, Missing):
            errors.append(symbol.error(cls.source.pos(arg.value)))
        elif symbol is None and not _defined(cls.source, name.split(".")[0]):
            errors.append(
                Undefined(
                    cls.source.pos(arg.value),
                    f"base class {name} of {cls.name} is not defined (Python raises NameError)",
                    f"import {name.split('.')[0]} or define it before the class",
                )
            )
    result = [cls] + _merge(bases + [[b[0] for b in bases]]), errors
    memo[key] = result
    return result


def _defined_later(symbol: Any, cls: ClassRef) -> TypeGuard[ClassRef]:
    """Whether the base ``symbol`` is a class statement of the same file at or
    after ``cls``'s own (``class Base(Base)``, ``class A(B)`` above ``class B``)."""
    return (
        isinstance(symbol, ClassRef)
        and symbol.source is cls.source
        and cls.source.pos(symbol.node) >= cls.source.pos(cls.node)
    )


def _undefined_yet(
    cls: ClassRef, expr: cst.BaseExpression, name: str, symbol: ClassRef
) -> CodegenError:
    if symbol.node is cls.node:
        return Undefined(
            cls.source.pos(expr),
            f"class {cls.name} derives from itself (Python raises NameError: "
            f"{name} is not defined yet)",
            f"derive {cls.name} from FlowSpec or from a class defined above it",
        )
    return Undefined(
        cls.source.pos(expr),
        f"base class {name} of {cls.name} is defined below it (Python raises "
        f"NameError: {name} is not defined yet)",
        f"move class {symbol.name} above class {cls.name}",
    )


class Undefined(CodegenError):
    """A base class name bound nowhere: certain to fail when Python runs the file
    (unlike an import the generator's environment cannot resolve)."""


def _defined(source: Source, name: str) -> bool:
    """Whether ``name`` is bound in ``source``'s module or is a builtin."""
    return (
        name in source.classes
        or name in source.imports
        or source.binds(name)
        or hasattr(builtins, name)
    )


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


def has_steps(cls: ClassRef) -> bool:
    """Whether the class body defines a ``@step`` method (it looks like a flow)."""
    return any(
        isinstance(stmt, cst.FunctionDef)
        and any(is_metaflow(cls.source, callee(d), "step") for d in stmt.decorators)
        for stmt in cls.node.body.body
    )
