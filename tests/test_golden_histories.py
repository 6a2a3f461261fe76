"""Golden histories: a recorded run of every example replays against the current
runtime and the committed snapshot of its module, so a runtime change that would
break runs in flight fails here (record again with tests/histories/record.py only
when that is the point, and say so in the change)."""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOTS = ROOT / "snapshots"
HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def _snapshot_module(name: str):
    if str(SNAPSHOTS) not in sys.path:
        sys.path.insert(0, str(SNAPSHOTS))
    return importlib.import_module(name)


def test_every_example_has_a_recorded_history():
    modules = {p.stem for p in SNAPSHOTS.glob("*_workflow.py")}
    assert {h.stem for h in HISTORIES} == modules


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
def test_recorded_run_replays(path):
    module = _snapshot_module(path.stem)
    raw = json.loads(path.read_text())
    start = raw["events"][0]["workflowExecutionStartedEventAttributes"]
    history = WorkflowHistory.from_json(f"golden-{path.stem}", raw)
    assert start["workflowType"]["name"] == module.FLOW.name
    result = asyncio.run(Replayer(workflows=module.WORKFLOWS).replay_workflow(history))
    assert result.replay_failure is None
