"""Parameters, IncludeFiles and Configs declared in a flow class body, as Metaflow
registers them (``metaflow/parameters.py``, ``FlowSpec._get_parameters``)."""

from __future__ import annotations

import keyword
from typing import Any
import libcst as cst

from . import model as m
from .errors import CodegenError
from .fold import Scope, static, value
from .sources import Source, Value, dotted, is_metaflow

# Parameter.init in metaflow/parameters.py: names Metaflow's CLI already uses.
_RESERVED = (
    "params", "with", "tag", "namespace", "obj", "tags", "decospecs", "run-id-file",
    "max-num-splits", "max-workers", "max-log-size", "user-namespace", "run-id",
    "task-id", "runner-attribute-file",
)  # fmt: skip
RESERVED_PARAMETERS = frozenset(_RESERVED) | frozenset(
    n.replace("-", "_") for n in _RESERVED
)
# FlowSpec._NON_PARAMETERS (metaflow/flowspec.py): class attributes Metaflow never
# takes for Parameters, nor any whose name starts with "_" (FlowSpec._get_parameters).
# `name = Parameter("name")` is accepted and ignored: `self.name` is the flow's name
# and `run --name` is no such option.
NON_PARAMETERS = frozenset(
    {"cmd", "foreach_stack", "index", "input", "name", "script_name"}
)
# The positional order of each constructor's arguments (metaflow 2.19).
PARAMETER_ARGS = ("name", "default", "type", "help", "required", "show_default")
INCLUDE_FILE_ARGS = ("name", "required", "is_text", "encoding", "help", "parser")
CONFIG_ARGS = (
    "name",
    "default",
    "default_value",
    "help",
    "required",
    "parser",
    "plain",
)
JSON_TYPES = {"JSONType", "JSONTypeClass"}
TYPES = ("str", "int", "float", "bool")


def class_attribute(
    scope: Scope,
    small: cst.CSTNode,
    params: dict[str, m.Parameter],
    configs: dict[str, m.Config],
) -> None:
    """Record the Parameter, IncludeFile or Config a class-body statement declares
    (by attribute name); any other binding of the name drops a base class's."""
    if isinstance(small, cst.Assign) and len(small.targets) == 1:
        target = small.targets[0].target
    elif isinstance(small, cst.AnnAssign) and small.value is not None:
        target = small.target
    else:
        return
    if not isinstance(target, cst.Name):
        return
    attr = target.value
    # a later class attribute replaces whatever a base class bound to the name
    params.pop(attr, None)
    configs.pop(attr, None)
    call = small.value
    if not isinstance(call, cst.Call):
        return
    source = scope.source
    if attr.startswith("_") or attr in NON_PARAMETERS:
        if any(is_metaflow(source, call.func, n) for n in ("Parameter", "IncludeFile")):
            return  # Metaflow never registers it: no command-line option, no artifact
    if is_metaflow(source, call.func, "Parameter"):
        params[attr] = _parameter(scope, attr, call, "parameter")
    elif is_metaflow(source, call.func, "IncludeFile"):
        params[attr] = _parameter(scope, attr, call, "include_file")
    elif is_metaflow(source, call.func, "Config"):
        args = _arguments(source, call, CONFIG_ARGS)
        name = _name(scope, call, args, attr)
        plain = (
            bool(static(scope, args["plain"], "plain")) if "plain" in args else False
        )
        configs[attr] = m.Config(attr, name, source.pos(small), plain)


def _arguments(
    source: Source, call: cst.Call, names: tuple[str, ...]
) -> dict[str, cst.BaseExpression]:
    """The call's arguments by parameter name (positional ones by ``names``)."""
    args: dict[str, cst.BaseExpression] = {}
    positional = 0
    for arg in call.args:
        if arg.star:
            raise CodegenError(
                source.pos(arg),
                f"cannot read `{source.code(arg).strip(', ')}` in `{source.code(call.func)}(...)` statically",
                "pass the arguments one by one, by keyword",
            )
        if arg.keyword is not None:
            args[arg.keyword.value] = arg.value
        elif positional < len(names):
            args[names[positional]] = arg.value
            positional += 1
    return args


