"""Per-task overhead of the step launchers: fresh interpreter vs fork server.

Runs a trivial flow's ``start`` step N times sequentially (median wall time per task)
and M times with a concurrency limit (tasks/s) through each launcher, with the local
datastore in a temp dir. Usage: ``python bench/bench_launchers.py [--n 20] [--m 40]
[--concurrency 4]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mf_temporal_codegen.runtime.forkserver import ForkServerLauncher
from mf_temporal_codegen.runtime.launcher import SubprocessLauncher

FLOW = """
from metaflow import FlowSpec, step


class BenchFlow(FlowSpec):
    @step
    def start(self):
        self.x = 1
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    BenchFlow()
"""
TOP = [
    "--quiet",
    "--no-pylint",
    "--metadata=local",
    "--datastore=local",
    "--environment=local",
    "--event-logger=nullSidecarLogger",
    "--monitor=nullSidecarMonitor",
]


class Bench:
    def __init__(self, root: Path):
        self.root = root
        (root / "flow.py").write_text(FLOW)
        self.env = {
            **os.environ,
            "USERNAME": "bench",
            "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(root / "store"),
        }
        self.count = 0

    async def task(self, launcher, argv) -> float:
        self.count += 1
        logs = self.root / f"{launcher.name}-{self.count}"
        start = time.perf_counter()
        code = await launcher.run(
            ["flow.py", *TOP, *argv],
            env=self.env,
            cwd=self.root,
            stdout_log=logs.with_suffix(".out"),
            stderr_log=logs.with_suffix(".err"),
        )
        if code != 0:
            raise SystemExit(f"{launcher.name} task failed ({code}): see {logs}.err")
        return time.perf_counter() - start

    def step(self, launcher, run_id: str):
        self.count += 1
        return self.task(
            launcher,
            [
                "step",
                "start",
                "--run-id",
                run_id,
                "--task-id",
                f"t{self.count}",
                "--input-paths",
                f"{run_id}/_parameters/p",
                "--retry-count",
                "0",
                "--max-user-code-retries",
                "0",
            ],
        )

    async def measure(self, launcher, n: int, m: int, concurrency: int) -> dict:
        run_id = f"{launcher.name}-run"
        await self.task(launcher, ["init", "--run-id", run_id, "--task-id", "p"])
        sequential = [await self.step(launcher, run_id) for _ in range(n)]
        limit = asyncio.Semaphore(concurrency)

        async def bounded():
            async with limit:
                await self.step(launcher, run_id)

        start = time.perf_counter()
        await asyncio.gather(*(bounded() for _ in range(m)))
        return {
            "median": statistics.median(sequential),
            "min": min(sequential),
            "throughput": m / (time.perf_counter() - start),
        }


def import_time(repeat: int = 5) -> tuple[float, float]:
    """Median wall and CPU time of ``python -c "import metaflow"``."""
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import metaflow"], check=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


async def main(n: int, m: int, concurrency: int) -> None:
    with tempfile.TemporaryDirectory(prefix="mf-bench-") as tmp:
        bench = Bench(Path(tmp))
        fork = ForkServerLauncher()
        start = time.perf_counter()
        await fork.start(bench.env, bench.root, "flow.py")
        server_start = time.perf_counter() - start
        try:
            results = {
                "subprocess": await bench.measure(
                    SubprocessLauncher(), n, m, concurrency
                ),
                "fork": await bench.measure(fork, n, m, concurrency),
            }
        finally:
            fork.close()
    wall, cpu = import_time()
    print(
        f"python -c 'import metaflow': {wall * 1000:.0f} ms wall, {cpu * 1000:.0f} ms CPU"
    )
    print(f"fork server start (once per worker/context): {server_start * 1000:.0f} ms")
    print(
        f"{'launcher':<12}{'median/task':>14}{'min/task':>12}"
        f"{f'tasks/s ({m}, c={concurrency})':>24}"
    )
    for name, r in results.items():
        print(
            f"{name:<12}{r['median'] * 1000:>11.0f} ms{r['min'] * 1000:>9.0f} ms"
            f"{r['throughput']:>24.1f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="sequential tasks")
    parser.add_argument("--m", type=int, default=40, help="concurrent tasks")
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    asyncio.run(main(args.n, args.m, args.concurrency))
