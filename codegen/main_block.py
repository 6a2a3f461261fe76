"""Which flow a file runs: the class its ``if __name__ == "__main__":`` block
instantiates (Metaflow's command line starts there; other FlowSpec classes in the
file, bases or alternatives, are not flows of their own)."""

from __future__ import annotations

from typing import Any, Sequence, TypeGuard

import libcst as cst

from .classes import FLOWSPEC, Memo, Resolved, linearize
from .errors import CodegenError, Collector, Pos
from .sources import ClassRef, Function, Loader, Missing, Source, dotted

# a class called in the __main__ block: (call, its source, whether it runs whenever
# the block does, the class or Missing)
Instantiation = tuple[cst.Call, Source, bool, Any]
MAIN_HINT = (
    'add `if __name__ == "__main__": {name}()` at the end of the file: '
    "`python flow.py run` does nothing without it"
)


def main_flow(
    loader: Loader,
    source: Source,
    classes: list[Resolved],
    memo: Memo,
    errors: Collector,
) -> Resolved | None:
    """(ClassRef, MRO, missing-base errors) of the flow the ``__main__`` block
    instantiates; None (with the error recorded) when there is none."""
    display = source.display
    leaves = _leaf_flows(classes)
    blocks = [stmt for stmt in source.module.body if _is_main_test(stmt)]
    calls: list[Instantiation] = []  # in execution order
    block_of: list[cst.If] = []  # the __main__ block each call runs from
    for block in blocks:
        _main_calls(loader, source, _statements(block.body), True, calls, set(), 0)
        block_of += [block] * (len(calls) - len(block_of))
    flows, others, no_cli, unresolved = [], [], [], []
    for (call, where, unconditional, symbol), block in zip(calls, block_of):
        if isinstance(symbol, Missing):  # an import Python fails on
            unresolved.append(symbol.error(where.pos(call)))
            continue
        mro, missing = linearize(loader, symbol, memo, ())
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
    at = (
        leaves[0].source.pos(leaves[0].node.name)
        if leaves
        else Pos(display, 1, 1, source.cite)
    )
    if blocks:
        message = "the __main__ block instantiates no flow"
        at = source.pos(blocks[0])
    else:
        message = 'no `if __name__ == "__main__":` block instantiates a flow'
    if len(leaves) > 1:
        message += (
            " (the file defines " + ", ".join(sorted(c.name for c in leaves)) + ")"
        )
    errors.add(CodegenError(at, message, MAIN_HINT.format(name=name)))
    return None


def _leaf_flows(classes: list[Resolved]) -> list[ClassRef]:
    """The file's FlowSpec classes that no other class of the file derives from."""
    flow_classes = [c for c in classes if FLOWSPEC in c[1]]
    subclassed = {
        id(b.node)
        for _, mro, _ in flow_classes
        for b in mro[1:]
        if isinstance(b, ClassRef)
    }
    return [ref for ref, _, _ in flow_classes if id(ref.node) not in subclassed]


def _is_main_test(stmt: cst.CSTNode) -> TypeGuard[cst.If]:
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
    strings = [
        s
        for s in sides
        if isinstance(s, cst.SimpleString) and s.evaluated_value == "__main__"
    ]
    return len(names) == 1 and len(strings) == 1


# how deep the __main__ block is followed into the functions it calls
MAX_CALL_DEPTH = 20


def _main_calls(
    loader: Loader,
    source: Source,
    body: Sequence[cst.CSTNode],
    unconditional: bool,
    calls: list[Instantiation],
    seen: set[tuple[int, str]],
    depth: int,
) -> None:
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
                        _main_calls(
                            loader,
                            symbol.source,
                            _statements(fn.body),
                            unconditional,
                            calls,
                            seen,
                            depth + 1,
                        )
        elif isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
            continue
        elif isinstance(stmt, (cst.With, cst.Try, cst.TryStar)):
            _main_calls(
                loader,
                source,
                _statements(stmt.body),
                unconditional,
                calls,
                seen,
                depth,
            )
            for handler in getattr(stmt, "handlers", ()):
                _main_calls(
                    loader, source, _statements(handler.body), False, calls, seen, depth
                )
            for part in (
                getattr(stmt, "orelse", None),
                getattr(stmt, "finalbody", None),
            ):
                if part is not None:
                    _main_calls(
                        loader,
                        source,
                        _statements(part.body),
                        False,
                        calls,
                        seen,
                        depth,
                    )
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
        a.keyword is not None
        and a.keyword.value == "use_cli"
        and isinstance(a.value, cst.Name)
        and a.value.value == "False"
        for a in call.args
    )
