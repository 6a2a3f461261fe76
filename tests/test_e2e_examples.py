"""Differential test: every example run with ``python flow.py run`` and through its
generated workflow on a real Temporal dev server gives the same Metaflow run."""

from __future__ import annotations

import pytest
from e2e import artifacts_by_step, load_module, run_locally, run_on_temporal
from helpers import EXAMPLE_FILES

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("flow_file", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_same_run_as_metaflow(flow_file, tmp_path, temporal_env, mf_env):
    local = run_locally(flow_file)
    module = load_module(flow_file, tmp_path / "out")
    result, _ = run_on_temporal(temporal_env, module)
    assert not isinstance(result, BaseException), result
    assert result.status == "completed"
    from metaflow import Run, namespace

    namespace(None)
    assert Run(result.pathspec).successful
    ours, theirs = artifacts_by_step(result.pathspec), artifacts_by_step(local)
    assert sorted(ours) == sorted(theirs)
    for step in theirs:
        assert len(ours[step]) == len(theirs[step]), step
        assert ours[step] == theirs[step], step
    assert result.tasks == {step: len(tasks) for step, tasks in sorted(theirs.items())}
