"""End-to-end speed: ``python flow.py run`` vs the generated workflow, per launcher.

Two measurements, side by side in one run, on a dev server this script starts:

1. **Foreach end to end.** A trivial foreach flow (``start`` fans out over
   ``range(width)``, a one-line body, ``join``, ``end``) at each ``--widths``: wall
   time of ``python flow.py run --max-workers N`` (a fresh process, as a user runs it)
   against ``mf-temporal-codegen run flow.py`` (``run``: a fresh process too, with no
   flags, i.e. the default launcher; it generates the module, starts its own dev
   server and worker, runs the flow and stops everything) and against the generated
   workflow on Temporal with each launcher (from ``start_workflow`` to its result; the
   worker is long-running, so it and its fork server are started once before the
   timed runs). Every run is checked through the Metaflow Client API (one ``body``
   task per split) outside the timed part. ``run`` is measured at widths below
   1,000 only (it is the path for trying a flow; the long-running worker modes
   cover the wide runs); its target is at most a quarter of ``python flow.py run``.
   For the two one-process modes the table also shows the CPU time of the whole
   process tree (``tree cpu``, median): unlike wall time it hardly depends on what
   else the machine runs.

2. **Per-task orchestration overhead.** A linear flow of ``--steps`` trivial steps (one
   task at a time) on Temporal. Per run, with ``tasks`` = the steps plus ``init``::

       wall/task     = workflow wall time / tasks
       process/task  = sum of the tasks' process times / tasks, a process time being
                       launcher spawn to exit with its output drained (the task's
                       own time, interpreter start-up included)
       overhead/task = wall/task - process/task

   i.e. everything else one task costs: the workflow task that schedules it, dispatch
   to the worker, the activity's bookkeeping (its files, logs saved to Metaflow's log
   store, read-back), spawn and reap. Medians over runs. ``python flow.py run`` of the
   same flow gives Metaflow's own wall/task for comparison.

Modes are interleaved run by run (load from elsewhere hits all alike); medians of
``--runs`` runs (``--wide-runs`` at widths of 1,000 and more: a local 1,000-way run takes
minutes here). Ratios are against ``python flow.py run``, which gets
``--max-num-splits`` as needed. The defaults (3 runs at 100-way, 1 at 1,000-way, 3 of
the linear flow) take ~10 minutes on 2 cores. Usage::

    python bench/bench_foreach.py [--widths 100,1000] [--runs 3] [--wide-runs 1]
        [--max-workers 16] [--steps 20] [--modes local,run,subprocess,fork]

e.g. ``--widths 100 --modes local,run --steps 0`` compares only ``mf-temporal-codegen
run`` with ``python flow.py run``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path
from types import ModuleType

from metaflow.plugins.datastores.local_storage import LocalStorage

from mf_temporal_codegen.pipeline import generate_to_dir
from mf_temporal_codegen.runtime.devserver import dev_server
from mf_temporal_codegen.runtime.forkserver import ForkServerLauncher
from mf_temporal_codegen.runtime.launcher import Launcher
from mf_temporal_codegen.runtime.specs import RunOptions
from mf_temporal_codegen.runtime.worker import (
    make_launcher,
    running_worker,
    run_workflow,
    warm_up,
)

# The trivial wide foreach the scale test runs too (its end checks the split order).
WIDE_FLOW = (
    Path(__file__)
    .resolve()
    .parents[1]
    .joinpath("tests", "flows", "wide_flow.py")
    .read_text()
)
MODES = ("local", "run", "subprocess", "fork")
# The `run` command's target: at most this fraction of `python flow.py run`'s time.
RUN_TARGET = 0.25


def linear_flow(steps: int) -> str:
    """A flow of ``steps`` trivial steps in a row (``start`` ... ``end``)."""
    names = ["start", *(f"s{i}" for i in range(1, steps - 1)), "end"]
    body = []
    for name, after in zip(names, names[1:] + [None]):
        body.append(f"    @step\n    def {name}(self):\n        self.x = 1\n")
        if after:
            body.append(f"        self.next(self.{after})\n")
        body.append("\n")
    return (
        "from metaflow import FlowSpec, step\n\n\nclass LinearFlow(FlowSpec):\n"
        + "".join(body)
        + '\nif __name__ == "__main__":\n    LinearFlow()\n'
    )


class TimedLauncher(Launcher):
    """Records how long each task's process ran (spawn to exit, output drained)."""

    def __init__(self, inner: Launcher):
        self.inner, self.name = inner, inner.name
        self.seconds: list[float] = []

    async def spawn(self, argv, env, cwd):
        return await self.inner.spawn(argv, env, cwd)

    async def run(self, argv, **kwargs):
        started = time.perf_counter()
        try:
            return await super().run(argv, **kwargs)
        finally:
            self.seconds.append(time.perf_counter() - started)

    def take(self) -> list[float]:
        taken, self.seconds = self.seconds, []
        return taken

    def close(self) -> None:
        self.inner.close()


