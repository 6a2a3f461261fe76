"""Graph facts Metaflow derives from a flow, and the lint rules it applies to them.

``analyze`` mirrors ``metaflow/graph.py`` (in_funcs, split parents, matching joins)
and ``metaflow/lint.py`` (the validity checks), so a flow is accepted here exactly
when ``python flow.py run`` accepts it. Every error points at the offending step.
"""

from __future__ import annotations

import difflib
import heapq
import re
from dataclasses import dataclass
from typing import NoReturn

from . import model as m
from .errors import CodegenError, Collector

RESERVED = frozenset({"name", "next", "input", "index", "cmd"})


@dataclass(frozen=True)
class Node:
    """A step with the structural facts Metaflow computes for it."""

    step: m.Step
    in_funcs: tuple[str, ...]
    split_parents: tuple[str, ...]
    split_branches: tuple[str, ...]
    matching_join: str | None
    is_inside_foreach: bool

    @property
    def name(self) -> str:
        return self.step.name

    @property
    def kind(self) -> str:
        return self.step.kind


@dataclass(frozen=True)
class Graph:
    """The analysed flow graph; ``order`` is a topological order of the steps."""

    flow: m.Flow
    nodes: dict[str, Node]
    order: tuple[str, ...]

    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]

    def successors(self, name: str) -> tuple[str, ...]:
        """Out edges without a switch's edge back to itself."""
        return tuple(n for n in self.nodes[name].step.next if n != name)

    def is_loop(self, name: str) -> bool:
        return name in self.nodes[name].step.next


def analyze(flow: m.Flow) -> Graph:
    """Validate ``flow`` like Metaflow's linter and compute its graph facts.

    Every lint error is reported (``CodegenErrors``); the checks run in stages, each
    needing the graph the previous ones accepted (known targets, then no loops, then
    reachability, then split/join structure)."""
    steps = {s.name: s for s in flow.steps}
    errors = Collector()
    _check_fundamentals(flow, steps, errors)
    _check_transitions(flow, steps, errors)
    _check_compensations(flow, steps, errors)
    errors.check()
    _check_acyclic(flow, steps, errors)
    errors.check()
    facts = _traverse(flow, steps, errors)
    errors.check()
    nodes = {}
    for name, step in steps.items():
        in_funcs, parents, branches, join = facts.get(name, ((), (), (), None))
        foreaches = [p for p in parents if steps[p].kind == m.FOREACH]
        inside = any(facts[p][3] != name for p in foreaches)
        nodes[name] = Node(step, in_funcs, parents, branches, join, inside)
    graph = Graph(flow, nodes, _topological(flow, steps))
    _check_structure(graph, errors)
    errors.check()
    return graph


def _error(
    step: m.Step, message: str, hint: str, at_next: bool = False
) -> CodegenError:
    return CodegenError(
        step.next_pos if at_next and step.next_pos else step.pos, message, hint
    )


def _fail(step: m.Step, message: str, hint: str, at_next: bool = False) -> NoReturn:
    raise _error(step, message, hint, at_next)


def _check_fundamentals(
    flow: m.Flow, steps: dict[str, m.Step], errors: Collector
) -> None:
    for step in flow.steps:
        if step.name in RESERVED:
            errors.add(
                _error(
                    step,
                    f"step name {step.name!r} is reserved by Metaflow",
                    "rename the step",
                )
            )
        if re.search("[^a-z0-9_]", step.name) or step.name.startswith("_"):
            errors.add(
                _error(
                    step,
                    f"step name {step.name!r} is invalid",
                    "use lowercase ascii letters, digits and underscores",
                )
            )
        if step.num_args > 2:
            errors.add(
                _error(
                    step,
                    f"step {step.name} takes too many arguments",
                    "normal steps take only self; joins take self and inputs",
                )
            )
        if step.num_args == 0:
            errors.add(
                _error(
                    step,
                    f"step {step.name} is missing the 'self' argument",
                    "write def step(self)",
                )
            )
        if step.num_args == 2 and step.kind != m.JOIN and step.kind != m.END:
            errors.add(
                _error(
                    step,
                    f"step {step.name} is both a join (it takes inputs) and a split",
                    "add a separate step so that the split and the join are different steps",
                )
            )


def _check_transitions(
    flow: m.Flow, steps: dict[str, m.Step], errors: Collector
) -> None:
    end = steps[flow.end]
    if end.next:
        errors.add(
            _error(
                end,
                f"the end step {end.name} must not call self.next()",
                "remove the self.next() call",
                True,
            )
        )
    if end.num_args > 1:
        errors.add(
            _error(
                end,
                f"the end step {end.name} must not be a join",
                "add a join step before it",
            )
        )
    for step in flow.steps:
        _check_targets(flow, steps, step, errors)
    start = steps[flow.start]
    for step in flow.steps:
        if flow.start in step.next:
            errors.add(
                _error(
                    step,
                    f"step {step.name} transitions to the start step {start.name}",
                    "the start step cannot have incoming transitions",
                    True,
                )
            )


