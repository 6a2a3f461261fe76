"""Wide foreach within Temporal's limits: every history under 10,000 events, every
payload under 512 KB (Temporal warns past both; the hard limits are 51,200 events and
2 MB), and the Metaflow run has one task per split.

The ``scale`` test runs a 5,000-way foreach (fork launcher) on the dev server in a few
minutes; ``MF_TEMPORAL_SCALE_WIDTH=10000`` runs it wider by hand (``-s`` prints the time
and the measured maxima). Quicker ones cover the pieces: compacted join inputs, the
history event budget that sends narrow but concurrent fan-outs to child workflows
(and replays), and the ``--max-num-splits`` guard.
"""

from __future__ import annotations

import os
import time
import uuid

import pytest
from e2e import artifacts_by_step, load_module, run_locally, run_on_temporal
from helpers import EXAMPLES, ROOT
from metaflow.util import compress_list, decompress_list
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.worker import Replayer

from mf_temporal_codegen.runtime import scope
from mf_temporal_codegen.runtime.payloads import COMPACT_INPUTS_FROM, compact_paths
from mf_temporal_codegen.runtime.worker import main, running_worker

WIDTH = int(os.environ.get("MF_TEMPORAL_SCALE_WIDTH", "5000"))
EVENT_LIMIT = 10_000
PAYLOAD_LIMIT = 512 * 1024


@pytest.mark.parametrize(
    "paths",
    [
        ["temporal-r/start/t"],
        [f"temporal-r/a/t-{i}" for i in range(COMPACT_INPUTS_FROM - 1)],
        [f"temporal-r/body/t-{i}" for i in range(10_000)],
        [f"temporal-r/{'ab'[i % 2]}/t-{i}-{i % 7}" for i in range(40)],
        ["temporal-r/x/t-1"] + [f"temporal-r/x/t-1{i}" for i in range(40)],
    ],
    ids=["one", "few", "wide", "mixed-steps", "prefix-is-a-path"],
)
def test_compacted_input_paths_expand_in_order(paths):
    compacted = compact_paths(paths)
    assert [p for item in compacted for p in decompress_list(item)] == paths
    if len(paths) >= COMPACT_INPUTS_FROM:
        assert len(compacted) == 1
    # what the activity writes for Metaflow: the same list again
    assert decompress_list(compress_list(paths)) == paths


def test_wide_join_request_is_small():
    paths = [f"temporal-{'0' * 36}/body/t-{i}" for i in range(10_000)]
    assert len(",".join(paths)) > PAYLOAD_LIMIT
    assert len(compact_paths(paths)[0]) < 64 * 1024


def largest_payload(message) -> int:
    """Size in bytes of the largest ``Payloads``/``Payload`` anywhere in ``message``."""
    best = 0
    for field, value in message.ListFields():
        if field.type != field.TYPE_MESSAGE:
            continue
        if field.message_type.GetOptions().map_entry:
            items = value.values() if hasattr(value, "values") else []
        elif field.is_repeated:
            items = value
        else:
            items = [value]
        for item in items:
            if not hasattr(item, "ListFields"):
                continue
            if isinstance(item, (Payloads, Payload)):
                best = max(best, item.ByteSize())
            else:
                best = max(best, largest_payload(item))
    return best


async def history_stats(client, workflow_id: str, run_id: str | None = None) -> dict:
    """``{workflow id: (events, largest payload)}`` for a run and all its children."""
    history = await client.get_workflow_handle(
        workflow_id, run_id=run_id
    ).fetch_history()
    stats = {
        workflow_id: (len(history.events), max(map(largest_payload, history.events)))
    }
    for event in history.events:
        if event.HasField("child_workflow_execution_started_event_attributes"):
            child = (
                event.child_workflow_execution_started_event_attributes.workflow_execution
            )
            stats.update(await history_stats(client, child.workflow_id, child.run_id))
    return stats


