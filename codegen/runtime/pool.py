"""A generic worker pool: a host with no checkout that runs the tasks of every
packaged flow routed to its task queues, each from its run's code package::

    mf-temporal-pool --queue pool [--queue gpu ...]

Flows generated with ``--code-package --queue pool`` send their steps' tasks here;
every task runs from the package its run carries (:mod:`.packages`: downloaded
once per hash, checked, cached), so one pool serves every deployed version of every
flow and no run mixes code. The pool is not a version of any Worker Deployment:
which code runs is the run's package, not the worker's. The flows' own workers
(where their checkouts are) run the workflows, ``init`` and compensations.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from contextlib import AsyncExitStack
from datetime import timedelta

from temporalio.service import RPCError
from temporalio.worker import Worker

from .activities import MetaflowActivities
from .connection import ConnectError, ServerWatch, connect
from .worker import (
    DEFAULT_GRACE,
    HEARTBEAT_THROTTLE,
    _serve_until_stopped,
    _stop_on_signals,
    add_server_arguments,
    add_task_arguments,
    make_launcher,
)


def pool_worker(
    client,
    activities: MetaflowActivities,
    task_queue: str,
    *,
    max_concurrent_activities: int | None = None,
    grace: timedelta = DEFAULT_GRACE,
) -> Worker:
    """An unversioned, activity-only worker for the tasks routed to ``task_queue``."""
    return Worker(
        client,
        task_queue=task_queue,
        activities=[activities.step, activities.clone, activities.facts],
        max_concurrent_activities=max_concurrent_activities,
        graceful_shutdown_timeout=grace,
        max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mf-temporal-pool",
        description="Run the tasks of packaged flows (generated with --code-package) "
        "routed to the given task queues, each from its run's code package; no "
        "checkout needed.",
    )
    parser.add_argument(
        "--queue",
        dest="queues",
        action="append",
        required=True,
        metavar="QUEUE",
        help="a task queue to serve (repeatable)",
    )
    add_server_arguments(parser)
    add_task_arguments(parser)
    return parser


async def _serve(args: argparse.Namespace) -> int:
    stop, now_serving = _stop_on_signals()
    try:
        launcher = make_launcher(args.launcher)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        watch = ServerWatch(args.address)
        client = await connect(
            args.address, args.namespace, patience=args.wait_for_server, watch=watch
        )
        activities = MetaflowActivities(None, launcher=launcher)
        grace = timedelta(seconds=args.grace_seconds)
        queues = list(dict.fromkeys(args.queues))
        async with AsyncExitStack() as stack:
            for queue in queues:
                worker = pool_worker(
                    client,
                    activities,
                    queue,
                    max_concurrent_activities=args.max_concurrent_activities,
                    grace=grace,
                )
                await stack.enter_async_context(worker)
            print(
                f"worker pool on {args.address} (namespace {args.namespace}, task "
                f"queues {', '.join(queues)}; packages cached in "
                f"{activities.packages.root}, launcher {launcher.name}); Ctrl-C "
                "to stop",
                flush=True,
            )
            await _serve_until_stopped(client, watch, stop, now_serving, grace)
        return 0
    except asyncio.CancelledError:
        print("stopped before serving", flush=True)
        return 0
    finally:
        launcher.close()


def main(argv: list[str] | None = None) -> int:
    """``mf-temporal-pool``; ends the process itself once the output is flushed (see
    :func:`.worker.main`)."""
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        code = asyncio.run(_serve(args))
    except ConnectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 1
    except RPCError as exc:
        print(f"error: Temporal at {args.address}: {exc}", file=sys.stderr)
        code = 1
    if argv is not None:
        return code
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