def _name(
    scope: Scope, call: cst.Call, args: dict[str, cst.BaseExpression], attr: str
) -> str:
    expr = args.get("name")
    if expr is None:
        raise CodegenError(
            scope.source.pos(call),
            f"{attr}: a name is required",
            f"give the name first: `{attr} = {scope.source.code(call.func)}({attr!r}, ...)`",
        )
    name = static(scope, expr, "the name")
    if not isinstance(name, str):
        raise CodegenError(
            scope.source.pos(expr),
            f"{attr}: the name must be a string, got `{scope.source.code(expr)}`",
            f"name it with a string, e.g. {attr!r}",
        )
    return name


def _parameter(scope: Scope, attr: str, call: cst.Call, kind: str) -> m.Parameter:
    source = scope.source
    args = _arguments(
        source, call, PARAMETER_ARGS if kind == "parameter" else INCLUDE_FILE_ARGS
    )
    name = _name(scope, call, args, attr)
    if name in RESERVED_PARAMETERS:
        raise CodegenError(
            source.pos(args["name"]),
            f"Parameter name {name!r} is a reserved word in Metaflow",
            "rename the parameter: Metaflow's own command-line options use that name "
            "(Metaflow refuses it too)",
        )
    _check_option_name(source, args["name"], name)
    has_default = "default" in args
    default, default_code = (
        value(scope, args["default"]) if has_default else (None, None)
    )
    if kind == "include_file":
        ptype = "str"
    else:
        ptype = _parameter_type(scope, name, args.get("type"), default)
    required = value(scope, args["required"])[0] if "required" in args else False
    help_text = value(scope, args["help"])[0] if "help" in args else ""
    return m.Parameter(
        attr=attr,
        name=name,
        type=ptype,
        default=default,
        has_default=has_default and default is not None,
        required=bool(required) if not isinstance(required, m.Deferred) else False,
        help=(
            ""
            if help_text is None or isinstance(help_text, m.Deferred)
            else str(help_text)
        ),
        pos=source.pos(call),
        kind=kind,
        default_code=default_code,
    )


def _check_option_name(source: Source, expr: cst.BaseExpression, name: str) -> None:
    """Metaflow makes a Parameter the command-line option ``--<name>``, which click
    names ``<name>`` with "-" as "_", lower-cased: that must be an identifier. The
    generated Params dataclass has a field of that name (but lower-cased)."""
    option = name.replace("-", "_")
    if not option.lower().isidentifier():
        raise CodegenError(
            source.pos(expr),
            f"Parameter name {name!r} cannot be a command-line option",
            "use letters, digits, '_' and '-', not starting with a digit: Metaflow "
            'refuses it too (click: "Could not determine name for option")',
        )
    if keyword.iskeyword(option):
        raise CodegenError(
            source.pos(expr),
            f"Parameter name {name!r} is a Python keyword: the generated Params "
            "dataclass cannot have a field of that name",
            f"rename the parameter (e.g. {name + '_value'!r}); Metaflow itself accepts it",
        )


def _parameter_type(
    scope: Scope, name: str, type_expr: cst.BaseExpression | None, default: Any
) -> str:
    if type_expr is not None:
        bare = _type_name(scope, type_expr)
        if bare in TYPES:
            return bare
        if bare in JSON_TYPES:
            return "json"
        raise CodegenError(
            scope.source.pos(type_expr),
            f"Parameter {name!r}: unsupported type `{scope.source.code(type_expr)}`",
            "use str, int, float, bool or metaflow.JSONType",
        )
    if isinstance(default, m.Deferred):
        return "auto"  # Metaflow takes the type of the evaluated default
    for pytype in (bool, int, float, str):
        if isinstance(default, pytype):
            return pytype.__name__
    if isinstance(default, (dict, list)):
        return "json"
    return "str"


def _type_name(scope: Scope, expr: cst.BaseExpression, depth: int = 0) -> str:
    """The bare name of a ``type=``: str/int/float/bool/JSONType, through aliases."""
    written = dotted(expr) or ""
    bare = written.split(".")[-1]
    if (
        bare in TYPES
        or bare in JSON_TYPES
        or not written
        or depth > 10
        or written in scope.class_names
    ):
        return bare
    symbol = scope.loader.resolve(scope.source, written, values=True)
    if isinstance(symbol, Value) and dotted(symbol.expr):
        return _type_name(Scope(scope.loader, symbol.source), symbol.expr, depth + 1)
    return bare
