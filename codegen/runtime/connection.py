"""Reaching the Temporal server and riding out its outages: connecting with patience,
telling a down server from a real error, and waiting (one line when it goes away,
one when it is back) instead of failing with a traceback."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import cache
from typing import Any

from temporalio.client import Client
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)
from temporalio.service import RPCError, RPCStatusCode

# The server when none is given: Temporal's own environment variables (as its CLI and
# SDKs read them), else the local default.
ADDRESS_ENV, NAMESPACE_ENV = "TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE"
DEFAULT_ADDRESS, DEFAULT_NAMESPACE = "localhost:7233", "default"


def default_address() -> str:
    return os.environ.get(ADDRESS_ENV) or DEFAULT_ADDRESS


def default_namespace() -> str:
    return os.environ.get(NAMESPACE_ENV) or DEFAULT_NAMESPACE


# Connecting, starting a run or syncing the schedule while the server is unreachable
# is retried this long, then an error; waiting for a run's result, forever.
START_PATIENCE = timedelta(seconds=60)

# Probes of an unreachable server: first and longest wait between two.
PROBE_FIRST, PROBE_MAX = timedelta(seconds=1), timedelta(seconds=10)

# A serving worker checks that the server is reachable this often.
WATCH_INTERVAL = timedelta(seconds=5)

# RPC errors of a server that is down, restarting or overloaded.
TRANSIENT = frozenset(
    {
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.RESOURCE_EXHAUSTED,
        RPCStatusCode.CANCELLED,
        RPCStatusCode.UNKNOWN,
    }
)

CONNECT_FAILURE_GRACE = 0.5


class ConnectError(RuntimeError):
    """The Temporal server cannot be reached."""


class ServerWatch:
    """Says once that the server became unreachable and once that it is back."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.down = False

    def lost(self) -> None:
        if not self.down:
            self.down = True
            print(
                f"server unreachable at {self.address}; waiting (retrying)...",
                file=sys.stderr,
                flush=True,
            )

    def back(self) -> None:
        if self.down:
            self.down = False
            print(f"server at {self.address} is back", file=sys.stderr, flush=True)


class _OutageNoise(logging.Filter):
    """Drops the SDK's retry messages of an unreachable server (ServerWatch says it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Unavailable" not in record.getMessage()


@cache
def quiet_runtime() -> Runtime:
    """A Temporal runtime whose SDK log lines go to Python logging, without the
    per-retry lines of an outage."""
    logger = logging.getLogger("mf_temporal_codegen.temporal_sdk")
    logger.addFilter(_OutageNoise())
    forwarding = LogForwardingConfig(logger=logger, append_target_to_name=False)
    telemetry = TelemetryConfig(
        logging=LoggingConfig(
            filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
            forwarding=forwarding,
        )
    )
    return Runtime(telemetry=telemetry)


async def connect(
    address: str,
    namespace: str = "default",
    *,
    patience: timedelta | None = None,
    watch: ServerWatch | None = None,
) -> Client:
    """``Client.connect`` with an error that names the address. With ``patience``
    an unreachable server is retried that long. With ``watch`` (which says so once)
    the client logs no line per retry of an outage (:func:`quiet_runtime`)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + (patience.total_seconds() if patience else 0)
    runtime = quiet_runtime() if watch else None
    delay = PROBE_FIRST.total_seconds()
    while True:
        try:
            client = await Client.connect(address, namespace=namespace, runtime=runtime)
        except RuntimeError as exc:
            # Let the SDK's connection threads wind down: a process that exits right
            # after a failed connect aborts now and then (temporalio/sdk-python#300).
            await asyncio.sleep(CONNECT_FAILURE_GRACE)
            remaining = deadline - loop.time()
            if remaining <= 0:
                waited = (
                    f" (retried for {patience.total_seconds():g}s)" if patience else ""
                )
                raise ConnectError(
                    f"cannot reach Temporal at {address}{waited}: {exc}"
                ) from exc
            if watch:
                watch.lost()
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, PROBE_MAX.total_seconds())
            continue
        if watch:
            watch.back()
        return client


def transient(exc: BaseException) -> bool:
    """Whether ``exc`` is an RPC error of a server that is down or restarting."""
    return isinstance(exc, RPCError) and exc.status in TRANSIENT


async def reachable(client: Client) -> bool:
    """One health check of the server, without retries."""
    try:
        return await client.service_client.check_health(timeout=PROBE_MAX)
    except RPCError:
        return False


async def until_reachable(
    client: Client, watch: ServerWatch, deadline: float | None = None
) -> None:
    """Probe the server with backoff until it answers (then ``watch.back()``); past
    ``deadline`` (loop time) raise :class:`ConnectError`."""
    loop = asyncio.get_running_loop()
    delay = PROBE_FIRST.total_seconds()
    while not await reachable(client):
        if deadline is not None and loop.time() + delay > deadline:
            raise ConnectError(
                f"cannot reach Temporal at {watch.address}: still unreachable"
            )
        await asyncio.sleep(delay)
        delay = min(delay * 2, PROBE_MAX.total_seconds())
    watch.back()


async def through_outages(
    call: Callable[[], Awaitable[Any]],
    client: Client,
    watch: ServerWatch,
    patience: timedelta | None = None,
) -> Any:
    """``await call()``, again each time it fails because the server is unreachable:
    for at most ``patience`` (then :class:`ConnectError`), or forever (None)."""
    loop = asyncio.get_running_loop()
    deadline = None if patience is None else loop.time() + patience.total_seconds()
    while True:
        try:
            return await call()
        except RPCError as exc:
            if not transient(exc):
                raise
        watch.lost()
        await until_reachable(client, watch, deadline)


async def watch_server(client: Client, watch: ServerWatch) -> None:
    """Report outages of the server while a worker serves (the SDK reconnects)."""
    while True:
        await asyncio.sleep(WATCH_INTERVAL.total_seconds())
        if await reachable(client):
            watch.back()
        else:
            watch.lost()
