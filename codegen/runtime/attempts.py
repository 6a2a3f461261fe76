"""Attempt leases: which attempt of a Metaflow task is alive, and how it ended.

The worker running an attempt keeps a small lease next to the task's own files in the
datastore (``<attempt>.temporal-lease.json``, so every host that shares the datastore
sees it): written before the task process starts, refreshed while it runs, closed with
its exit code when it ends. Before a later attempt of the same task starts, it waits
until the earlier attempt is no longer alive (its lease is closed, or was not refreshed
for :data:`LEASE_TTL_SECONDS` because its worker died, and its process with it), so two
attempts of one task never run at once. What the earlier attempt left then decides
what happens (``MetaflowActivities._settle_lost``).
"""

from __future__ import annotations

import io
import json
import os
import socket
import time
from dataclasses import dataclass

from metaflow.datastore import FlowDataStore

LEASE_NAME = "temporal-lease.json"
# A running attempt's worker rewrites its lease this often ...
LEASE_REFRESH_SECONDS = 5.0
# ... and a lease not rewritten for this long belongs to an attempt whose worker died.
LEASE_TTL_SECONDS = 30.0
# How often a later attempt looks at the lease of an earlier one it waits for.
LEASE_POLL_SECONDS = 1.0
RUNNING, ENDED = "running", "ended"
# Who runs the attempt, for the lease and for people reading it.
OWNER = f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Lease:
    """What an attempt's lease says."""

    state: str
    updated: float
    owner: str = ""
    exit_code: int | None = None

    def alive(self, now: float | None = None) -> bool:
        """Whether the attempt may still be running."""
        now = time.time() if now is None else now
        return self.state == RUNNING and now - self.updated < LEASE_TTL_SECONDS


class Leases:
    """The leases of one task's attempts in ``store``."""

    def __init__(self, store: FlowDataStore, run_id: str, step: str, task_id: str):
        self._storage = store._storage_impl
        self._dir = self._storage.path_join(store.flow_name, run_id, step, task_id)

    def _path(self, attempt: int) -> str:
        return self._storage.path_join(self._dir, f"{attempt}.{LEASE_NAME}")

    def write(self, attempt: int, state: str, exit_code: int | None = None) -> None:
        body = {"state": state, "updated": time.time(), "owner": OWNER}
        if exit_code is not None:
            body["exit_code"] = exit_code
        data = io.BytesIO(json.dumps(body).encode())
        self._storage.save_bytes(iter([(self._path(attempt), data)]), overwrite=True)

    def read(self, attempt: int) -> Lease | None:
        with self._storage.load_bytes([self._path(attempt)]) as loaded:
            for _, local, _ in loaded:
                if local is None:
                    return None
                with open(local, "rb") as f:
                    try:
                        return Lease(**json.load(f))
                    except (ValueError, TypeError):
                        return None  # half-written by a dying worker
        return None