@pytest.mark.e2e
@pytest.mark.scale
def test_wide_foreach_stays_within_temporal_limits(tmp_path, temporal_env, mf_env):
    module = load_module(ROOT / "tests" / "flows" / "wide_flow.py", tmp_path / "out")
    started = time.monotonic()
    result, handle = run_on_temporal(
        temporal_env, module, module.PARAMS(width=WIDTH), launcher="fork"
    )
    elapsed = time.monotonic() - started
    assert not isinstance(result, BaseException), result
    steps = {"start": 1, "body": WIDTH, "join": 1, "end": 1}
    assert result.tasks == steps

    stats = temporal_env.run(history_stats(temporal_env.client, handle.id))
    chunks = -(-WIDTH // 1000)  # CHUNK_ACTIVITY_LIMIT splits per child
    assert len(stats) == 1 + chunks, sorted(stats)
    for workflow_id, (events, payload) in stats.items():
        assert events < EVENT_LIMIT, (workflow_id, events)
        assert payload < PAYLOAD_LIMIT, (workflow_id, payload)

    from metaflow import Run, namespace

    namespace(None)
    run = Run(result.pathspec)
    assert run.successful
    assert {step.id: sum(1 for _ in step) for step in run} == steps
    events = max(e for e, _ in stats.values())
    payload = max(p for _, p in stats.values())
    print(
        f"\n{WIDTH}-way foreach: {elapsed:.0f} s, {len(stats)} workflows, "
        f"max {events} events and {payload / 1024:.0f} KB payload per history"
    )


@pytest.mark.e2e
def test_fan_outs_that_overflow_the_history_budget_run_as_children(
    tmp_path, temporal_env, mf_env, monkeypatch
):
    """Each inner foreach is narrow, but the sibling splits' ones run at once: those
    that do not fit the history's event budget go to chunk child workflows."""
    budget = 150
    monkeypatch.setattr(scope, "HISTORY_EVENT_BUDGET", budget)
    flow = EXAMPLES / "nested_foreach.py"
    local = run_locally(flow)
    module = load_module(flow, tmp_path / "out")
    result, handle = run_on_temporal(temporal_env, module, launcher="fork")
    assert not isinstance(result, BaseException), result
    assert artifacts_by_step(result.pathspec) == artifacts_by_step(local)
    stats = temporal_env.run(history_stats(temporal_env.client, handle.id))
    assert len(stats) > 1, "no fan-out went to a child workflow"
    for workflow_id, (events, _) in stats.items():
        assert events < budget, (workflow_id, events)

    async def replay():  # the budget bookkeeping decides the same way on replay
        replayer = Replayer(workflows=module.WORKFLOWS)
        for workflow_id in stats:
            handle = temporal_env.client.get_workflow_handle(workflow_id)
            await replayer.replay_workflow(await handle.fetch_history())

    temporal_env.run(replay())


@pytest.mark.e2e
def test_max_num_splits_guard_from_the_trigger(tmp_path, temporal_env, mf_env, capsys):
    module = load_module(ROOT / "tests" / "flows" / "wide_flow.py", tmp_path / "out")
    queue = f"test-{uuid.uuid4().hex[:8]}"

    async def start_worker():
        running = running_worker(
            temporal_env.client, module, task_queue=queue, launcher="fork"
        )
        await running.__aenter__()
        return running

    running = temporal_env.run(start_worker())
    try:
        wid = f"wide-{uuid.uuid4().hex[:8]}"
        args = ["trigger", "--address", temporal_env.address, "--task-queue", queue]
        args += ["--param", "width=12", "--max-num-splits", "10", "--workflow-id", wid]
        assert main(module, args) == 1
    finally:
        temporal_env.run(running.__aexit__(None, None, None))
    assert "foreach in step start has 12 splits, more than --max-num-splits 10" in (
        capsys.readouterr().err
    )
    described = temporal_env.run(
        temporal_env.client.get_workflow_handle(wid).describe()
    )
    from metaflow import Run, namespace

    namespace(None)
    assert [step.id for step in Run(f"WideFlow/temporal-{described.run_id}")] == [
        "start"
    ]