class Bench:
    """The flows, their generated modules, and how to run them each way."""

    def __init__(self, root: Path, client, max_workers: int):
        self.root, self.client, self.max_workers = root, client, max_workers
        self.env = {
            **os.environ,
            "USERNAME": os.environ.get("USERNAME") or "bench",
            "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(root / "store"),
        }
        os.environ.update(self.env)  # the worker's tasks
        os.chdir(root)  # where they run, as `python flow.py run` runs from there
        (root / "store" / LocalStorage.DATASTORE_DIR).mkdir(parents=True)
        # Metaflow cached the root at import: point the Client API here at the store.
        LocalStorage.SYSROOT_VAR = str(root / "store")
        LocalStorage.datastore_root = str(root / "store" / LocalStorage.DATASTORE_DIR)
        self.queues: dict[tuple[str, str], str] = {}
        # CPU seconds of each run's process tree, for the modes that are one process
        self.cpu: dict[str, list[float]] = {}
        sys.path.insert(0, str(root))  # the workflow sandbox imports modules by name

    def write_flow(self, name: str, source: str) -> tuple[Path, ModuleType]:
        """Write the flow, generate its workflow module and import it."""
        flow = self.root / f"{name}.py"
        flow.write_text(source)
        package = self.root / f"bench_{name}"
        package.mkdir()
        (package / "__init__.py").touch()
        [workflow] = generate_to_dir(flow, package)
        return flow, importlib.import_module(f"{package.name}.{workflow.stem}")

    async def start_workers(self, stack, modules, launchers) -> None:
        """One long-running worker per (module, launcher), each on its own queue."""
        for module in modules:
            for mode, launcher in launchers.items():
                queue = f"bench-{module.FLOW.name}-{mode}"
                await stack.enter_async_context(
                    running_worker(
                        self.client, module, task_queue=queue, launcher=launcher
                    )
                )
                self.queues[module.FLOW.name, mode] = queue

    def run_local(self, flow: Path, *args: str) -> tuple[float, str]:
        """``python flow.py run``: (wall seconds, run id)."""
        id_file = self.root / f"run-id-{uuid.uuid4().hex[:8]}"
        argv = [sys.executable, flow.name, "--no-pylint", "--metadata=local"]
        argv += ["--datastore=local", "run", "--max-workers", str(self.max_workers)]
        argv += ["--run-id-file", str(id_file), *args]
        seconds, done = self.timed("local", argv, flow.parent)
        if done.returncode:
            sys.exit(f"local run failed:\n{done.stderr.decode()[-3000:]}")
        return seconds, id_file.read_text().strip()

    def timed(self, mode: str, argv: list[str], cwd: Path):
        """Run ``argv``; (wall seconds, the completed process). The CPU time of its
        whole process tree goes to ``self.cpu[mode]``."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(argv, cwd=cwd, env=self.env, capture_output=True)
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        self.cpu.setdefault(mode, []).append(cpu)
        return seconds, done

    def run_command(self, flow: Path, params: dict) -> tuple[float, str]:
        """``mf-temporal-codegen run flow.py`` (no flags but the parameters and a
        non-default --max-workers): (wall seconds, run id)."""
        cli = Path(sys.executable).with_name("mf-temporal-codegen")
        argv = [str(cli), "run", flow.name]
        argv += [a for k, v in params.items() for a in ("--param", f"{k}={v}")]
        if self.max_workers != 16:
            argv += ["--max-workers", str(self.max_workers)]
        seconds, done = self.timed("run", argv, flow.parent)
        last = done.stdout.decode().strip().splitlines()[-1:]
        if done.returncode or not last or not last[0].startswith("pathspec: "):
            sys.exit(f"run command failed:\n{done.stdout.decode()[-3000:]}")
        return seconds, last[0].rsplit("/", 1)[1]

    async def run_temporal(self, module, mode: str, params) -> tuple[float, str]:
        """The generated workflow on the ``mode`` worker: (wall seconds, run id)."""
        started = time.perf_counter()
        result = await run_workflow(
            self.client,
            module,
            params,
            task_queue=self.queues[module.FLOW.name, mode],
            options=RunOptions(max_workers=self.max_workers),
        )
        return time.perf_counter() - started, result.run_id

    async def run(
        self, module, flow: Path, mode: str, params: dict
    ) -> tuple[float, str]:
        """One run of ``flow`` in ``mode`` with ``params``: (wall seconds, run id)."""
        if mode == "local":
            args = [a for k, v in params.items() for a in (f"--{k}", str(v))]
            if "width" in params:  # Metaflow's guard defaults to 100 splits
                args += ["--max-num-splits", str(max(100, params["width"]))]
            return self.run_local(flow, *args)
        if mode == "run":
            return await asyncio.to_thread(self.run_command, flow, params)
        return await self.run_temporal(module, mode, module.PARAMS(**params))


def check(flow: str, run_id: str, step: str, tasks: int) -> None:
    """The run succeeded with ``tasks`` tasks of ``step`` (Client API)."""
    from metaflow import Run, namespace

    namespace(None)
    run = Run(f"{flow}/{run_id}")
    count = sum(1 for _ in run[step])
    if not run.successful or count != tasks:
        sys.exit(f"{run}: successful={run.successful}, {count} {step} tasks")


def label(mode: str) -> str:
    if mode == "local":
        return "python flow.py run"
    if mode == "run":
        return "mf-temporal-codegen run"
    return f"temporal {mode}"


async def main(args) -> None:
    modes = [m for m in MODES if m in args.modes.split(",")]
    widths = [int(w) for w in args.widths.split(",") if w]
    tasks = args.steps + 1  # the linear flow's steps and init
    table = [
        f"foreach end to end, --max-workers {args.max_workers}: median wall time",
        f"{'width':>5}  {'mode':<25}{'median':>9}{'runs':>6}{'min-max s':>14}{'vs local':>10}"
        f"{'tree cpu':>11}",
    ]
    with tempfile.TemporaryDirectory(prefix="mf-bench-") as tmp:
        async with dev_server(ui=False) as server, AsyncExitStack() as stack:
            bench = Bench(Path(tmp), server.client, args.max_workers)
            wide, wide_mod = bench.write_flow("wide", WIDE_FLOW)
            linear, linear_mod = bench.write_flow(
                "linear", linear_flow(max(args.steps, 2))
            )
            launchers = {
                m: TimedLauncher(make_launcher(m))
                for m in modes
                if m not in ("local", "run")
            }
            for launcher in launchers.values():
                stack.callback(launcher.close)
                if isinstance(launcher.inner, ForkServerLauncher):
                    await warm_up(wide_mod, launcher.inner)
            await bench.start_workers(stack, [wide_mod, linear_mod], launchers)
            for width in widths:
                runs = args.runs if width < 1000 else args.wide_runs
                width_modes = [m for m in modes if m != "run" or width < 1000]
                samples: dict[str, list[float]] = {m: [] for m in width_modes}
                bench.cpu = {}
                for _ in range(runs):  # modes interleaved: load changes hit all alike
                    for mode in width_modes:
                        seconds, run_id = await bench.run(
                            wide_mod, wide, mode, {"width": width}
                        )
                        check("WideFlow", run_id, "body", width)
                        if mode in launchers:
                            launchers[mode].take()
                        samples[mode].append(seconds)
                local = (
                    statistics.median(samples["local"]) if "local" in modes else None
                )
                for mode in width_modes:
                    med = statistics.median(samples[mode])
                    cpu = bench.cpu.get(mode)
                    table.append(
                        f"{width:>5}  {label(mode):<25}{med:>7.2f} s{runs:>6}"
                        f"{min(samples[mode]):>7.1f}-{max(samples[mode]):<6.1f}"
                        + (f"{med / local:>9.2f}x" if local else f"{'-':>10}")
                        + (f"{statistics.median(cpu):>9.1f} s" if cpu else f"{'-':>11}")
                        + (
                            f"  (target <= {RUN_TARGET:.2f}x)"
                            if mode == "run" and local
                            else ""
                        )
                    )
                    print(table[-1], flush=True)
            # (--steps 0: no per-task measurement)
            linear_modes = [m for m in modes if m != "run"] if args.steps else []
            if linear_modes:
                table += [
                    "",
                    f"per task: linear flow of {args.steps} steps, {tasks} tasks with "
                    f"init; medians of {args.runs} runs",
                    f"{'mode':<29}{'wall/task':>12}{'process/task':>15}"
                    f"{'overhead/task':>16}",
                ]
            per_task: dict[str, list[tuple[float, float]]] = {
                m: [] for m in linear_modes
            }
            for _ in range(args.runs):
                for mode in linear_modes:
                    seconds, run_id = await bench.run(linear_mod, linear, mode, {})
                    check("LinearFlow", run_id, "end", 1)
                    spent = launchers[mode].take() if mode in launchers else []
                    if spent and len(spent) != tasks:
                        sys.exit(f"expected {tasks} tasks, timed {len(spent)}")
                    per_task[mode].append((seconds / tasks, sum(spent) / tasks))
            for mode in linear_modes:
                wall = statistics.median(w for w, _ in per_task[mode])
                if mode == "local":
                    process = overhead = "-"
                else:
                    process = f"{statistics.median(p for _, p in per_task[mode]) * 1000:.0f} ms"
                    overhead = statistics.median(w - p for w, p in per_task[mode])
                    overhead = f"{overhead * 1000:.0f} ms"
                table.append(
                    f"{label(mode):<29}{wall * 1000:>9.0f} ms{process:>15}{overhead:>16}"
                )
                print(table[-1], flush=True)
    print("\n" + "\n".join(table))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="100,1000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--wide-runs", type=int, default=1)
    parser.add_argument("--max-workers", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--modes", default=",".join(MODES))
    asyncio.run(main(parser.parse_args()))
