"""Shared helpers for the test-suite."""

from __future__ import annotations

import importlib
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
