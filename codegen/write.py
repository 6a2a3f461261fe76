"""Write generated files atomically, only where they changed; or diff them."""

from __future__ import annotations

import os
from pathlib import Path


def _current(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def stale(files: dict[Path, str]) -> dict[Path, str]:
    """The files whose content on disk differs from the generated one."""
    return {p: text for p, text in files.items() if _current(p) != text}


def diff(files: dict[Path, str]) -> str:
    """A unified diff from what is on disk to what would be generated."""
    import difflib

    chunks: list[str] = []
    for path, text in files.items():
        before = _current(path)
        chunks.extend(
            difflib.unified_diff(
                (before or "").splitlines(keepends=True),
                text.splitlines(keepends=True),
                fromfile=str(path) if before is not None else "/dev/null",
                tofile=str(path),
            )
        )
    return "".join(chunks)


def write_all(files: dict[Path, str]) -> list[Path]:
    """Write every changed file via a temp file and rename; the paths written."""
    import tempfile

    written = []
    for path, text in stale(files).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
        )
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
        written.append(path)
    return written
