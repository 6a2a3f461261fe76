"""Generation time per example flow vs `python -c "import metaflow"`.

Prints a table of medians over N runs, each a fresh interpreter (what a user or a
CI `--check` pays). Usage: python bench/bench_generate.py [N]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _time(argv: list[str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, check=True, capture_output=True)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def _in_process(flow: Path, runs: int) -> float:
    from mf_temporal_codegen.pipeline import generate

    samples = []
    with tempfile.TemporaryDirectory() as out:
        for _ in range(runs):
            started = time.perf_counter()
            generate([flow], Path(out))
            samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    python = sys.executable
    baseline = _time([python, "-c", "import metaflow"], runs)
    bare = _time([python, "-c", "pass"], runs)
    print(f"{'what':38} {'median':>9} {'vs import metaflow':>19}")
    print(f"{'python -c pass':38} {bare * 1000:7.0f}ms {bare / baseline:18.2f}x")
    print(f"{'python -c import metaflow':38} {baseline * 1000:7.0f}ms {1:18.2f}x")
    with tempfile.TemporaryDirectory() as out:
        for name in ("hello.py", "nested_foreach.py", "inherited.py", "decorated.py"):
            flow = ROOT / "examples" / name
            cli = _time([python, "-m", "mf_temporal_codegen", str(flow), "-o", out], runs)
            warm = _in_process(flow, runs)
            print(f"{'CLI ' + name:38} {cli * 1000:7.0f}ms {cli / baseline:18.2f}x")
            print(f"{'in-process ' + name:38} {warm * 1000:7.0f}ms {warm / baseline:18.2f}x")


if __name__ == "__main__":
    main()
