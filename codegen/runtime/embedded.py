"""``mf-temporal-codegen run FLOW.py``: generate, start a server and a worker, run once.

Everything is in-process and temporary: the workflow module is generated into a fresh
package in a temporary directory (importable by name, which the workflow sandbox
needs), a dev server starts unless ``address`` is given, a worker serves a unique task
queue, and per-step progress is printed as tasks start and finish.
"""

from __future__ import annotations

import importlib
import logging
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path
from typing import IO

from temporalio.client import WorkflowFailureError

from .devserver import DevServerError, dev_server
from .worker import (
    ConnectError,
    ParamError,
    connect,
    describe_failure,
    parse_params,
    running_worker,
    start_workflow,
)


async def run_embedded(
    flow_file: Path,
    params: list[str],
    *,
    address: str | None,
    launcher: str = "subprocess",
    out: IO[str] = sys.stdout,
) -> int:
    """Run the flow once on Temporal; 0 on success, 1 on failure, 2 on bad params.

    The last line printed is ``pathspec: Flow/run_id`` whenever the run got an id.
    """
    from ..pipeline import generate_to_dir

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    with tempfile.TemporaryDirectory(prefix="mf-temporal-run-") as tmp:
        package = Path(tmp) / f"mf_temporal_run_{uuid.uuid4().hex}"
        package.mkdir()
        (package / "__init__.py").touch()
        modules = generate_to_dir(Path(flow_file).resolve(), package)
        if len(modules) != 1:
            say(f"error: expected one flow in {flow_file}, generated {len(modules)}")
            return 1
        with importable(package):
            module = importlib.import_module(f"{package.name}.{Path(modules[0]).stem}")
            try:
                run_params = parse_params(module.PARAMS, params)
            except ParamError as exc:
                say(f"error: {exc}")
                return 2
            progress = Progress(say)
            try:
                with _quiet_activity_failures():
                    return await _run(
                        module, run_params, address, launcher, progress, say
                    )
            except (DevServerError, ConnectError) as exc:
                say(f"error: {exc}")
                return 1


async def _run(module, params, address, launcher, progress, say) -> int:
    async with AsyncExitStack() as stack:
        if address:
            client = await connect(address)
            server = None
        else:
            server = await stack.enter_async_context(dev_server(ui=True))
            client = server.client
        task_queue = f"mf-temporal-run-{uuid.uuid4().hex[:12]}"
        await stack.enter_async_context(
            running_worker(
                client,
                module,
                task_queue=task_queue,
                launcher=launcher,
                on_event=progress,
                fail_fast=True,
            )
        )
        handle = await start_workflow(client, module, params, task_queue=task_queue)
        url = server.workflow_url(handle.id) if server else None
        say(f"workflow {handle.id}" + (f": {url}" if url else f" on {address}"))
        try:
            result = await handle.result()
        except WorkflowFailureError as exc:
            say(f"✗ run failed: {describe_failure(exc.cause or exc)}")
            if progress.pathspec:
                say(f"pathspec: {progress.pathspec}")
            return 1
        say(f"✓ run finished: {result.pathspec}")
        say(f"pathspec: {result.pathspec}")
        return 0


class Progress:
    """Turns activity events into one line each: ``▶``, ``✓`` or ``✗``."""

    def __init__(self, say: Callable[[str], None]):
        self.say = say
        self.pathspec: str | None = None

    def __call__(self, event: dict) -> None:
        self.pathspec = f"{event['flow']}/{event['run_id']}"
        task = f"{event['step']} {event['task_id']}"
        kind = event["event"]
        if kind == "started":
            self.say(f"▶ {task} (attempt {event['attempt']})")
        elif kind == "finished":
            self.say(f"✓ {task} {event['seconds']:.1f}s")
        else:
            reason = (
                f"exit code {event['exit_code']}"
                if "exit_code" in event
                else event.get("error", "error")
            )
            self.say(
                f"✗ {task} attempt {event['attempt']} failed after "
                f"{event['seconds']:.1f}s ({reason})"
            )


@contextmanager
def _quiet_activity_failures() -> Iterator[None]:
    """Failed tasks already print a ``✗`` line: mute the SDK's traceback per failure."""
    logger = logging.getLogger("temporalio.activity")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextmanager
def importable(package: Path) -> Iterator[None]:
    """Make ``package`` importable by name (the workflow sandbox re-imports it)."""
    root = str(package.parent)
    sys.path.insert(0, root)
    try:
        yield
    finally:
        sys.path.remove(root)
        for name in [n for n in sys.modules if n.split(".")[0] == package.name]:
            del sys.modules[name]
