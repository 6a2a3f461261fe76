"""Format generated source with black, in a fixed mode (never the user's config)."""

from __future__ import annotations

import black

from .errors import CodegenError

MODE = black.Mode(
    target_versions={black.TargetVersion.PY311},
    line_length=88,
    string_normalization=True,
    magic_trailing_comma=True,
)


def format_source(name: str, text: str) -> str:
    """Black-formatted ``text``; on failure the unformatted text is kept in the error."""
    try:
        return black.format_str(text, mode=MODE)
    except Exception as exc:  # black raises several unrelated types
        raise CodegenError(
            None,
            f"internal error: generated {name} does not format: {exc}",
            "this is a bug in mf-temporal-codegen: please report it with the flow file",
        ) from None
