"""One worker process vs. a pool of three: a wide foreach on S3 (a moto server on
loopback), side by side in one run, on a dev server this script starts.

Each worker is a simulated host of a pool (``tests/pool.py``): its own copy of the
checkout, HOME, TMPDIR and process, sharing only the dev server, S3 and the metadata
directory; all on this one machine, so three workers share its cores. Per run: wall
time from ``trigger`` (the generated worker's command, a fresh process) to its
result, and tasks per second (the foreach's tasks plus start, join, end and init).
Pool sizes are interleaved run by run; medians of ``--runs`` runs. Every run is
checked through the Metaflow Client (one ``body`` task per split) outside the timed
part. Usage::

    python bench/bench_pool.py [--width 1000] [--runs 1] [--pools 1,3]

The default (one 1,000-way run per pool size) takes about 15 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from pool import host_env, workers  # noqa: E402
from s3 import moto_server  # noqa: E402

from mf_temporal_codegen.pipeline import generate_to_dir  # noqa: E402
from mf_temporal_codegen.runtime.devserver import dev_server  # noqa: E402

FLOW = ROOT / "tests" / "flows" / "wide_flow.py"
WORKER = "out.wide_flow_worker"
COUNT = """\
import sys
from metaflow import Run, namespace
namespace(None)
print(len(list(Run(sys.argv[1])["body"])))
"""


def trigger(repo: Path, env: dict, address: str, queue: str, width: int) -> tuple:
    """Run the flow once through the pool; (seconds, pathspec)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", WORKER, "trigger", "--address", address]
        + ["--task-queue", queue, "--param", f"width={width}"]
        + ["--max-num-splits", str(max(width, 100))],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"run failed:\n{done.stdout}{done.stderr}")
    return seconds, done.stdout.split("pathspec: ", 1)[1].split()[0]


def check(pathspec: str, env: dict, cwd: Path, width: int) -> None:
    found = subprocess.run(
        [sys.executable, "-c", COUNT, pathspec],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    if found.returncode or int(found.stdout) != width:
        raise SystemExit(f"{pathspec}: expected {width} body tasks: {found}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--pools", default="1,3", help="pool sizes, comma-separated")
    args = parser.parse_args()
    sizes = [int(n) for n in args.pools.split(",")]
    root = Path(tempfile.mkdtemp(prefix="bench-pool-"))
    times: dict[int, list[float]] = {n: [] for n in sizes}
    try:
        checkout = root / "checkout"
        checkout.mkdir()
        shutil.copy(FLOW, checkout / FLOW.name)
        generate_to_dir(checkout / FLOW.name, checkout / "out")
        shared = root / "shared-metadata"
        shared.mkdir()
        async with dev_server(ui=False) as server:
            with moto_server(root) as s3:
                client_env = host_env(root, "client", s3, shared)
                for run in range(args.runs):
                    for n in sizes:
                        hosts = [f"pool{n}-host{i + 1}" for i in range(n)]
                        queue = f"bench-pool-{n}-{run}"
                        with workers(
                            root, checkout, hosts, WORKER, server.address, queue, s3,
                            shared,
                        ) as repos:  # fmt: skip
                            seconds, pathspec = trigger(
                                repos[0], client_env, server.address, queue, args.width
                            )
                        check(pathspec, client_env, root / "client", args.width)
                        times[n].append(seconds)
                        print(
                            f"run {run + 1}, {n} worker(s): {seconds:.1f} s", flush=True
                        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    tasks = args.width + 4
    base = statistics.median(times[sizes[0]])
    print(
        f"\n{args.width}-way foreach on S3 (moto), {tasks} tasks, median of "
        f"{args.runs} run(s)\n"
    )
    print(f"{'workers':>8} {'wall s':>9} {'tasks/s':>9} {'vs ' + str(sizes[0]):>8}")
    for n in sizes:
        wall = statistics.median(times[n])
        print(f"{n:>8} {wall:>9.1f} {tasks / wall:>9.2f} {base / wall:>8.2f}")
    print(json.dumps({str(n): times[n] for n in sizes}))


if __name__ == "__main__":
    asyncio.run(main())
