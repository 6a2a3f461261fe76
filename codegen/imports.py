"""Find the file of a module the way Python's import system would, without importing.

``python flow.py`` searches, in order, the flow file's directory (``sys.path[0]``,
symlinks resolved), the ``PYTHONPATH`` entries and the interpreter's own path
(standard library, site-packages). The generator searches the same places, with the
``--path DIR`` directories between the flow's directory and ``PYTHONPATH``; the
installed part is the generator's own interpreter's ``sys.path``, so run it in the
environment the flow runs in.

Lookup follows ``importlib.machinery.PathFinder``/``FileFinder`` on the file system:
in each directory a regular package (``x/__init__.py``) wins over a module
(``x.py``), which wins over a namespace package (a directory without
``__init__``); namespace portions are gathered over all directories, and a regular
package or module in a later directory still wins over them. Compiled modules
(extension or bytecode only) are found but cannot be read. Nothing is imported and
no finder code runs; every file system query goes through the ``Path`` objects it is
given, so the generation cache records them (``cache.py``).

This module imports nothing heavy: the cache computes the search path on a hit.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from importlib.machinery import BYTECODE_SUFFIXES, EXTENSION_SUFFIXES, SOURCE_SUFFIXES
from pathlib import Path
from typing import Iterable, Mapping, Sequence

# FileFinder's order: extension modules, then source, then bytecode.
SUFFIXES = (*EXTENSION_SUFFIXES, *SOURCE_SUFFIXES, *BYTECODE_SUFFIXES)
# Modules that are never user code: the standard library and Metaflow itself.
NEVER_SEARCHED = frozenset(sys.stdlib_module_names) | frozenset(
    sys.builtin_module_names
)


@dataclass(frozen=True)
class SearchPath:
    """Where modules are looked for besides the flow file's own directory."""

    # --path directories, then PYTHONPATH entries (absolute): "local" code, whose
    # module constants the generator reads
    local: tuple[str, ...] = ()
    # the generator's installed packages (its sys.path without [0] and the above)
    installed: tuple[str, ...] = ()

    def as_json(self) -> dict[str, list[str]]:
        return {"local": list(self.local), "installed": list(self.installed)}


def search_path(
    paths: Iterable[Path | str] = (),
    environ: Mapping[str, str] | None = None,
    cwd: str | None = None,
    interpreter_path: Sequence[str] | None = None,
) -> SearchPath:
    """The search path for ``--path`` ``paths`` (relative ones against ``cwd``), the
    ``PYTHONPATH`` of ``environ`` (an empty entry is ``cwd``, as Python reads it) and
    the interpreter's ``sys.path``."""
    env: Mapping[str, str] = os.environ if environ is None else environ
    cwd = os.getcwd() if cwd is None else cwd
    local: list[str] = []
    for entry in [*map(str, paths), *_split(env.get("PYTHONPATH", ""))]:
        folder = os.path.normpath(os.path.join(cwd, entry))
        if folder not in local:
            local.append(folder)
    installed: list[str] = []
    entries = list(sys.path[1:] if interpreter_path is None else interpreter_path)
    for entry in entries:
        if not entry:
            continue
        folder = os.path.normpath(os.path.join(cwd, entry))
        if folder not in local and folder not in installed:
            installed.append(folder)
    return SearchPath(tuple(local), tuple(installed))


def _split(value: str) -> list[str]:
    return value.split(os.pathsep) if value else []


@dataclass(frozen=True)
class Module:
    """A module found on disk."""

    # dotted name, e.g. "common.pipeline"
    name: str
    # the source file (x.py or x/__init__.py); None for a namespace package or a
    # compiled module
    file: Path | None
    # where its submodules are (a package's directories); () for a plain module
    locations: tuple[Path, ...]
    # the search path entry its top-level package was found under
    root: Path
    # found in the flow's directory, a --path directory or PYTHONPATH
    local: bool
    # found but not readable as Python source (compiled, standard library)
    opaque: bool = False
    # for each of ``locations``: whether it is local (a namespace package's portions
    # may be both); () = all as ``local``
    local_locations: tuple[bool, ...] = ()

    @property
    def is_package(self) -> bool:
        return bool(self.locations)


class Finder:
    """Locates modules by dotted name in ``entries`` ((directory, local) pairs)."""

    def __init__(self, entries: Sequence[tuple[Path, bool]]):
        self.entries = list(entries)
        self._found: dict[str, Module | None] = {}

    def directories(self) -> list[Path]:
        """The directories searched for a top-level module, in order."""
        return [folder for folder, _ in self.entries]

    def find(self, name: str) -> Module | None:
        """The module ``name`` (absolute, dotted), or None if Python would not find it."""
        if name in self._found:
            return self._found[name]
        head, _, tail = name.rpartition(".")
        if not head:
            entries = self.entries
            if (
                name in NEVER_SEARCHED
            ):  # only local code can shadow the standard library
                entries = [(folder, local) for folder, local in entries if local]
            found = _find_in(entries, name, name, None)
            if found is None and name in NEVER_SEARCHED:
                found = Module(name, None, (), Path(), False, True)
        else:
            parent = self.find(head)
            if parent is None:
                found = None
            elif parent.opaque:  # its submodules cannot be read either
                found = Module(name, None, (), parent.root, parent.local, True)
            else:
                flags = parent.local_locations or (parent.local,) * len(
                    parent.locations
                )
                found = _find_in(
                    list(zip(parent.locations, flags)), tail, name, parent.root
                )
        self._found[name] = found
        return found


def _find_in(
    entries: Sequence[tuple[Path, bool]], part: str, name: str, root: Path | None
) -> Module | None:
    """``part`` in the first of ``entries`` that has it, as FileFinder looks."""
    portions: list[tuple[Path, bool]] = []
    for folder, local in entries:
        package = folder / part
        if package.is_dir():
            for suffix in SUFFIXES:
                init = package / f"__init__{suffix}"
                if init.is_file():
                    readable = suffix in SOURCE_SUFFIXES
                    return Module(
                        name,
                        init if readable else None,
                        (package,),
                        root or folder,
                        local,
                        not readable,
                    )
            portions.append((package, local))
        for suffix in SUFFIXES:
            file = folder / f"{part}{suffix}"
            if file.is_file():
                readable = suffix in SOURCE_SUFFIXES
                return Module(
                    name,
                    file if readable else None,
                    (),
                    root or folder,
                    local,
                    not readable,
                )
    if portions:
        folders = tuple(p for p, _ in portions)
        flags = tuple(f for _, f in portions)
        return Module(
            name,
            None,
            folders,
            root or folders[0].parent,
            flags[0],
            local_locations=flags,
        )
    return None
