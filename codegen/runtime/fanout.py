"""Fan-out mechanics: run workflow coroutines at once, cancel the rest at the first
failure, and wait for every one of them before the failure travels on."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

from temporalio import workflow

T = TypeVar("T")


async def gather_or_cancel(tasks: Sequence[asyncio.Future[T]]) -> list[T]:
    """Wait for all; on the first failure cancel and drain the others, then raise it."""
    if not tasks:
        return []
    try:
        await workflow.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except BaseException:
        await cancel_all(tasks)
        raise
    failed = [t for t in tasks if t.done() and not t.cancelled() and t.exception()]
    if failed:
        await cancel_all(tasks)
        error = failed[0].exception()
        assert error is not None  # failed holds only futures with an exception
        raise error
    return [t.result() for t in tasks]


async def cancel_all(tasks: Sequence[asyncio.Future[Any]]) -> None:
    """Cancel the unfinished ones and wait until all are done (they may be undoing
    their own scopes), even if this waiting is cancelled itself."""
    for t in tasks:
        if not t.done():
            t.cancel()
    await shielded(asyncio.gather(*tasks, return_exceptions=True))


async def shielded(awaitable: Awaitable[Any]) -> Any:
    """Await ``awaitable`` to the end however often the awaiting task is cancelled
    meanwhile (``asyncio.shield`` alone gives up at the first cancel)."""
    inner = asyncio.ensure_future(awaitable)
    while True:
        try:
            return await asyncio.shield(inner)
        except asyncio.CancelledError:
            if inner.done():
                return inner.result()
            this = asyncio.current_task()
            if this is not None:
                this.uncancel()


def succeeded(future: asyncio.Future[Any]) -> bool:
    return future.done() and not future.cancelled() and future.exception() is None