def _check_targets(
    flow: m.Flow, steps: dict[str, m.Step], step: m.Step, errors: Collector
) -> None:
    if step.name != flow.end and not step.next:
        errors.add(
            _error(
                step,
                f"step {step.name} does not end with a self.next() transition",
                "make self.next(self.<step>) the last statement of the step",
            )
        )
    for target in step.next:
        if target not in steps:
            hint = _unknown_step_hint(target, steps, "self.{}")
            errors.add(
                _error(
                    step,
                    f"step {step.name} transitions to unknown step {target!r}",
                    hint,
                    True,
                )
            )
    if step.kind == m.SWITCH and len(step.next) < 2:
        errors.add(
            _error(
                step,
                f"switch step {step.name} defines {len(step.next)} case(s)",
                "a switch needs at least 2 cases",
                True,
            )
        )
    if step.kind == m.SWITCH and len(set(step.next)) != len(step.next):
        errors.add(
            _error(
                step,
                f"switch step {step.name} names the same step for two cases",
                "give each case its own step",
                True,
            )
        )


def _unknown_step_hint(name: str, steps: dict[str, m.Step], spelled: str) -> str:
    """``did you mean <closest step>?`` (the step written as ``spelled``), else the
    known steps."""
    close = difflib.get_close_matches(name, sorted(steps), n=1)
    if close:
        return f"did you mean {spelled.format(close[0])}?"
    return "known steps: " + ", ".join(sorted(steps))


def _check_compensations(
    flow: m.Flow, steps: dict[str, m.Step], errors: Collector
) -> None:
    for comp in flow.compensations:
        if comp.step not in steps:
            hint = _unknown_step_hint(comp.step, steps, "{!r}")
            errors.add(
                CodegenError(
                    comp.pos,
                    f"compensation {comp.handler} undoes unknown step {comp.step!r}",
                    hint,
                )
            )


def _check_acyclic(flow: m.Flow, steps: dict[str, m.Step], errors: Collector) -> None:
    """Report each edge that closes a loop (a depth-first walk from every step in
    name order; iterative, so that long flows do not hit Python's recursion limit)."""
    state: dict[str, int] = {}
    for root in sorted(steps):
        if root in state:
            continue
        state[root] = 1
        path = [root]
        stack = [(root, iter(steps[root].next))]
        while stack:
            name, pending = stack[-1]
            step = steps[name]
            for nxt in pending:
                if nxt == name and step.kind == m.SWITCH:
                    continue
                if state.get(nxt) == 1:
                    loop = (
                        "->".join(path[path.index(nxt) :] + [nxt])
                        if nxt in path
                        else f"{name}->{nxt}"
                    )
                    errors.add(
                        _error(
                            step,
                            f"there is a loop in the flow: {loop}",
                            "only a switch may loop, and only back to itself "
                            "(self.next({'again': self.<this step>, ...}, condition=...))",
                            True,
                        )
                    )
                elif state.get(nxt) is None:
                    state[nxt] = 1
                    path.append(nxt)
                    stack.append((nxt, iter(steps[nxt].next)))
                    break
            else:
                state[name] = 2
                stack.pop()
                path.pop()


# a step reached with its split parents and split branches
_Visit = tuple[str, tuple[str, ...], tuple[str, ...]]
# in_funcs, split_parents, split_branches, matching_join
_Facts = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], str | None]


def _traverse(
    flow: m.Flow, steps: dict[str, m.Step], errors: Collector
) -> dict[str, _Facts]:
    """in_funcs, split_parents, split_branches, matching_join as Metaflow computes them.

    Metaflow walks every path from the start step depth-first, and the last visit
    of a step sets its facts. Walking the children in reverse order makes that last
    visit the first one, and a step reached again with the same split stack does
    nothing new; so each (step, split stack) is visited once, iteratively (the graph
    is acyclic here but for a switch's edge to itself)."""
    in_funcs: dict[str, set[str]] = {n: set() for n in steps}
    parents: dict[str, tuple[str, ...]] = {}
    branches: dict[str, tuple[str, ...]] = {}
    joins: dict[str, str] = {}
    done: set[_Visit] = set()
    todo: list[_Visit] = [(flow.start, (), ())]
    while todo:
        name, split_parents, split_branches = key = todo.pop()
        if key in done:
            continue
        done.add(key)
        step = steps[name]
        add_branch = False
        # first write wins: it is the last visit of Metaflow's walk
        if step.kind in (m.SPLIT, m.FOREACH):
            parents.setdefault(name, split_parents)
            branches.setdefault(name, split_branches)
            add_branch = True
            split_parents = split_parents + (name,)
        elif step.kind == m.JOIN and split_parents:
            joins.setdefault(split_parents[-1], name)
            parents.setdefault(name, split_parents)
            branches.setdefault(name, split_branches[:-1])
            split_parents, split_branches = split_parents[:-1], split_branches[:-1]
        else:
            parents.setdefault(name, split_parents)
            branches.setdefault(name, split_branches)
        for nxt in step.next:  # the last one pushed is walked first
            if nxt != name and nxt in steps:
                in_funcs[nxt].add(name)
                todo.append(
                    (
                        nxt,
                        split_parents,
                        split_branches + ((nxt,) if add_branch else ()),
                    )
                )
    reached = set(parents)
    for step in flow.steps:
        if step.name not in reached:
            errors.add(
                _error(
                    step,
                    f"step {step.name} is unreachable from the start step {flow.start}",
                    f"add self.next(self.{step.name}) in another step or remove it",
                )
            )
    return {
        n: (tuple(sorted(in_funcs[n])), parents[n], branches[n], joins.get(n))
        for n in steps
        if n in reached
    }


