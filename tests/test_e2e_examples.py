"""Differential test: every example run with ``python flow.py run`` and through its
generated workflow on a real Temporal dev server gives the same Metaflow run, with
each step launcher (a fresh interpreter per task, and the fork server). Both start
in the same scratch directory (tasks run where they were started)."""

from __future__ import annotations

import pytest
from e2e import artifacts_by_step, load_module, run_locally, run_on_temporal
from helpers import EXAMPLE_FILES

pytestmark = pytest.mark.e2e

# ``python flow.py run`` once per example: its artifacts, for both launchers' tests.
_LOCAL: dict = {}


def _local_artifacts(flow_file) -> dict:
    if flow_file not in _LOCAL:
        _LOCAL[flow_file] = artifacts_by_step(run_locally(flow_file))
    return _LOCAL[flow_file]


@pytest.mark.parametrize("launcher", ["subprocess", "fork"])
@pytest.mark.parametrize("flow_file", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_same_run_as_metaflow(
    flow_file, launcher, tmp_path, temporal_env, mf_env, monkeypatch
):
    monkeypatch.chdir(mf_env)
    theirs = _local_artifacts(flow_file)
    module = load_module(flow_file, tmp_path / "out")
    result, _ = run_on_temporal(temporal_env, module, launcher=launcher)
    assert not isinstance(result, BaseException), result
    assert result.status == "completed"
    from metaflow import Run, namespace

    namespace(None)
    assert Run(result.pathspec).successful
    ours = artifacts_by_step(result.pathspec)
    assert sorted(ours) == sorted(theirs)
    for step in theirs:
        assert len(ours[step]) == len(theirs[step]), step
        assert ours[step] == theirs[step], step
    assert result.tasks == {step: len(tasks) for step, tasks in sorted(theirs.items())}
