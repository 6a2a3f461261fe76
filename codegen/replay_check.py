"""``mf-temporal-codegen replay-check OUT/``: would the regenerated modules break runs?

It imports the generated workflow module(s) in OUT and replays workflow histories
against their ``WORKFLOWS`` with Temporal's :class:`~temporalio.worker.Replayer`:
the flows' recent executions on a server (``--address``: every workflow type of the
modules, running and closed, newest first) or the ``*.json`` histories in a
directory (``--histories``, as ``temporal workflow show --output json`` or
``--export`` writes them). A history that no longer replays (a nondeterminism
error, or any other workflow task failure) is a run the new code would break.

Exit codes: 0 when every history replays, 1 when one would break, 2 for usage
errors (no module in OUT, a missing directory, an unreachable server).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import re
import sys
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from urllib.parse import quote, unquote

from temporalio import workflow
from temporalio.client import Client, WorkflowHistory
from temporalio.runtime import Runtime, TelemetryConfig
from temporalio.service import RPCError
from temporalio.worker import Replayer

from .run_command import importable, muted

PROG = "mf-temporal-codegen replay-check"
EXIT_OK, EXIT_BREAKS, EXIT_USAGE = 0, 1, 2
DEFAULT_LIMIT = 100
# histories fetched from the server at once
FETCH_CONCURRENCY = 8
REASON_WIDTH = 200
# between an exported file's quoted workflow id and its run id
RUN_SEPARATOR = "--"
# of a quoted workflow id in a file name (the start event holds the whole id)
FILE_ID_CHARS = 200
# "Workflow activation completion failed: Failure { failure: Some(Failure { message: "..."
CORE_MESSAGE = re.compile(r'Failure \{ message: "(.*?)", source:')


class UsageError(Exception):
    """An expected problem with the command's inputs: one line, exit 2."""


@dataclass(frozen=True)
class Broken:
    """A history that does not replay against the current modules."""

    workflow_id: str
    run_id: str
    reason: str


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not usage + message
        self.exit(EXIT_USAGE, f"{PROG}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        description="Replay recent (or exported) histories of the flows in OUTDIR "
        "against the generated modules there; exit 1 if a run would break.",
    )
    p.add_argument(
        "out",
        type=Path,
        metavar="OUTDIR",
        help="the generated modules (mf-temporal-codegen FLOW.py -o OUTDIR)",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--address",
        metavar="HOST:PORT",
        help="replay the flows' recent executions on this server",
    )
    source.add_argument(
        "--histories",
        type=Path,
        metavar="DIR",
        help="replay every *.json history in DIR",
    )
    p.add_argument(
        "--namespace", default="default", help="with --address (default: default)"
    )
    p.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"newest executions replayed (default {DEFAULT_LIMIT})",
    )
    p.add_argument(
        "--export",
        type=Path,
        metavar="DIR",
        help="with --address: also save the fetched histories in DIR",
    )
    return p


def main(argv: list[str]) -> int:
    """Run the command; the exit code."""
    p = _parser()
    args = p.parse_args(argv)
    if args.export and not args.address:
        p.error("--export needs --address")
    if args.limit < 1:
        p.error("--limit must be at least 1")
    try:
        with generated_modules(args.out) as modules:
            broken, count = asyncio.run(_check(modules, args))
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for b in broken:
        print(f"would break: {b.workflow_id} run {b.run_id}: {b.reason}")
    print(f"replayed {count} histories: {len(broken)} would break")
    return EXIT_BREAKS if broken else EXIT_OK


async def _check(
    modules: list[ModuleType], args: argparse.Namespace
) -> tuple[list[Broken], int]:
    if args.histories:
        histories = read_histories(args.histories)
    else:
        histories = await fetch_histories(
            args.address, args.namespace, workflow_types(modules), args.limit
        )
        if args.export:
            export_histories(histories, args.export)
    workflows = [cls for module in modules for cls in module.WORKFLOWS]
    return await replay(workflows, histories), len(histories)


@contextmanager
def generated_modules(out: Path) -> Iterator[list[ModuleType]]:
    """The generated workflow modules in ``out``, importable by name (as the
    workflow sandbox re-imports them) for the block: as modules of a package with a
    fresh name, a link to ``out`` (whatever ``out`` is called)."""
    out = out.resolve()
    if not out.is_dir():
        raise UsageError(f"{out}: not a directory")
    with tempfile.TemporaryDirectory(prefix="mf-temporal-replay-") as tmp:
        package = Path(tmp) / f"mf_temporal_replay_{uuid.uuid4().hex}"
        package.symlink_to(out, target_is_directory=True)
        with importable(package):
            modules = [_import(package, f) for f in sorted(out.glob("*_workflow.py"))]
            modules = [m for m in modules if hasattr(m, "WORKFLOWS")]
            if not modules:
                raise UsageError(f"no generated workflow module in {out}")
            yield modules


