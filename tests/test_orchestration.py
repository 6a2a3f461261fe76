"""Unit tests of workflow-side mechanics that need no server."""

from __future__ import annotations

import asyncio

from mf_temporal_codegen.runtime.fanout import shielded
from mf_temporal_codegen.runtime.specs import task_id


def test_shielded_survives_repeated_cancellation():
    done = []

    async def unwind():
        for i in range(3):
            await asyncio.sleep(0.05)
            done.append(i)
        return "unwound"

    async def scope():
        return await shielded(unwind())

    async def main():
        task = asyncio.ensure_future(scope())
        for _ in range(3):  # cancel the waiting scope again and again
            await asyncio.sleep(0.03)
            task.cancel()
        return await task

    assert asyncio.run(main()) == "unwound"
    assert done == [0, 1, 2]


def test_plain_shield_gives_up_at_the_first_cancel():
    """What `shielded` fixes: the awaiting task stops waiting at the first cancel."""

    async def main():
        inner = asyncio.ensure_future(asyncio.sleep(0.2, "late"))
        outer = asyncio.ensure_future(asyncio.shield(inner))
        await asyncio.sleep(0.01)
        outer.cancel()
        try:
            await outer
        except asyncio.CancelledError:
            return inner.done()
        return None

    assert asyncio.run(main()) is False


def test_task_ids():
    assert task_id("start") == "start"
    assert task_id("inner", ("3", "1")) == "inner-3-1"
    assert task_id("loop", (), 2) == "loop-i2"
    assert task_id("loop", ("2",), 4) == "loop-2-i4"
