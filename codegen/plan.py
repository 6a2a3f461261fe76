"""Turn the flow graph into a structured program the templates can print.

A plan is a tree: blocks of statements, where a statement runs one step, fans out
(static split or foreach, each branch or body its own method), switches, or loops
(a switch that can choose itself). All graph reasoning happens here, once.
"""

from __future__ import annotations

import keyword
from collections.abc import Sequence
from dataclasses import dataclass

from . import model as m
from .errors import CodegenError
from .graph import Graph

# How deeply splits, foreaches and switches may nest: each switch case is indented
# once more in the generated code (Python allows 100 levels of indentation), and
# each split or foreach body is a method of its own, planned recursively.
MAX_NESTING = 64

# Names the generated module uses itself, beside those it derives from step names:
# module constants (beside each step's StepSpec constant) and locals of the graph
# methods (beside each step's task variable).
MODULE_NAMES = frozenset(
    {
        "FLOW", "GRAPH", "MAX_WORKERS", "PARAMS", "PROJECT", "REGENERATE",
        "RUNTIME_API", "SCHEDULE", "TASK_QUEUE", "TRIGGERS", "WORKFLOW",
        "WORKFLOWS", "WORKFLOW_TIMEOUT",
    }
)  # fmt: skip
LOCAL_NAMES = frozenset(
    {"self", "run", "parent", "index", "group", "rt", "asyncio", "workflow", "params"}
)


class Names:
    """Every identifier generated code derives from step names, computed once: one
    that would collide with another, with a name the module uses itself or with a
    keyword gets a suffix (``_`` for a local, ``_STEP`` for a constant, then a
    number), deterministically in the order names are claimed."""

    def __init__(self, steps: Sequence[str]):
        self._locals = set(LOCAL_NAMES)
        self._constants = set(MODULE_NAMES)
        self._var = {s: self.local(s) for s in steps}
        self._const = {s: _claim(self._constants, s.upper(), "_STEP") for s in steps}

    def var(self, step: str) -> str:
        """The variable holding a step's finished task."""
        return self._var[step]

    def const(self, step: str) -> str:
        """The module constant holding a step's ``StepSpec``."""
        return self._const[step]

    def local(self, wanted: str) -> str:
        """A fresh local name: ``wanted`` if it is free."""
        return _claim(self._locals, wanted, "_")


def _claim(taken: set[str], wanted: str, suffix: str) -> str:
    """``wanted``, else ``wanted + suffix``, else that numbered from 2 (``x_2``,
    ``X_STEP_2``): the first not in ``taken`` (and not a keyword), now taken."""
    name, n = wanted, 1
    while name in taken or keyword.iskeyword(name):
        n += 1
        name = wanted + suffix if n == 2 else f"{wanted}{suffix.rstrip('_')}_{n - 1}"
    taken.add(name)
    return name


@dataclass(frozen=True)
class Call:
    """``target = await run.step(SPEC, inputs, split_index=...)``."""

    step: m.Step
    const: str
    target: str
    inputs: str
    split_index: bool = False
    # the step's @compensate method, registered by run.step before the task starts
    compensation: m.Compensation | None = None


@dataclass(frozen=True)
class Parallel:
    """A static split: a task group that starts one task per branch method (named
    ``tasks``), then ``targets`` = their results, in branch order."""

    split: str
    methods: tuple[str, ...]
    tasks: tuple[str, ...]
    targets: tuple[str, ...]
    # whether a branch is a compensation scope (undoes its own steps if it fails)
    compensated: bool = False


@dataclass(frozen=True)
class Foreach:
    """``target = await run.foreach(parent, self.body, ...)``."""

    parent: m.Step
    parent_var: str
    method: str
    chunk_class: str
    # the tasks one split runs (every step of the body, all switch cases counted)
    tasks_per_split: int
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
    switch_var: str
    cases: tuple[Case, ...]
    target: str


@dataclass(frozen=True)
class Loop:
    """A switch that can choose itself: run it again while it does."""

    step: m.Step
    const: str
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
    # what it undoes when it fails, in the order the undoing runs (``undo_order``)
    undo: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    flow: m.Flow
    graph: Graph
    body: tuple
    methods: tuple[Method, ...]
    names: Names
    # what the whole run undoes when it fails at its end, in the order that runs
    undo: tuple[str, ...] = ()

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
    return Plan(
        graph.flow, graph, body, methods, builder.names, undo_order(body, builder.undo)
    )


