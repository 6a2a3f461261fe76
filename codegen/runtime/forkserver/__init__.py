"""The fork-server launcher: tasks fork from an interpreter that imported Metaflow.

``launcher`` runs in the worker (:class:`ForkServerLauncher`); ``server`` is the
process it starts. Names are loaded on first use, so that starting the server
(``python -m ...forkserver.server``) imports nothing of the launcher's.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = ("AVAILABLE", "ForkServerError", "ForkServerLauncher")
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        from . import launcher

        return getattr(launcher, name)
    raise AttributeError(name)
