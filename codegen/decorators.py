"""Decorators as written (``@retry(times=3)``, a user's mutator) and ``@compensate``
methods: read into the model, Metaflow's unsupported ones rejected."""

from __future__ import annotations

from typing import Any

import libcst as cst

from . import model as m
from .errors import CodegenError, Pos
from .fold import Scope, value
from .sources import (
    METAFLOW,
    ClassRef,
    Function,
    Loader,
    MetaflowName,
    Source,
    callee,
    docstring,
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
    "exit_hook": "exit hooks are not supported yet; put the work in the end step",
    "pypi": ENVIRONMENT_HINT,
    "conda": ENVIRONMENT_HINT,
    "pypi_base": ENVIRONMENT_HINT,
    "conda_base": ENVIRONMENT_HINT,
}


def read_decorator(scope: Scope, deco: cst.Decorator) -> m.Decorator:
    """``deco`` as written: its origin, folded (or Deferred) arguments, positions."""
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
                    folded = m.Deferred(
                        source.code(arg.value), source.pos(arg.value), m.EXPR
                    )
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
        name,
        module,
        tuple(kwargs),
        source.pos(deco),
        tuple(arg_pos),
        tuple(arg_code),
        mutator,
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
        return any(
            base is None or _may_mutate(loader, symbol.source, base, depth + 1)
            for base in bases
        )
    return not isinstance(symbol, Function)


# ---------------------------------------------------------------------------
# Compensations

COMPENSATE_MODULE = "mf_temporal_codegen"


def is_compensate(source: Source, deco: cst.Decorator) -> bool:
    """Whether ``deco`` is this package's ``@compensate``."""
    return is_metaflow(source, callee(deco), "compensate", COMPENSATE_MODULE)


def read_compensation(source: Source, fn: cst.FunctionDef) -> m.Compensation | None:
    """The ``@compensate("step")`` on a (non-step) method, or None."""
    deco = next((d for d in fn.decorators if is_compensate(source, d)), None)
    if deco is None:
        return None
    usage = 'write @compensate("<step name>") above a method that takes only self'
    call = deco.decorator
    args = call.args if isinstance(call, cst.Call) else ()
    if len(args) != 1 or (args[0].keyword and args[0].keyword.value != "step"):
        raise CodegenError(
            source.pos(deco), "@compensate takes exactly one step name", usage
        )
    target = args[0].value
    if not isinstance(target, cst.SimpleString) or not isinstance(
        target.evaluated_value, str
    ):
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
        doc=docstring(fn),
        pos=source.pos(deco),
    )


def check_supported(d: m.Decorator, what: str) -> None:
    """Reject a Metaflow decorator that Metaflow's orchestrators cannot run here."""
    if d.origin == METAFLOW and d.name in UNSUPPORTED_HINTS:
        raise CodegenError(
            d.pos, f"unsupported {what} @{d.name}", UNSUPPORTED_HINTS[d.name]
        )
