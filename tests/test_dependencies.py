"""The flow's Python dependencies are the worker pool's business: a task whose
worker cannot import what the flow needs fails at once with a message that says
so (not a hang, not a bare traceback)."""

from __future__ import annotations

import time

import pytest
from e2e import load_module, run_on_temporal
from helpers import ROOT
from temporalio.client import WorkflowFailureError

pytestmark = pytest.mark.e2e


def test_a_missing_dependency_fails_the_task_clearly(tmp_path, temporal_env, mf_env):
    flow = ROOT / "tests" / "flows" / "missing_dependency_flow.py"
    module = load_module(flow, tmp_path / "out")
    started = time.monotonic()
    result, _ = run_on_temporal(temporal_env, module)
    assert isinstance(result, WorkflowFailureError), result
    assert time.monotonic() - started < 120
    message = str(result.cause)
    while getattr(result, "cause", None) is not None:
        result = result.cause
        message += "\n" + str(result)
    assert "No module named 'a_package_this_worker_lacks'" in message
    assert "cannot import what" in message and "never started the task" in message
    assert "install them where the workers run" in message