def undo_order(body: tuple, methods: dict[str, tuple]) -> tuple[str, ...]:
    """What a scope running ``body`` undoes if it fails after its last statement, in
    the order the compensations run (last registered first), a line each:
    ``handler (step)``, qualified for foreach splits, loops and switch cases.
    ``methods``: the body of every branch and foreach method."""
    return tuple(reversed(_registered(body, methods, "")))


def _registered(body: tuple, methods: dict[str, tuple], where: str) -> list[str]:
    """The compensations ``body`` registers, in registration order."""
    out: list[str] = []
    for s in body:
        if isinstance(s, Call) and s.compensation is not None:
            out.append(f"{s.compensation.handler} ({s.step.name}{where})")
        elif (
            isinstance(s, Loop) and out and out[-1].endswith(f"({s.step.name}{where})")
        ):
            out[-1] = out[-1][:-1] + ", every iteration, last first)"
        elif isinstance(s, Parallel):
            for name in s.methods:
                out += _registered(methods[name], methods, where)
        elif isinstance(s, Foreach):
            inner = _registered(methods[s.method], methods, "")
            out += [line[:-1] + f", every split, last first{where})" for line in inner]
        elif isinstance(s, Switch):
            for case in s.cases:
                out += _registered(case.body, methods, f"{where}, if {case.step} ran")
    return out


def chunk_class(flow: m.Flow, method: str) -> str:
    parts = "".join(p.capitalize() for p in method.split("_"))
    return f"{flow.name}{parts}Chunk"


class _Builder:
    def __init__(self, graph: Graph):
        self.graph = graph
        self.methods: list[Method] = []
        self.names = Names(graph.order)
        # method name -> its statements
        self.undo: dict[str, tuple] = {}

    def block(
        self, first: str, stop: str | None, source: str, split_index=False, depth=0
    ):
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
            target = self.names.var(step.name)
            const = self.names.const(step.name)
            compensation = self.graph.flow.compensation(step.name)
            out.append(Call(step, const, target, inputs, split_index, compensation))
            split_index = False
            last = target
            if self.graph.is_loop(step.name):
                out.append(Loop(step, const, target))
            if step.kind == m.SPLIT:
                join = node.matching_join
                methods, results = [], []
                for branch in sorted(step.next):
                    method, result = self.method(
                        "branch", branch, join, depth=depth + 1
                    )
                    methods.append(method)
                    results.append(result)
                branch_tasks = tuple(self.names.local(f"{r}_task") for r in results)
                compensated = any(self._method(n).compensated for n in methods)
                out.append(
                    Parallel(
                        target,
                        tuple(methods),
                        branch_tasks,
                        tuple(results),
                        compensated,
                    )
                )
                inputs = "[" + ", ".join(results) + "]"
                current = join
            elif step.kind == m.FOREACH:
                join = node.matching_join
                (body_first,) = step.next
                method, _ = self.method(
                    "foreach", body_first, join, split_index=True, depth=depth + 1
                )
                tasks = self.names.local(f"{self.names.var(body_first)}_tasks")
                steps = self._count(body_first, join)
                chunk = chunk_class(self.graph.flow, method)
                out.append(Foreach(step, target, method, chunk, steps, tasks))
                inputs = tasks
                current = join
            elif step.kind == m.SWITCH:
                merge = self.merge_point(step.name, stop)
                cases = []
                exits = [(k, s) for k, s in step.switch_cases if s != step.name]
                result = None
                for key, target_step in exits:
                    body, case_last = self.block(
                        target_step, merge, target, depth=depth + 1
                    )
                    cases.append(Case(key, target_step, tuple(body), case_last))
                if len(cases) == 1 and not cases[0].body:
                    result = target
                else:
                    result = self.names.local(f"after_{step.name}")
                    out.append(Switch(step, target, tuple(cases), result))
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
        self.undo[name] = tuple(body)
        undo = undo_order(tuple(body), self.undo)
        self.methods.append(
            Method(name, kind, first, tuple(body), result, doc, compensated, undo)
        )
        return name, result

    def _method(self, name: str) -> Method:
        return next(mt for mt in self.methods if mt.name == name)

    def _count(self, first: str, stop: str | None) -> int:
        """Steps in a region (every task a split runs, all cases counted)."""
        return len(self._reachable(first, stop) - {stop})

    def merge_point(self, switch: str, stop: str | None) -> str | None:
        """Where the cases of a switch meet again: the earliest step (in topological
        order) that every case reaches; ``stop`` or the end if nothing earlier."""
        order = {name: i for i, name in enumerate(self.graph.order)}
        reach = [self._reachable(s, stop) for s in self.graph.successors(switch)]
        common = set.intersection(*reach)
        if not common:
            return stop
        return min(common, key=order.__getitem__)

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
