"""Work in the background while an app runs (``background`` parts of kit's app): a task, or a pass repeated."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger("shopgraph.kit")

STOP_WITHIN = 5.0  # seconds a background task gets to end once cancelled
STOP_GRACE = 2.0  # seconds its first cancel gets before another is sent


async def stop_task(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` (unless its owner just did) and wait for it to end.

    One cancel is not always enough: redis-py reading a blocking XREAD swallowed one and read on,
    so a subgraph's shutdown waited forever on its stream reader (two test workers hung in
    teardown). A task still running ``STOP_GRACE`` seconds after its cancel is cancelled again
    every second (the next cancel lands on its next await; not sooner, as a second cancel would
    cut short the clean-up a first one started: a mail's "sent" record was lost so). After
    ``STOP_WITHIN`` seconds it is left behind with a WARNING: shutting down never hangs on it.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STOP_WITHIN
    if not task.cancelling():
        task.cancel()
    await asyncio.wait({task}, timeout=STOP_GRACE)
    while not task.done():
        remaining = deadline - loop.time()
        if remaining <= 0:
            log.warning("background task %s still runs %.0fs after its cancel: left", task.get_name(), STOP_WITHIN)
            return
        task.cancel()
        await asyncio.wait({task}, timeout=min(1.0, remaining))
    with contextlib.suppress(asyncio.CancelledError):
        await task


@contextlib.asynccontextmanager
async def in_background(name: str, run: Callable[[], Coroutine[Any, Any, object]]) -> AsyncIterator[None]:
    """Run ``run()`` as a task while the context is open; stopped (``stop_task``) when it closes."""
    task = asyncio.create_task(run(), name=name)
    try:
        yield
    finally:
        await stop_task(task)


@contextlib.asynccontextmanager
async def periodically(
    name: str, seconds: float, run_pass: Callable[[], Awaitable[object]], log: logging.Logger
) -> AsyncIterator[None]:
    """Run ``run_pass`` every ``seconds`` while the context is open. A failed pass is logged and the
    next one runs anyway: the database may be away for a while."""

    async def loop() -> None:
        while True:
            try:
                await run_pass()
            except Exception:
                log.warning("%s: pass failed", name, exc_info=True)
            await asyncio.sleep(seconds)

    async with in_background(name, loop):
        yield
