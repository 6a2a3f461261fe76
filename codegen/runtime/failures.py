"""A failed Metaflow task as its author reads it: the exception line first
(``ValueError: bad fold 3``), then where (step, task, attempt, exit code), then the
traceback once, from the first frame outside Metaflow's and this package's machinery.

The exception comes from the attempt's ``_exception`` artifact (Metaflow stores it
for a failed attempt: type, message and traceback); when there is none (the process
died, the flow file does not load) the last traceback on the task's stderr stands in,
or else its last lines.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

import metaflow

# Frames in these directories (and Python's own ``<frozen ...>`` ones) lead up to the
# user's code: a traceback is shown from the first frame outside them.
_MACHINERY = (
    os.path.dirname(os.path.abspath(metaflow.__file__ or "")) + os.sep,
    os.path.dirname(os.path.abspath(__file__)) + os.sep,
)
_FRAME = re.compile(r'^  File "(?P<path>[^"]*)", line \d+')
TRACEBACK = "Traceback (most recent call last):"


@dataclass(frozen=True)
class Failure:
    """What went wrong in one attempt."""

    # ``ValueError: bad fold 3``, or None when no exception was found
    headline: str | None
    # the traceback (or the stderr lines) that goes with it
    body: str


def headline(type_name: str, message: str) -> str:
    """The exception line as Python prints it (``builtins.`` and ``__main__.``
    dropped), the message's first line only."""
    for prefix in ("builtins.", "__main__."):
        if type_name.startswith(prefix):
            type_name = type_name[len(prefix) :]
    first = message.strip().splitlines()[0] if message.strip() else ""
    return f"{type_name}: {first}" if first else type_name


def of_exception(type_name: str, message: str, stacktrace: str | None) -> Failure:
    """The failure Metaflow recorded (a ``MetaflowExceptionWrapper``)."""
    body = trim(stacktrace) if stacktrace else f"{headline(type_name, message)}"
    return Failure(headline(type_name, message), body.rstrip())


def is_import_error(headline: str | None) -> bool:
    """Whether a failure's exception line is Python failing to import a module."""
    return headline is not None and headline.startswith(
        ("ModuleNotFoundError:", "ImportError:")
    )


def of_stderr(lines: Sequence[str]) -> Failure:
    """The failure as the last traceback on stderr tells it, else its last lines."""
    starts = [i for i, line in enumerate(lines) if line.startswith(TRACEBACK)]
    if not starts:
        tail = [line for line in lines if line.strip()][-20:]
        return Failure(None, "\n".join(tail))
    block = list(lines[starts[-1] :])
    while block and not block[-1].strip():
        block.pop()
    last = block[-1] if len(block) > 1 else ""
    found = last if last and not last.startswith(" ") else None
    return Failure(found, trim("\n".join(block)))


def trim(text: str) -> str:
    """A traceback without its leading machinery frames (each chained traceback in
    it too); unchanged when every frame is machinery."""
    out: list[str] = []
    lines = text.rstrip("\n").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        i += 1
        if not line.startswith(TRACEBACK):
            continue
        frames: list[list[str]] = []
        while i < len(lines) and (lines[i].startswith("  ") or not lines[i].strip()):
            if _FRAME.match(lines[i]) or not frames:
                frames.append([])
            frames[-1].append(lines[i])
            i += 1
        first_user = next(
            (n for n, frame in enumerate(frames) if not _is_machinery(frame[0])),
            0,
        )
        for frame in frames[first_user:]:
            out += frame
    return "\n".join(out)


def _is_machinery(frame_line: str) -> bool:
    found = _FRAME.match(frame_line)
    if found is None:
        return False
    path = found["path"]
    return path.startswith("<frozen ") or path.startswith(_MACHINERY)
