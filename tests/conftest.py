"""Shared fixtures: a real Temporal dev server (with the Metaflow search attributes,
``temporal server start-dev --search-attribute MetaflowFlow=Keyword ...``, see
``runtime.devserver``) and an isolated Metaflow datastore.

pytest-asyncio is not a dependency, so the dev server lives on its own event loop in
a background thread. Coroutines that use ``client`` must run on that loop::

    def test_x(temporal_env, client):
        result = temporal_env.run(client.execute_workflow(...))

Code that makes its own event loop (``asyncio.run``, the worker's ``main``) connects
its own client to ``temporal_env.address`` instead.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest
from metaflow.plugins.datastores.local_storage import LocalStorage
from temporalio.client import Client

from mf_temporal_codegen.runtime.devserver import DevServer, dev_server
from s3 import s3_endpoint  # noqa: F401 (a fixture: a moto S3 server)


class TemporalEnv:
    """A dev server (no UI) owned by an event loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._server_cm = dev_server(ui=False)
        self.server: DevServer = self.run(self._server_cm.__aenter__())

    @property
    def client(self) -> Client:
        return self.server.client

    @property
    def address(self) -> str:
        return self.server.address

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 300) -> Any:
        """Run ``coro`` on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        try:
            self.run(self._server_cm.__aexit__(None, None, None), timeout=60)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()


@pytest.fixture(scope="session")
def temporal_env():
    env = TemporalEnv()
    yield env
    env.close()


@pytest.fixture
def client(temporal_env) -> Client:
    """The dev server's client; use it only inside ``temporal_env.run(...)``."""
    return temporal_env.client


@pytest.fixture
def mf_env(tmp_path, monkeypatch) -> Path:
    """A fresh local Metaflow datastore root for tasks and for the Client API here."""
    root = tmp_path / "mfroot"
    (root / LocalStorage.DATASTORE_DIR).mkdir(parents=True)
    monkeypatch.setenv("USERNAME", "tester")
    monkeypatch.setenv("METAFLOW_DATASTORE_SYSROOT_LOCAL", str(root))
    monkeypatch.setenv("METAFLOW_DEFAULT_METADATA", "local")
    monkeypatch.setenv("METAFLOW_DEFAULT_DATASTORE", "local")
    # Metaflow read the env at import time and caches the root on the class: the
    # Client API in this process must look at the same root as the tasks.
    monkeypatch.setattr(LocalStorage, "SYSROOT_VAR", str(root))
    monkeypatch.setattr(
        LocalStorage, "datastore_root", str(root / LocalStorage.DATASTORE_DIR)
    )
    return root


@pytest.fixture(scope="session", autouse=True)
def _session_generation_cache(tmp_path_factory):
    """CLI runs cache generated sources for this session only, never in the user's cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(
            "MF_TEMPORAL_CODEGEN_CACHE_DIR",
            str(tmp_path_factory.mktemp("generation-cache")),
        )
        yield
