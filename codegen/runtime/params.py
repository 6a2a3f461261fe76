"""``trigger --param NAME=VALUE``: typed by the flow's Parameters, and refused before
any workflow starts when Metaflow could not receive the value."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any

from .orchestration import encode_parameters

_SCALARS = {"str": str, "int": int, "float": float, "bool": bool}

_BOOLS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}

# Longest ``METAFLOW_INIT_<NAME>=<value>`` environment entry a task can get: Linux
# refuses any single argv or environment string longer than MAX_ARG_STRLEN (32
# pages, 131072 bytes with its NUL) with E2BIG.
MAX_ENV_ENTRY_BYTES = 131072 - 1


class ParamError(ValueError):
    """A ``--param`` that does not fit the flow's Parameters."""


def parse_params(params_cls: type, pairs: list[str]) -> Any:
    """Build a ``PARAMS`` instance from ``NAME=VALUE`` strings, typed by its fields."""
    fields = {f.name: f for f in dataclasses.fields(params_cls)}
    values = _parse_pairs(fields, pairs)
    missing = [
        name
        for name, f in fields.items()
        if name not in values
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ParamError("missing required parameter(s): " + ", ".join(missing))
    params = params_cls(**values)
    check_params(params)
    return params


def resume_params(params_cls: type, pairs: list[str]) -> tuple[Any, dict[str, str]]:
    """``resume --param NAME=VALUE``: the workflow's input (a resume does not read
    it: the origin's values hold; a required field not given gets a placeholder)
    and the given values, encoded as ``init`` reads them, that replace the origin's."""
    fields = {f.name: f for f in dataclasses.fields(params_cls)}
    given = _parse_pairs(fields, pairs)
    required = {
        name: placeholder(_kind(f.type))
        for name, f in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    params = params_cls(**{**required, **given})
    check_params(params)
    encoded = encode_parameters(params)
    return params, {name: encoded[name] for name in given if name in encoded}


def placeholder(kind: str) -> Any:
    """A value of type ``kind`` (``str``/``int``/``float``/``bool``, else JSON) for
    an input field nobody reads."""
    return _SCALARS[kind]() if kind in _SCALARS else None


def _parse_pairs(fields: dict[str, Any], pairs: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        key = name.strip().replace("-", "_")
        if not sep:
            raise ParamError(f"--param {pair!r}: expected NAME=VALUE")
        if key not in fields:
            known = ", ".join(sorted(fields)) or "none"
            raise ParamError(f"unknown parameter {name!r} (known: {known})")
        values[key] = _convert(key, fields[key].type, raw)
    return values


def check_params(params: Any) -> None:
    """Raise ParamError for a value Metaflow cannot receive: its ``init`` gets each
    parameter as an environment variable ``METAFLOW_INIT_<NAME>``, which can hold
    no NUL byte and, on Linux, at most ~128 KiB."""
    for name, value in encode_parameters(params).items():
        if "\0" in value:
            raise ParamError(f"parameter {name}: the value contains a NUL byte")
        room = MAX_ENV_ENTRY_BYTES - len(f"METAFLOW_INIT_{name.upper()}=")
        size = len(value.encode("utf-8", "surrogateescape"))
        if size > room:
            raise ParamError(
                f"parameter {name}: the value is {size:,} bytes, more than the "
                f"{room:,} Metaflow can take (parameters reach its init as "
                "environment variables, at most 128 KiB each)"
            )


def _kind(annotation: Any) -> str:
    """``str``/``int``/``float``/``bool``/``Any`` (JSON) of a PARAMS field's type,
    ``X | None`` and ``Optional[X]`` included; annotations may be strings (``from
    __future__ import annotations``) or types."""
    if not isinstance(annotation, str):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if args and typing.get_origin(annotation) in (typing.Union, types.UnionType):
            annotation = args[0] if len(args) == 1 else typing.Any
        if annotation is typing.Any:
            return "Any"
        return getattr(annotation, "__name__", "")
    text = annotation.replace(" ", "").replace("typing.", "")
    for wrapper in ("Optional[", "Union["):
        if text.startswith(wrapper) and text.endswith("]"):
            text = text[len(wrapper) : -1].replace(",", "|")
    parts = [p for p in text.split("|") if p != "None"]
    return parts[0] if len(parts) == 1 else "Any"


def _convert(name: str, annotation: Any, raw: str) -> Any:
    kind = _kind(annotation)
    try:
        if kind == "bool":
            return _BOOLS[raw.strip().lower()]
        if kind in _SCALARS:
            return _SCALARS[kind](raw)
        return json.loads(raw)
    except (KeyError, ValueError) as exc:
        expected = (
            "true/false" if kind == "bool" else kind if kind in _SCALARS else "JSON"
        )
        raise ParamError(f"parameter {name}: {raw!r} is not valid {expected}") from exc
