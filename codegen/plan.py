"""Turn the flow graph into a structured program the templates can print.

A plan is a tree: blocks of statements, where a statement runs one step, fans out
(static split or foreach, each branch or body its own method), switches, or loops
(a switch that can choose itself). All graph reasoning happens here, once.
"""

from __future__ import annotations

import keyword
from dataclasses import dataclass

from . import model as m
from .errors import CodegenError
from .graph import Graph

# How deeply splits, foreaches and switches may nest: each switch case is indented
# once more in the generated code (Python allows 100 levels of indentation), and
# each split or foreach body is a method of its own, planned recursively.
MAX_NESTING = 64

# Local names generated code uses; a step with one of these names gets a suffix.
TAKEN = frozenset({"self", "run", "parent", "index", "rt", "asyncio", "workflow", "params"})


def var(step: str) -> str:
    """The variable holding a step's finished task."""
    return f"{step}_" if step in TAKEN or keyword.iskeyword(step) else step


def const(step: str) -> str:
    """The module constant holding a step's ``StepSpec``."""
    return step.upper()


@dataclass(frozen=True)
class Call:
    """``target = await run.step(SPEC, inputs, split_index=...)``."""

    step: m.Step
    target: str
    inputs: str
    split_index: bool = False
    # the step's @compensate method, registered by run.step before the task starts
    compensation: m.Compensation | None = None


@dataclass(frozen=True)
class Parallel:
    """A static split: ``a, b = await run.parallel(x, self.branch_a, ...)``."""

    split: str
    methods: tuple[str, ...]
    targets: tuple[str, ...]


@dataclass(frozen=True)
class Foreach:
    """``target = await run.foreach(parent, self.body, ...)``."""

    parent: m.Step
    method: str
    chunk_class: str
    body_steps: int
    target: str


@dataclass(frozen=True)
class Case:
    key: str
    step: str
    body: tuple
    result: str


@dataclass(frozen=True)
class Switch:
    """``if x.next_step == "a": ... elif ...`` assigning ``target`` in every case."""

    switch: m.Step
    cases: tuple[Case, ...]
    target: str


@dataclass(frozen=True)
class Loop:
    """A switch that can choose itself: run it again while it does."""

    step: m.Step
    target: str


@dataclass(frozen=True)
class Method:
    """A branch of a static split or the body of a foreach."""

    name: str
    kind: str  # "branch" or "foreach"
    first: str
    body: tuple
    result: str
    doc: str
    # whether a step in it (or in what it fans out to) has a compensation: then
    # the method is a compensation scope that unwinds when it fails
    compensated: bool = False


@dataclass(frozen=True)
class Plan:
    flow: m.Flow
    graph: Graph
    body: tuple
    methods: tuple[Method, ...]

    @property
    def compensated(self) -> bool:
        return bool(self.flow.compensations)

    @property
    def loops(self) -> bool:
        return any(self.graph.is_loop(name) for name in self.graph.order)

    @property
    def foreach_methods(self) -> tuple[Method, ...]:
        return tuple(mt for mt in self.methods if mt.kind == "foreach")


def build(graph: Graph) -> Plan:
    builder = _Builder(graph)
    body, _ = builder.block(graph.flow.start, None, "run.parameters")
    order = {name: i for i, name in enumerate(graph.order)}
    methods = tuple(sorted(builder.methods, key=lambda mt: order[mt.first]))
    return Plan(graph.flow, graph, body, methods)


def chunk_class(flow: m.Flow, method: str) -> str:
    parts = "".join(p.capitalize() for p in method.split("_"))
    return f"{flow.name}{parts}Chunk"


class _Builder:
    def __init__(self, graph: Graph):
        self.graph = graph
        self.methods: list[Method] = []

    def block(self, first: str, stop: str | None, source: str, split_index=False, depth=0):
        """Statements from ``first`` up to (not including) ``stop``; returns the
        statements and the variable holding the last task. ``depth``: how many
        splits, foreaches and switch cases the block is nested in."""
        if depth > MAX_NESTING:
            step = self.graph[first].step
            raise CodegenError(
                step.pos,
                f"step {first} is nested in more than {MAX_NESTING} splits, foreaches "
                "and switch cases",
                "the generator supports flows nested up to that depth; let some "
                "branches join (or switch cases meet) earlier",
            )
        out: list = []
        current: str | None = first
        inputs = f"[{source}]"
        last = source
        while current is not None and current != stop:
            node = self.graph[current]
            step = node.step
            target = var(step.name)
            compensation = self.graph.flow.compensation(step.name)
            out.append(Call(step, target, inputs, split_index, compensation))
            split_index = False
            last = target
            if self.graph.is_loop(step.name):
                out.append(Loop(step, target))
            if step.kind == m.SPLIT:
                join = node.matching_join
                methods, results = [], []
                for branch in sorted(step.next):
                    method, result = self.method("branch", branch, join, depth=depth + 1)
                    methods.append(method)
                    results.append(result)
                out.append(Parallel(target, tuple(methods), tuple(results)))
                inputs = "[" + ", ".join(results) + "]"
                current = join
            elif step.kind == m.FOREACH:
                join = node.matching_join
                (body_first,) = step.next
                method, _ = self.method("foreach", body_first, join, split_index=True, depth=depth + 1)
                tasks = f"{var(body_first)}_tasks"
                steps = self._count(body_first, join)
                out.append(Foreach(step, method, chunk_class(self.graph.flow, method), steps, tasks))
                inputs = tasks
                current = join
            elif step.kind == m.SWITCH:
                merge = self.merge_point(step.name, stop)
                cases = []
                exits = [(k, s) for k, s in step.switch_cases if s != step.name]
                result = f"after_{step.name}"
                for key, target_step in exits:
                    body, case_last = self.block(target_step, merge, target, depth=depth + 1)
                    cases.append(Case(key, target_step, tuple(body), case_last))
                if len(cases) == 1 and not cases[0].body:
                    result = target
                else:
                    out.append(Switch(step, tuple(cases), result))
                inputs = f"[{result}]"
                last = result
                current = merge
            elif step.kind == m.END:
                current = None
            else:
                (current,) = self.graph.successors(step.name)
                inputs = f"[{target}]"
        return out, last

    def method(self, kind, first, stop, split_index=False, depth=0):
        name = f"{kind}_{first}"
        body, result = self.block(first, stop, "parent", split_index, depth)
        doc_kind = "Branch" if kind == "branch" else "Body of the foreach"
        doc = f"{doc_kind} starting at step {first}."
        region = self._reachable(first, stop) - {stop}
        compensated = any(self.graph.flow.compensation(s) for s in region)
        self.methods.append(
            Method(name, kind, first, tuple(body), result, doc, compensated)
        )
        return name, result

    def _count(self, first: str, stop: str) -> int:
        """Steps in a region (every task a split runs, all cases counted)."""
        return len(self._reachable(first, stop) - {stop})

    def merge_point(self, switch: str, stop: str | None) -> str | None:
        """Where the cases of a switch meet again: the earliest step (in topological
        order) that every case reaches; ``stop`` or the end if nothing earlier."""
        order = {name: i for i, name in enumerate(self.graph.order)}
        reach = [
            self._reachable(s, stop) for s in self.graph.successors(switch)
        ]
        common = set.intersection(*reach)
        if not common:
            return stop
        return min(common, key=order.get)

    def _reachable(self, first: str, stop: str | None) -> set[str]:
        seen, todo = set(), [first]
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            if name != stop:
                todo.extend(self.graph.successors(name))
        return seen
