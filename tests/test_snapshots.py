"""Golden files of the generated source of every example (``snapshots/*.py``).

Update them with ``pytest tests/test_snapshots.py --snapshot-update`` and review the
diff like any code change.
"""

from __future__ import annotations

import pytest
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

from mf_temporal_codegen.pipeline import generate

from helpers import EXAMPLE_FILES, ROOT


class PythonSnapshot(SingleFileSnapshotExtension):
    """One readable ``snapshots/<module>.py`` per generated module."""

    file_extension = "py"
    _write_mode = WriteMode.TEXT

    @classmethod
    def dirname(cls, *, test_location) -> str:
        return str(ROOT / "snapshots")

    @classmethod
    def get_snapshot_name(cls, *, test_location, index=0) -> str:
        return str(index)


@pytest.fixture
def py_snapshot(snapshot):
    return snapshot.use_extension(PythonSnapshot)


@pytest.mark.parametrize("flow_file", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_generated_source(flow_file, py_snapshot):
    files = generate([flow_file], ROOT / "out")
    assert files
    for path, text in files.items():
        assert text == py_snapshot(name=path.stem)
