"""``mf-temporal-codegen run FLOW.py``: generate, start a server and a worker, run once.

Everything is in-process: the workflow module is generated into a package under the
generation cache (or a temporary one; importable by name, which the workflow sandbox
needs), a dev server starts unless ``address`` is given, a worker serves a unique task
queue, and every task runs in the directory ``run`` was started from, as under
``python flow.py run``. Per-task progress is printed as tasks start and finish, and
every line a task prints as ``python flow.py run`` prints it
(``<time> [<run_id>/<step>/<task_id> (pid N)] line``).

This is the generator's command, not part of the runtime: the runtime never imports
the generator.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import logging
import os
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

from temporalio.client import WorkflowFailureError

from .cache import Cache
from .cache import folder as cache_folder
from .pipeline import Options, generate
from .runtime.devserver import DevServerError, dev_server
from .runtime.module_check import step_specs
from .write import write_all

# The worker side (Metaflow, Temporal's worker) is imported while the dev server
# starts: see ``run_embedded``.
WORKER_MODULE = "mf_temporal_codegen.runtime.worker"
DEFAULT_LAUNCHER = "default"  # (runtime.worker.DEFAULT_LAUNCHER)


async def run_embedded(
    flow_file: Path,
    params: list[str],
    *,
    address: str | None,
    launcher: str = DEFAULT_LAUNCHER,
    options: Options = Options(),
    out: IO[str] = sys.stdout,
) -> int:
    """Run the flow once on Temporal; 0 on success, 1 on failure, 2 on bad params.

    Tasks run in the current directory. The last line printed is
    ``pathspec: Flow/run_id`` whenever the run got an id. What does not depend on
    each other overlaps: the dev server starts while the module is generated, and
    Metaflow checks the flow while the fork server starts.
    """

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    async with AsyncExitStack() as stack:
        server = None
        if not address:
            server = await stack.enter_async_context(
                _in_background(dev_server(ui=True))
            )
        with _package_dir(flow_file, options) as package:
            worker, modules = await asyncio.gather(
                asyncio.to_thread(importlib.import_module, WORKER_MODULE),
                asyncio.to_thread(
                    generate_modules, Path(flow_file).resolve(), package, options
                ),
            )
            if len(modules) != 1:
                say(
                    f"error: expected one flow in {flow_file}, generated {len(modules)}"
                )
                return 1
            with importable(package):
                module = importlib.import_module(
                    f"{package.name}.{Path(modules[0]).stem}"
                )
                try:
                    run_params = worker.parse_params(module.PARAMS, params)
                except worker.ParamError as exc:
                    say(f"error: {exc}")
                    return 2
                progress = Progress(say)
                expected = (
                    DevServerError,
                    worker.ConnectError,
                    worker.StaleModule,
                    worker.FlowLoadError,
                    worker.SearchAttributesMissing,
                )
                try:
                    with muted("temporalio.activity", logging.ERROR):
                        return await _run(
                            worker,
                            module,
                            run_params,
                            address,
                            server,
                            launcher,
                            progress,
                            say,
                        )
                except expected as exc:
                    say(f"error: {exc}")
                    return 1


async def _run(worker, module, params, address, server, launcher, progress, say) -> int:
    async with AsyncExitStack() as stack:
        launcher = worker.make_launcher(launcher)
        stack.callback(launcher.close)
        return await _serve_and_run(
            stack, worker, module, params, address, server, launcher, progress, say
        )


async def _serve_and_run(
    stack, worker, module, params, address, server, launcher, progress, say
) -> int:
    # Metaflow loads the flow where the tasks run (the worker's start-up check), the
    # fork server imports Metaflow, and the dev server comes up, all at once.
    outcomes = await asyncio.gather(
        worker.check_flow(module),
        worker.warm_up(module, launcher),
        server if server is not None else _none(),
        return_exceptions=True,
    )
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    server = outcomes[2]
    client = server.client if server is not None else await worker.connect(address)
    task_queue = f"mf-temporal-run-{uuid.uuid4().hex[:12]}"
    await stack.enter_async_context(
        worker.running_worker(
            client,
            module,
            task_queue=task_queue,
            launcher=launcher,
            on_event=progress,
            fail_fast=True,
            task_output=True,
            check=False,
            ui_url=server.ui_url if server is not None else None,
        )
    )
    # steps routed to their own task queues (--queue, --gpu-queue): this process
    # serves those queues too, with activity-only workers (a pool each)
    routed = sorted({s.task_queue for s in step_specs(module).values() if s.task_queue})
    for queue in routed:
        await stack.enter_async_context(
            worker.running_worker(
                client,
                module,
                task_queue=queue,
                launcher=launcher,
                on_event=progress,
                fail_fast=True,
                task_output=True,
                check=False,
                ui_url=server.ui_url if server is not None else None,
                search_attributes=False,
                activities_only=True,
            )
        )
    if routed:
        say(f"also serving the routed steps' task queues: {', '.join(routed)}")
    handle = await worker.start_workflow(client, module, params, task_queue=task_queue)
    url = server.workflow_url(handle.id) if server else None
    say(f"workflow {handle.id}" + (f": {url}" if url else f" on {address}"))
    try:
        result = await handle.result()
    except WorkflowFailureError as exc:
        seconds = getattr(module, "WORKFLOW_TIMEOUT", None)
        timeout = timedelta(seconds=seconds) if seconds else None
        say(f"✗ run failed: {worker.describe_failure(exc.cause or exc, timeout)}")
        if progress.pathspec:
            say(f"pathspec: {progress.pathspec}")
        return 1
    say(f"✓ run finished: {result.pathspec}")
    say(f"pathspec: {result.pathspec}")
    return 0


async def _none() -> None:
    return None


def generate_modules(flow_file: Path, package: Path, options: Options) -> list[Path]:
    """Generate the flow's modules into ``package`` (through the generation cache);
    the workflow module paths."""
    files = generate([flow_file], package, options, Cache.from_env())
    write_all(files)
    return [p for p in files if p.name.endswith("_workflow.py")]


@contextmanager
def _package_dir(flow_file: Path, options: Options) -> Iterator[Path]:
    """The package the run's modules are generated into. With the generation cache on,
    a fixed one per flow file and options under the cache folder (the same inputs
    give the same output: a cache hit, and its bytecode is reused), else a fresh
    temporary one."""
    root = cache_folder()
    if root is None:
        with tempfile.TemporaryDirectory(prefix="mf-temporal-run-") as tmp:
            package = Path(tmp) / f"mf_temporal_run_{uuid.uuid4().hex}"
            package.mkdir()
            (package / "__init__.py").touch()
            yield package
        return
    key = hashlib.sha256(
        repr((str(Path(flow_file).resolve()), options, os.getcwd())).encode()
    ).hexdigest()[:24]
    package = root / "run" / key / f"mf_temporal_run_{key}"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").touch()
    yield package


@asynccontextmanager
async def _in_background(manager):
    """Enter the async context ``manager`` in the background: the block gets an
    awaitable of what it yields; ``manager`` is exited after the block (once it
    finished entering)."""
    entering = asyncio.ensure_future(manager.__aenter__())
    try:
        yield entering
    finally:
        try:
            await asyncio.shield(entering)
        except BaseException:  # it did not start: nothing to exit
            pass
        else:
            await manager.__aexit__(None, None, None)


class Progress:
    """Turns activity events into lines: ``▶``, ``✓`` or ``✗`` per task attempt, and
    each line a task prints, prefixed as Metaflow's runtime prefixes it."""

    def __init__(self, say: Callable[[str], None]):
        self.say = say
        self.pathspec: str | None = None

    def __call__(self, event: dict) -> None:
        self.pathspec = f"{event['flow']}/{event['run_id']}"
        step, task_id = event["step"], event["task_id"]
        # task ids start with their step's name (the parameters task's does not)
        task = task_id if task_id.startswith(step) else f"{step} {task_id}"
        kind = event["event"]
        if kind == "output":
            stamp = datetime.now().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
            path = f"{event['run_id']}/{event['step']}/{event['task_id']}"
            # (Metaflow strips each line, leading white space too)
            text = event["line"].strip().decode("utf-8", "replace")
            self.say(f"{stamp} [{path} (pid {event['pid']})] {text}")
        elif kind == "started":
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
def muted(logger_name: str, level: int) -> Iterator[None]:
    """Only records of ``level`` and above from ``logger_name`` for the block (the
    SDK logs a traceback per failure that a command reports in one line itself)."""
    logger = logging.getLogger(logger_name)
    previous = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(previous)


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
