"""Task processes live no longer than the process that started them.

Stdlib only: the fork server imports it before Metaflow.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys


def _prctl():
    """libc's ``prctl``, resolved before any fork (Linux only; else None)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None).prctl  # the C library the interpreter links
    except (OSError, AttributeError):
        return None


_PRCTL = _prctl()
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """In a child just forked by ``parent``: have the kernel SIGKILL it when that
    process (the worker, or the fork server) dies, however it dies, so no task
    outlives the worker that owns it. Exits at once if the parent is already gone."""
    if _PRCTL is None:
        return
    _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)
