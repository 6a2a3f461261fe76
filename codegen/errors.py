"""Errors the generator reports against a position in the user's source."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Pos:
    """A 1-based line and column in a source file (as the user named it)."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class CodegenError(Exception):
    """A problem in the user's flow that stops generation (exit code 2)."""

    def __init__(self, pos: Pos | None, message: str, hint: str | None = None):
        super().__init__(message)
        self.pos = pos
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        where = f"{self.pos}: " if self.pos else ""
        text = f"{where}error: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text
