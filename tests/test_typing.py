"""Generated modules are typed: every snapshot (and a flow whose step names collide
with generated names) passes ``mypy --strict``.

The package ships ``py.typed``; here mypy finds it through a link named like the
import package (the editable install maps ``codegen/`` by an import hook mypy cannot
follow), and checks the generated modules strictly while taking the runtime's types
as they are (``--follow-imports=silent``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from helpers import generate_into

ROOT = Path(__file__).resolve().parent.parent


def _mypy_strict(package: Path, search: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
         "--no-incremental", str(package)],
        cwd=search,
        env={"MYPYPATH": str(search), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip


def test_package_is_marked_typed():
    assert (ROOT / "codegen" / "py.typed").is_file()


def test_every_snapshot_passes_mypy_strict(tmp_path):
    (tmp_path / "mf_temporal_codegen").symlink_to(ROOT / "codegen")
    out = tmp_path / "out"
    out.mkdir()
    (out / "__init__.py").write_text("")
    for snapshot in (ROOT / "snapshots").glob("*.py"):
        shutil.copy(snapshot, out / snapshot.name)
    # and a flow whose step names collide with generated ones
    generate_into(Path(__file__).parent / "flows" / "collisions.py", out)
    checked = _mypy_strict(out, tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Success: no issues found" in checked.stdout

    # and it would notice a type error in one
    (out / "hello_flow_workflow.py").open("a").write('\nbroken: int = "text"\n')
    assert _mypy_strict(out, tmp_path).returncode == 1
