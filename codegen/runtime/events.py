"""Publish events to flows deployed on Temporal (``@trigger``): a Python API in the
spirit of Metaflow's ``ArgoEvent``, and a command line.

    from mf_temporal_codegen.runtime.events import TemporalEvent

    runs = TemporalEvent("data_ready").publish({"alpha": "0.5"})
    for run in runs:
        print(run)          # DataFlow: DataFlow/temporal-0192... started

    mf-temporal-codegen publish data_ready --payload alpha=0.5 [--id ID]
    python -m mf_temporal_codegen.runtime.events publish data_ready --payload alpha=0.5
    python -m mf_temporal_codegen.runtime.events list     # who waits for what

Publishing finds the deployments waiting for the event on the server and starts
one run of each, Parameters from the payload as Metaflow maps them; publishing the
same event id again starts nothing new (see :mod:`.subscriptions`). Without an id,
each publication is a new event (a fresh uuid). The server is ``address``/
``namespace``, else ``$TEMPORAL_ADDRESS``/``$TEMPORAL_NAMESPACE``, else
``localhost:7233``/``default``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError

from .connection import (
    ADDRESS_ENV,
    DEFAULT_ADDRESS,
    DEFAULT_NAMESPACE,
    NAMESPACE_ENV,
    ConnectError,
    connect,
    default_address,
    default_namespace,
)
from .subscriptions import PayloadError, Started, listed, publish

__all__ = ["Started", "TemporalEvent", "main"]


class TemporalEvent:
    """An event with a name and a payload (``ArgoEvent``'s shape): ``publish`` starts
    the runs of every deployment waiting for it."""

    def __init__(
        self,
        name: str,
        payload: Mapping[str, Any] | None = None,
        *,
        address: str | None = None,
        namespace: str | None = None,
    ):
        self.name = name
        self.payload: dict[str, Any] = dict(payload or {})
        self.address = address or default_address()
        self.namespace = namespace or default_namespace()

    def add_to_payload(self, key: str, value: Any) -> TemporalEvent:
        """Set ``key`` (often a Parameter's name) to ``str(value)``, as
        ``ArgoEvent.add_to_payload`` does."""
        self.payload[key] = str(value)
        return self

    def publish(
        self, payload: Mapping[str, Any] | None = None, id: str | None = None
    ) -> list[Started]:
        """Publish once (``payload`` on top of this event's); the run of each
        deployment waiting for it (``Started.duplicate``: an earlier publication of
        ``id`` started it). Not from inside a running event loop: await
        :meth:`publish_async` there."""
        return asyncio.run(self.publish_async(payload, id))

    async def publish_async(
        self,
        payload: Mapping[str, Any] | None = None,
        id: str | None = None,
        client: Client | None = None,
    ) -> list[Started]:
        """:meth:`publish` for a running event loop (``client``: use this one)."""
        if client is None:
            client = await connect(self.address, self.namespace)
        return await publish(
            client, self.name, {**self.payload, **(payload or {})}, event_id=id
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mf-temporal-codegen publish",
        description="Publish an event: start the runs of the flows deployed with "
        "@trigger(event=EVENT) (once per event id).",
    )
    parser.add_argument("event", metavar="EVENT")
    parser.add_argument(
        "--payload",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a payload field (repeatable); Parameters take the fields Metaflow "
        "maps to them, typed as the Parameter",
    )
    parser.add_argument(
        "--payload-json",
        default=None,
        metavar="JSON",
        help="payload fields as a JSON object (--payload fields go on top)",
    )
    parser.add_argument(
        "--id",
        default=None,
        help="the event's id: publishing the same id again starts nothing new "
        "(default: a fresh uuid)",
    )
    _server_options(parser)
    return parser


def _server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--address",
        default=None,
        help=f"Temporal server (default: ${ADDRESS_ENV}, else {DEFAULT_ADDRESS})",
    )
    parser.add_argument(
        "--namespace",
        default=None,
        help=f"Temporal namespace (default: ${NAMESPACE_ENV}, else {DEFAULT_NAMESPACE})",
    )


def _payload(args: argparse.Namespace) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    if args.payload_json:
        loaded = json.loads(args.payload_json)
        if not isinstance(loaded, dict):
            raise ValueError("--payload-json must be a JSON object")
        payload.update(loaded)
    for item in args.payload:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--payload {item!r}: write KEY=VALUE")
        payload[key] = value
    return payload


async def _publish(args: argparse.Namespace) -> int:
    try:
        payload = _payload(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    event = TemporalEvent(args.event, payload, address=args.address)
    event.namespace = args.namespace or event.namespace
    try:
        started = await event.publish_async(id=args.id)
    except PayloadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not started:
        print(f"no deployment waits for {args.event} on {event.address}")
        return 0
    for run in started:
        print(str(run), file=sys.stderr if run.error else sys.stdout)
    return 1 if any(run.error for run in started) else 0


async def _list(args: argparse.Namespace) -> int:
    client = await connect(
        args.address or default_address(), args.namespace or default_namespace()
    )
    found = await listed(client)
    if not found:
        print("no subscriptions")
    for s in found:
        mapping = ", ".join(f"{p} <- {f}" for p, f in s.parameters.items())
        print(
            f"{s.deployment} waits for {s.type} {s.event}"
            + (f" (Parameters: {mapping})" if mapping else "")
        )
    return 0


def main(argv: list[str] | None = None, *, exit_process: bool | None = None) -> int:
    """``publish EVENT ...`` (the default command) or ``list``; the exit code. With
    ``exit_process`` (default: without ``argv``, the command line) it ends the
    process itself once the output is flushed."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] == "list":
        lister = argparse.ArgumentParser(
            prog="python -m mf_temporal_codegen.runtime.events list",
            description="The deployments waiting for events, by deployment.",
        )
        _server_options(lister)
        command = _list(lister.parse_args(args_list[1:]))
    else:
        if args_list and args_list[0] == "publish":
            args_list = args_list[1:]
        command = _publish(_parser().parse_args(args_list))
    try:
        code = asyncio.run(command)
    except (ConnectError, RPCError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 1
    if argv is None if exit_process is None else exit_process:
        # (the SDK's threads can abort a finalizing interpreter:
        # temporalio/sdk-python#300)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    main()
