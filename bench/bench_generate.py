"""Generation time per example flow vs `python -c "import metaflow"`.

Prints a table of medians over N fresh-interpreter runs (what a user or a CI `--check`
pays), all commands interleaved round-robin so that machine load hits them alike:

- cold: generation cache off (MF_TEMPORAL_CODEGEN_NO_CACHE=1): import, parse, render, format;
- miss: cache on, no entry for this invocation (e.g. the flow was just edited);
  compiled templates are cached;
- warm: cache hit, output already up to date; `--check` warm likewise;
- in-process: `pipeline.generate` in a warm interpreter, no cache.

Runs use a private cache dir and normal bytecode caching (PYTHONDONTWRITEBYTECODE unset).
Usage: python bench/bench_generate.py [N]
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ("hello.py", "nested_foreach.py", "decorated.py", "inherited.py")


def _cli() -> list[str]:
    script = Path(sys.executable).parent / "mf-temporal-codegen"
    return (
        [str(script)]
        if script.exists()
        else [sys.executable, "-m", "mf_temporal_codegen"]
    )


def _round_robin(cases: dict[str, tuple], runs: int) -> dict[str, float]:
    """Median wall time per case; a case is (argv, env, before) with ``before`` untimed."""
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for i in range(runs + 1):  # round 0 warms up (bytecode, page cache, template cache)
        for name, (argv, env, before) in cases.items():
            before()
            started = time.perf_counter()
            subprocess.run(argv, cwd=ROOT, env=env, check=True, capture_output=True)
            if i:
                samples[name].append(time.perf_counter() - started)
    return {name: statistics.median(s) for name, s in samples.items()}


def _in_process(flow: Path, out: Path, runs: int) -> float:
    from mf_temporal_codegen.pipeline import generate

    generate([flow], out)
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        generate([flow], out)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    python, cli = sys.executable, _cli()
    work = Path(tempfile.mkdtemp(prefix="bench-generate-"))
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONDONTWRITEBYTECODE", "MF_TEMPORAL_CODEGEN_NO_CACHE")
    }
    uncached = {**env, "MF_TEMPORAL_CODEGEN_NO_CACHE": "1"}
    cases: dict[str, tuple] = {
        "python -c pass": ([python, "-c", "pass"], env, lambda: None),
        "python -c 'import metaflow'": (
            [python, "-c", "import metaflow"],
            env,
            lambda: None,
        ),
    }
    for name in EXAMPLES:
        flow, out, cache = (
            f"examples/{name}",
            str(work / name / "out"),
            work / name / "cache",
        )
        cached = {**env, "MF_TEMPORAL_CODEGEN_CACHE_DIR": str(cache)}
        subprocess.run(
            [*cli, flow, "-o", out],
            cwd=ROOT,
            env=cached,
            check=True,
            capture_output=True,
        )
        forget = lambda cache=cache: shutil.rmtree(
            cache / "generated", ignore_errors=True
        )  # noqa: E731
        cases[f"{name}: CLI cold (no cache)"] = (
            [*cli, flow, "-o", out],
            uncached,
            lambda: None,
        )
        cases[f"{name}: CLI miss"] = ([*cli, flow, "-o", out], cached, forget)
        cases[f"{name}: CLI warm (hit)"] = (
            [*cli, flow, "-o", out],
            cached,
            lambda: None,
        )
        cases[f"{name}: --check warm"] = (
            [*cli, flow, "-o", out, "--check"],
            cached,
            lambda: None,
        )
    medians = _round_robin(cases, runs)
    os.environ["MF_TEMPORAL_CODEGEN_NO_CACHE"] = (
        "1"  # in-process: no on-disk caches at all
    )
    for name in EXAMPLES:
        medians[f"{name}: in-process"] = _in_process(
            ROOT / "examples" / name, work / "in-process", runs
        )
    shutil.rmtree(work)

    baseline = medians["python -c 'import metaflow'"]
    cli_name = Path(cli[0]).name if len(cli) == 1 else "python -m mf_temporal_codegen"
    print(
        f"{runs} runs each, medians; CLI = {cli_name}; Python {sys.version.split()[0]}\n"
    )
    print(f"| {'what':40} | {'median':>8} | {'vs import metaflow':>18} |")
    print(f"|{'-' * 42}|{'-' * 9}:|{'-' * 19}:|")
    order = list(cases)[:2] + [f"{n}: {kind}" for n in EXAMPLES for kind in (
        "CLI cold (no cache)", "CLI miss", "CLI warm (hit)", "--check warm", "in-process"
    )]  # fmt: skip
    for name in order:
        value = medians[name]
        print(f"| {name:40} | {value * 1000:6.0f}ms | {value / baseline:17.2f}x |")


if __name__ == "__main__":
    main()
