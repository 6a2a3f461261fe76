"""Errors the generator reports against a position in the user's source."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterable, Iterator


@dataclass(frozen=True, order=True)
class Pos:
    """A 1-based line and column in a source file (as the user named it)."""

    file: str
    line: int
    col: int
    # how generated code cites the file: the flow file's base name, or the path of
    # another file (a base class's module) relative to the flow's directory or to
    # the import root it was found under; "" = the base name of ``file``
    cite: str = field(default="", compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    @property
    def cited(self) -> str:
        """``cite``, else the base name of ``file``."""
        return self.cite or self.file.replace("\\", "/").rsplit("/", 1)[-1]


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

    @property
    def errors(self) -> list[CodegenError]:
        """The single errors this one stands for (itself)."""
        return [self]

    def _key(self) -> tuple:
        pos = self.pos
        return (
            pos is not None,
            pos.file if pos else "",
            pos.line if pos else 0,
            pos.col if pos else 0,
        )


class CodegenErrors(CodegenError):
    """Every error found in one invocation, sorted by (file, line, col).

    A ``CodegenError`` itself (the first error's position and message), so code that
    catches ``CodegenError`` still works; ``str()`` prints one block per error."""

    def __init__(self, errors: Iterable[CodegenError]):
        unique: dict[tuple, CodegenError] = {}
        for err in errors:
            for single in err.errors:
                unique.setdefault((single.pos, single.message, single.hint), single)
        self._errors = sorted(unique.values(), key=CodegenError._key)
        if not self._errors:
            raise ValueError("CodegenErrors needs at least one error")
        first = self._errors[0]
        super().__init__(first.pos, first.message, first.hint)

    @property
    def errors(self) -> list[CodegenError]:
        return list(self._errors)

    def __str__(self) -> str:
        return "\n".join(CodegenError.__str__(e) for e in self._errors)


class Collector:
    """Gathers errors so that one run reports all of them (see :class:`CodegenErrors`)."""

    def __init__(self) -> None:
        self.errors: list[CodegenError] = []

    def add(self, err: CodegenError) -> None:
        self.errors.extend(err.errors)

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Record a ``CodegenError`` raised in the block and continue after it."""
        try:
            yield
        except CodegenError as err:
            self.add(err)

    def __bool__(self) -> bool:
        return bool(self.errors)

    def check(self) -> None:
        """Raise :class:`CodegenErrors` if anything was recorded."""
        if self.errors:
            raise CodegenErrors(self.errors)