def _import(package: Path, file: Path) -> ModuleType:
    try:
        return importlib.import_module(f"{package.name}.{file.stem}")
    except Exception as exc:  # a hand edit, another runtime API: the user's to fix
        raise UsageError(
            f"cannot import {file}: {_one_line(str(exc) or type(exc).__name__)}"
        ) from exc


def workflow_types(modules: Sequence[ModuleType]) -> list[str]:
    """The Temporal workflow type names the modules register."""
    # (the SDK has no public accessor for a class's @workflow.defn name)
    names = (
        workflow._Definition.must_from_class(c).name
        for m in modules
        for c in m.WORKFLOWS
    )
    return [name for name in names if name is not None]


async def fetch_histories(
    address: str, namespace: str, types: Sequence[str], limit: int
) -> list[WorkflowHistory]:
    """The histories of the newest ``limit`` executions of ``types``, running or closed."""
    from .runtime.connection import ConnectError, connect

    try:
        client = await connect(address, namespace)
    except ConnectError as exc:
        raise UsageError(_one_line(str(exc))) from exc
    query = "WorkflowType IN (" + ", ".join(f"'{t}'" for t in types) + ")"
    try:
        executions = [e async for e in client.list_workflows(query, limit=limit)]
        gate = asyncio.Semaphore(FETCH_CONCURRENCY)
        return list(
            await asyncio.gather(
                *(_fetch(client, gate, e.id, e.run_id) for e in executions)
            )
        )
    except RPCError as exc:
        raise UsageError(
            f"{address} (namespace {namespace}): {_one_line(exc.message)}"
        ) from exc


async def _fetch(
    client: Client, gate: asyncio.Semaphore, workflow_id: str, run_id: str
) -> WorkflowHistory:
    async with gate:
        return await client.get_workflow_handle(
            workflow_id, run_id=run_id
        ).fetch_history()


def export_histories(histories: Sequence[WorkflowHistory], folder: Path) -> None:
    """Save each history as ``<quoted workflow id>--<run id>.json`` in ``folder``."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for h in histories:
            name = f"{quote(h.workflow_id, safe='')[:FILE_ID_CHARS]}{RUN_SEPARATOR}{h.run_id}.json"
            (folder / name).write_text(h.to_json())
    except OSError as exc:
        raise UsageError(f"--export {folder}: {exc.strerror or exc}") from exc


def read_histories(folder: Path) -> list[WorkflowHistory]:
    """Every ``*.json`` history in ``folder``, in file name order."""
    if not folder.is_dir():
        raise UsageError(f"--histories {folder}: not a directory")
    return [read_history(f) for f in sorted(folder.glob("*.json"))]


def read_history(file: Path) -> WorkflowHistory:
    """One exported history. Its workflow id is the one its start event records,
    else the file name's (unquoted, without an ``--<run id>`` suffix)."""
    try:
        history = WorkflowHistory.from_json("", file.read_text())
        run_id = history.run_id
    except Exception as exc:  # not JSON, not a history: the file is the problem
        raise UsageError(
            f"{file}: not a workflow history ({_one_line(str(exc))})"
        ) from exc
    workflow_id = history.events[
        0
    ].workflow_execution_started_event_attributes.workflow_id
    if not workflow_id:
        workflow_id = unquote(file.stem.removesuffix(f"{RUN_SEPARATOR}{run_id}"))
    return WorkflowHistory(workflow_id, history.events)


async def replay(
    workflows: Sequence[type], histories: Sequence[WorkflowHistory]
) -> list[Broken]:
    """The histories that do not replay against ``workflows``."""
    # (without logging: the SDK's core logs a warning per failure on stdout)
    replayer = Replayer(
        workflows=workflows, runtime=Runtime(telemetry=TelemetryConfig(logging=None))
    )
    broken = []
    with muted("temporalio.worker", logging.CRITICAL):
        async with replayer.workflow_replay_iterator(_iterate(histories)) as results:
            async for result in results:
                if result.replay_failure is not None:
                    h = result.history
                    broken.append(
                        Broken(h.workflow_id, h.run_id, _reason(result.replay_failure))
                    )
    return broken


async def _iterate(histories: Sequence[WorkflowHistory]):
    for h in histories:
        yield h


def _reason(failure: Exception) -> str:
    """The failure's message, without the SDK's wrapping of a core failure."""
    text = str(failure)
    core = CORE_MESSAGE.search(text)
    return _one_line(core.group(1) if core else text)


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= REASON_WIDTH else line[: REASON_WIDTH - 1] + "…"