def _topological(flow: m.Flow, steps: dict[str, m.Step]) -> tuple[str, ...]:
    """Steps in a topological order (self-loops ignored), ties broken by source line."""
    indegree = {n: 0 for n in steps}
    for step in flow.steps:
        for nxt in set(step.next) - {step.name}:
            indegree[nxt] += 1
    line = {s.name: (s.pos.file, s.pos.line, s.name) for s in flow.steps}
    ready = [line[n] for n, d in indegree.items() if d == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        name = heapq.heappop(ready)[2]
        order.append(name)
        for nxt in sorted(set(steps[name].next) - {name}):
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                heapq.heappush(ready, line[nxt])
    return tuple(order)


def _check_structure(graph: Graph, errors: Collector) -> None:
    """Split/join balance, empty foreaches and switches into joins (lint.py).

    The split/join walk stops at its first error (what follows depends on it)."""
    flow = graph.flow
    for node in graph.nodes.values():
        step = node.step
        if step.kind == m.FOREACH and any(graph[n].kind == m.JOIN for n in step.next):
            errors.add(
                _error(
                    step,
                    f"foreach {step.name} goes straight into a join",
                    "add at least one step between the foreach and its join",
                    True,
                )
            )
        if step.kind == m.JOIN:
            switches = [p for p in node.in_funcs if graph[p].kind == m.SWITCH]
            if switches:
                errors.add(
                    _error(
                        graph[switches[0]].step,
                        f"switch step {switches[0]} leads straight into the join step {step.name}",
                        "add an unconditional step on that path before the join",
                        True,
                    )
                )

    def walk(name: str, stack: tuple[tuple[str, ...], ...]) -> list[tuple]:
        """Check ``name`` reached with ``stack``; the next (step, stack) to check."""
        node = graph[name]
        step = node.step
        if step.kind in (m.SPLIT, m.FOREACH):
            stack = stack + (step.next,)
        elif step.kind == m.END and stack:
            _fail(
                step,
                f"the end step is reached before the split(s) {', '.join(stack[-1])} were joined",
                f"add a join step before {step.name}",
            )
        elif step.kind == m.JOIN:
            if not stack:
                _fail(
                    step,
                    f"step {step.name} takes inputs but no split precedes it",
                    "make sure every join has a matching split",
                )
            roots = stack[-1]
            stack = stack[:-1]
            resolved = {
                graph[n].split_branches[-1]
                for n in node.in_funcs
                if graph[n].split_branches
            }
            if resolved != set(roots):
                missing = [r for r in roots if r not in resolved]
                _fail(
                    step,
                    f"join step {step.name} expects {len(roots)} incoming paths, one per "
                    f"branch of the split into {', '.join(roots)}, but gets "
                    f"{', '.join(sorted(resolved)) or 'none'}",
                    (
                        f"branch {', '.join(missing)} does not reach {step.name}; "
                        if missing
                        else ""
                    )
                    + "every branch of a split must reach its join",
                )

            def lineage(n: str) -> tuple[str, ...]:
                p = graph[n].split_parents
                return p[:-1] if graph[n].kind == m.JOIN else p

            if len({lineage(n) for n in node.in_funcs}) > 1:
                _fail(
                    step,
                    f"join {step.name} joins steps from unrelated splits",
                    "make sure every split has its own join",
                )
        return [(nxt, stack) for nxt in graph.successors(name)]

    def walk_all() -> None:
        # depth first, children in order, as Metaflow's lint walks every path; a
        # step reached again with the same split stack finds nothing new
        done: set[tuple] = set()
        todo = [(flow.start, ())]
        while todo:
            key = todo.pop()
            if key not in done:
                done.add(key)
                todo.extend(reversed(walk(*key)))

    if not errors:  # the walk's errors would only repeat the ones above
        with errors.guard():
            walk_all()
