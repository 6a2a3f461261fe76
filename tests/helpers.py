"""Shared helpers for the test-suite."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

from mf_temporal_codegen.pipeline import generate
from mf_temporal_codegen.write import write_all

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
# Examples that are one flow per file and run under `python flow.py run`.
EXAMPLE_FILES = sorted(p for p in EXAMPLES.glob("*.py"))


def generate_into(flow_file: Path, outdir: Path, **options) -> dict[Path, str]:
    """Generate the modules of ``flow_file`` into ``outdir`` and write them."""
    from mf_temporal_codegen.pipeline import Options

    files = generate([flow_file], outdir, Options(**options))
    write_all(files)
    return files


def import_generated(outdir: Path, module_name: str):
    """Import a generated module by name with ``outdir`` on sys.path (as the
    Temporal sandbox re-imports it by name)."""
    if str(outdir) not in sys.path:
        sys.path.insert(0, str(outdir))
    sys.modules.pop(module_name, None)
    importlib.invalidate_caches()
    return importlib.import_module(module_name)


def codegen(*args: str | Path) -> subprocess.CompletedProcess:
    """The real CLI, run from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "mf_temporal_codegen", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def metaflow_check(
    flow: Path, tmp_path: Path, *top_level: str
) -> subprocess.CompletedProcess:
    """`python FLOW <top_level> check` with an isolated Metaflow home and datastore."""
    env = dict(
        os.environ,
        USERNAME="tester",
        METAFLOW_HOME=str(tmp_path / "home"),
        METAFLOW_DEFAULT_DATASTORE="local",
        METAFLOW_DATASTORE_SYSROOT_LOCAL=str(tmp_path),
    )
    return subprocess.run(
        [sys.executable, str(ROOT / flow), "--no-pylint", *top_level, "check"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
