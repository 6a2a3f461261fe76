"""Metaflow's settings as a Metaflow process would read them where tasks run.

``python flow.py run`` takes the defaults of its top-level options (``--datastore``,
``--metadata`` ...) and the datastore's root from Metaflow's configuration: each
setting ``NAME`` is ``$METAFLOW_NAME``, else the value in the local config (the
``config.json`` of the first ``.metaflow`` directory walking up from where it runs),
else in the global one (``$METAFLOW_HOME/config.json``, or
``config_$METAFLOW_PROFILE.json``; ``METAFLOW_HOME`` defaults to
``~/.metaflowconfig``), else Metaflow's default (``metaflow_config_funcs.from_conf``).
:func:`setting` does the same for a given environment and directory (those of the
worker's tasks), without the values this process's ``metaflow_config`` read when it
was imported.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from metaflow.metaflow_config import DATASTORE_LOCAL_DIR, LOCAL_CONFIG_FILE

DEFAULT_HOME = "~/.metaflowconfig"


class ConfigError(RuntimeError):
    """Metaflow's configuration cannot be read (a missing profile, bad JSON)."""


def setting(name: str, env: Mapping[str, str], workdir: Path) -> Any:
    """The value of Metaflow's setting ``name`` (``DEFAULT_DATASTORE``) for a process
    with environment ``env`` started in ``workdir``; None when nothing sets it."""
    var = "METAFLOW_" + name
    if var in env:
        return env[var]
    for config in (local_config(workdir), global_config(env)):
        if config.get(var) is not None:
            return config[var]
    return None


def local_config(workdir: Path) -> dict[str, Any]:
    """The local config file of a process started in ``workdir`` (as Metaflow's
    ``init_local_config``: only the first ``.metaflow`` walking up counts)."""
    current = os.path.abspath(workdir)
    check = os.path.realpath(os.path.join(current, DATASTORE_LOCAL_DIR))
    while not os.path.isdir(check):
        parent = os.path.dirname(current)
        if parent == current:
            return {}
        current = parent
        check = os.path.join(current, DATASTORE_LOCAL_DIR)
    return _read(os.path.join(check, LOCAL_CONFIG_FILE))


def global_config(env: Mapping[str, str]) -> dict[str, Any]:
    """The global config file of a process with environment ``env`` (Metaflow's
    ``init_config``: a named profile must exist)."""
    home = env.get("METAFLOW_HOME", DEFAULT_HOME)
    profile = env.get("METAFLOW_PROFILE")
    name = f"config_{profile}.json" if profile else "config.json"
    path = os.path.expanduser(os.path.join(home, name))
    if profile and not os.path.exists(path):
        raise ConfigError(f"Unable to locate METAFLOW_PROFILE {profile!r} in {home!r}")
    return _read(path)


def _read(path: str) -> dict[str, Any]:
    """A config file's settings ({} when there is no such file)."""
    try:
        with open(path, encoding="utf-8") as f:
            found = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read Metaflow's config file {path}: {exc}") from exc
    if not isinstance(found, dict):
        raise ConfigError(f"Metaflow's config file {path} is not a JSON object")
    return found
