"""The typed model of a flow: what the parser found, before any planning.

Kinds use Metaflow's own node type names (see ``metaflow/graph.py``) so the model
can be checked against Metaflow's ``FlowGraph`` one to one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import Pos

START, LINEAR, SPLIT, FOREACH, SWITCH, JOIN, END = (
    "start",
    "linear",
    "split",
    "foreach",
    "split-switch",
    "join",
    "end",
)


# Deferred.kind: how Metaflow evaluates a value the source computes.
CONFIG_EXPR = "config"  # config_expr(...) or an expression on a Config attribute
CALL = "call"  # a call, a lambda or a name bound to a function: maybe deploy-time
EXPR = "expr"  # any other expression the generator cannot fold


@dataclass(frozen=True)
class Deferred:
    """A value only Metaflow can compute (a call, a Config expression, ...), kept as
    its source text and position; the runtime has Metaflow evaluate it."""

    code: str
    pos: Pos
    kind: str = EXPR

    def __repr__(self) -> str:
        return self.code


@dataclass(frozen=True)
class Decorator:
    """A decorator as written: its name, where it came from, its arguments (literal
    values, values folded from constants, or :class:`Deferred`)."""

    name: str
    # "metaflow" for Metaflow's own decorators, else the module it was imported from.
    origin: str
    kwargs: tuple[tuple[str, Any], ...]
    pos: Pos
    # where each keyword argument's value starts
    arg_pos: tuple[tuple[str, Pos], ...] = ()
    # source text of each argument whose value was folded from names/constants
    # (e.g. ("vars", "ENV") for @environment(vars=ENV)); literals are not listed
    arg_code: tuple[tuple[str, str], ...] = ()
    # a decorator that may add or change decorators when Metaflow loads the flow
    # (a StepMutator/FlowMutator, or one the generator cannot read into)
    mutator: bool = False

    def arg(self, key: str, default: Any = None) -> Any:
        return dict(self.kwargs).get(key, default)

    def pos_of(self, key: str) -> Pos:
        """The position of argument ``key``'s value, else of the decorator."""
        return dict(self.arg_pos).get(key, self.pos)

    def code_of(self, key: str) -> str | None:
        """The source text of argument ``key`` if its value was folded, else None."""
        return dict(self.arg_code).get(key)


@dataclass(frozen=True)
class Parameter:
    """A Metaflow ``Parameter`` declared on the flow (or a base class)."""

    attr: str
    name: str
    # one of: str, int, float, bool, json; "auto" when only Metaflow knows it (no
    # type= and a Deferred default: Metaflow takes the evaluated default's type)
    type: str
    # a literal or folded value, or Deferred (evaluated by Metaflow per run)
    default: Any
    has_default: bool
    required: bool
    help: str
    pos: Pos
    # "parameter" or "include_file" (IncludeFile: the value is a file path)
    kind: str = "parameter"
    # source text of a default folded from names/constants (None: a literal)
    default_code: str | None = None

    @property
    def field(self) -> str:
        """The Python identifier of this parameter in the generated input dataclass."""
        return self.name.replace("-", "_")


@dataclass(frozen=True)
class Config:
    """A Metaflow ``Config`` declared on the flow."""

    attr: str
    name: str
    pos: Pos
    # Config(..., plain=True): the value is not a dict
    plain: bool = False


@dataclass(frozen=True)
class Compensation:
    """A ``@compensate("step")`` method: what undoes ``step`` if the run fails."""

    handler: str
    step: str
    doc: str
    pos: Pos


@dataclass(frozen=True)
class Step:
    """One ``@step`` method and its transition."""

    name: str
    kind: str
    next: tuple[str, ...]
    num_args: int
    decorators: tuple[Decorator, ...]
    doc: str
    pos: Pos
    next_pos: Pos | None
    foreach_var: str | None = None
    condition: str | None = None
    switch_cases: tuple[tuple[str, str], ...] = ()
    # set by @step(start=True) / @step(end=True)
    is_start: bool = False
    is_end: bool = False

    def decorator(self, name: str) -> Decorator | None:
        return next((d for d in self.decorators if d.name == name), None)


@dataclass(frozen=True)
class Schedule:
    """``@schedule``: when a production scheduler starts the flow."""

    # Metaflow's expression (EventBridge syntax), e.g. "0 * * * ? *" for hourly=True;
    # None when Metaflow evaluates it (config_expr arguments) as the worker starts
    cron: str | None
    # the decorator's arguments as written, e.g. "hourly=True"
    written: str
    # IANA time zone name (Metaflow: Argo only); None = UTC
    timezone: str | None
    pos: Pos


@dataclass(frozen=True)
class Project:
    """``@project``: the flow's project; branches come from it and the CLI."""

    # Deferred: Metaflow evaluates it (config_expr) when the worker starts
    name: str | Deferred
    # branch= and production= as given in the decorator (None: not given)
    branch: str | None
    production: bool | None
    pos: Pos


# Trigger.kind: Metaflow's trigger types
EVENT_TRIGGER, RUN_TRIGGER = "event", "run"


@dataclass(frozen=True)
class Trigger:
    """``@trigger`` (kind ``event``) or ``@trigger_on_finish`` (kind ``run``): the one
    event that starts the flow. Without ``name``/``flow`` Metaflow evaluates the
    decorator (computed arguments) where the worker or ``temporal create`` loads the
    flow."""

    kind: str
    # the decorator's arguments as written, e.g. "event='data_ready'"
    written: str
    pos: Pos
    # @trigger: the event's name and (Parameter, payload field) pairs, sorted
    name: str | None = None
    parameters: tuple[tuple[str, str], ...] = ()
    # the pairs are Metaflow's default: every Parameter from the field of its name
    default_mapping: bool = False
    # @trigger_on_finish: the upstream flow, and the project and branch it names
    # (None: this flow's own, as Metaflow resolves them)
    flow: str | None = None
    project: str | None = None
    branch: str | None = None

    @property
    def from_metaflow(self) -> bool:
        return self.name is None and self.flow is None


@dataclass(frozen=True)
class Flow:
    """A FlowSpec subclass with everything inherited from its local base classes."""

    name: str
    # The flow file as the user named it, and its bytes' sha256.
    file: str
    sha256: str
    pos: Pos
    doc: str
    parameters: tuple[Parameter, ...]
    configs: tuple[Config, ...]
    decorators: tuple[Decorator, ...]
    steps: tuple[Step, ...]
    start: str
    end: str
    # sorted by step name
    compensations: tuple[Compensation, ...] = ()
    schedule: Schedule | None = None
    project: Project | None = None
    trigger: Trigger | None = None

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)

    def decorator(self, name: str) -> Decorator | None:
        return next((d for d in self.decorators if d.name == name), None)

    @property
    def mutators(self) -> tuple[Decorator, ...]:
        """Flow decorators that are not Metaflow's: FlowMutators (or user flow
        decorators) that may change any step's decorators when Metaflow loads the flow.
        """
        return tuple(d for d in self.decorators if d.mutator)

    def compensation(self, step: str) -> Compensation | None:
        return next((c for c in self.compensations if c.step == step), None)
