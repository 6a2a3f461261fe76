"""Read a flow file statically with libcst into the flow model (the first stage).

Nothing of the user's code is imported or executed: base classes defined in other
modules (``from common.pipeline import Pipeline``) are located as Python would
locate them (``imports``: the flow's directory, ``--path``, ``PYTHONPATH``,
installed packages) and parsed the same way (``sources``). The file's ``__main__``
block names the flow (``main_block``), its MRO is resolved (``classes``) and read
into the model (``build``: ``decorators``, ``parameters``, ``steps``). Values the
source spells out are folded, the rest is kept as ``Deferred`` for Metaflow (``fold``).

Errors do not stop the reading: a bad decorator, parameter or step is skipped and
the rest is read, so that one run reports every error (``read_flows``).
"""

from __future__ import annotations

import hashlib
import sys
import threading
from pathlib import Path
from typing import Any, Callable, TypeVar

from . import model as m
from .build import build_flow
from .classes import FLOWSPEC, Memo, Resolved, Undefined, has_steps, linearize
from .errors import CodegenError, CodegenErrors, Collector
from .imports import SearchPath, search_path
from .main_block import main_flow
from .sources import ClassRef, Loader

_T = TypeVar("_T")


def load_flows(
    path: Path, display: str | None = None, search: SearchPath | None = None
) -> list[m.Flow]:
    """Every flow class defined in ``path``, fully resolved, in source order; raises
    :class:`CodegenErrors` with every error found."""
    flows, errors = read_flows(path, display, search)
    if errors:
        raise CodegenErrors(errors)
    return flows


def read_flows(
    path: Path, display: str | None = None, search: SearchPath | None = None
) -> tuple[list[m.Flow], list[CodegenError]]:
    """The flow ``path`` runs (a list of one, or none) and every error found
    reading it.

    The flow is the class the file's ``if __name__ == "__main__":`` block
    instantiates. It is returned (so that its graph can still be checked) unless
    an error leaves its graph unknown (a bad transition, a missing base class);
    one whose decorators or parameters had errors is returned without them.
    ``search`` defaults to ``PYTHONPATH`` and the generator's installed packages.

    libcst reads and walks the syntax tree recursively: whatever Python compiles
    (an expression nested 900 deep) is read in a thread with a deep stack."""
    return _deep(_read_flows, path, display, search)


# libcst needs a few Python frames per level of nesting, Python's compiler fewer
DEEP_RECURSION_LIMIT = 50_000
DEEP_STACK_BYTES = 512 * 1024 * 1024


def _deep(fn: Callable[..., _T], *args: Any) -> _T:
    """``fn(*args)`` in a thread with a large stack and recursion limit."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = fn(*args)
        except BaseException as exc:  # re-raised in the calling thread
            result["error"] = exc

    old_limit = sys.getrecursionlimit()
    try:
        old_size = threading.stack_size(DEEP_STACK_BYTES)
        try:
            thread = threading.Thread(
                target=run, name="mf-temporal-codegen-parse", daemon=True
            )
        finally:
            threading.stack_size(old_size)
        sys.setrecursionlimit(max(old_limit, DEEP_RECURSION_LIMIT))
        thread.start()
    except (RuntimeError, ValueError, MemoryError):  # no such stack here: the plain way
        sys.setrecursionlimit(old_limit)
        return fn(*args)
    try:
        thread.join()
    finally:
        sys.setrecursionlimit(old_limit)
    if "error" in result:
        raise result["error"]
    return result["value"]


def _read_flows(
    path: Path, display: str | None, search: SearchPath | None
) -> tuple[list[m.Flow], list[CodegenError]]:
    display = display or str(path)
    search = search_path() if search is None else search
    loader = Loader(path, display, search)
    errors = Collector()
    try:
        source = loader.flow()
    except CodegenError as err:
        return [], err.errors
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    memo: Memo = {}
    classes: list[Resolved] = []
    for node in source.classes.values():
        ref = ClassRef(node, source)
        mro, missing = linearize(loader, ref, memo, ())
        classes.append((ref, mro, missing))
    flow_classes = [c for c in classes if FLOWSPEC in c[1]]
    for ref, mro, missing in classes:
        # an import that cannot be resolved matters for flows (and for what looks
        # like one); a helper class's may be an installed package the generator's
        # environment lacks
        certain = FLOWSPEC in mro or not flow_classes or has_steps(ref)
        for problem in missing:
            if certain or isinstance(problem, Undefined):
                errors.add(problem)
    target = main_flow(loader, source, classes, memo, errors)
    if target is None:
        return [], errors.errors
    ref, mro, missing = target
    if missing:
        for problem in missing:
            errors.add(problem)
        return [], errors.errors
    flow = build_flow(loader, ref, mro, sha, errors)
    return ([] if flow is None else [flow]), errors.errors
