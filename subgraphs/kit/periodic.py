"""A pass repeated in the background while an app runs (a ``background`` part of kit's app)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable


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

    task = asyncio.create_task(loop(), name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
