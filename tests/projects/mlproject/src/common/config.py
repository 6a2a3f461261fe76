"""A small YAML-subset parser for the project's config files (no PyYAML needed).

Supported: ``key: value`` mappings nested by indentation, ``- item`` lists,
inline ``[a, b]`` lists, ``# comments``, quoted strings, and scalars (int, float,
true/false, null). Values keep everything after the first ``": "``, so URLs such as
``s3://bucket/prefix/`` stay as written.
"""

from __future__ import annotations

import re
from typing import Any

_INT = re.compile(r"^[-+]?\d+$")
_FLOAT = re.compile(r"^[-+]?(\d+\.\d*|\.\d+|\d+(\.\d*)?[eE][-+]?\d+)$")


class ConfigSyntaxError(ValueError):
    """A line the parser cannot read."""


def parse_yaml(text: str) -> dict[str, Any]:
    """Parse ``text`` into a dict (the top level must be a mapping)."""
    lines = []
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = _strip_comment(raw).rstrip()
        if not stripped.strip():
            continue
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise ConfigSyntaxError(f"line {number}: tabs are not allowed for indentation")
        lines.append((len(stripped) - len(stripped.lstrip(" ")), stripped.strip(), number))
    if not lines:
        return {}
    value, rest = _block(lines, 0, lines[0][0])
    if rest != len(lines):
        raise ConfigSyntaxError(f"line {lines[rest][2]}: unexpected indentation")
    if not isinstance(value, dict):
        raise ConfigSyntaxError("the top level must be a mapping")
    return value


def _strip_comment(line: str) -> str:
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i]
    return line


def _block(lines, i, indent):
    """The mapping or list starting at ``lines[i]`` (all at ``indent``)."""
    if lines[i][1].startswith("- ") or lines[i][1] == "-":
        items = []
        while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("-"):
            body = lines[i][1][1:].strip()
            i += 1
            if body:
                items.append(_scalar(body))
            elif i < len(lines) and lines[i][0] > indent:
                value, i = _block(lines, i, lines[i][0])
                items.append(value)
            else:
                items.append(None)
        return items, i
    mapping: dict[str, Any] = {}
    while i < len(lines) and lines[i][0] == indent:
        _, text, number = lines[i]
        key, sep, rest = text.partition(":")
        if not sep or (rest and not rest.startswith(" ")):
            raise ConfigSyntaxError(f"line {number}: expected 'key: value', got {text!r}")
        key = _unquote(key.strip())
        if key in mapping:
            raise ConfigSyntaxError(f"line {number}: duplicate key {key!r}")
        rest = rest.strip()
        i += 1
        if rest:
            mapping[key] = _scalar(rest)
        elif i < len(lines) and lines[i][0] > indent:
            mapping[key], i = _block(lines, i, lines[i][0])
        else:
            mapping[key] = None
    return mapping, i


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _scalar(text: str) -> Any:
    if text.startswith("[") and text.endswith("]"):
        inner = text[1:-1].strip()
        return [_scalar(part.strip()) for part in inner.split(",")] if inner else []
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    lowered = text.lower()
    if lowered in ("true", "yes"):
        return True
    if lowered in ("false", "no"):
        return False
    if lowered in ("null", "~"):
        return None
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    return text
