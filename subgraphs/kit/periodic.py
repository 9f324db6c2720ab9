"""Work in the background while an app runs (``background`` parts of kit's app): a task, or a pass repeated."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any


@contextlib.asynccontextmanager
async def in_background(name: str, run: Callable[[], Coroutine[Any, Any, object]]) -> AsyncIterator[None]:
    """Run ``run()`` as a task while the context is open; cancelled when it closes."""
    task = asyncio.create_task(run(), name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


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
