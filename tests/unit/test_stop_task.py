"""subgraphs.kit.periodic.stop_task: a background task that swallowed its cancel (as redis-py did
reading a blocking XREAD) still ends, and one that never ends does not hang a shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from subgraphs.kit import periodic


async def test_a_swallowed_cancel_is_repeated() -> None:
    swallowed = 0

    async def reader() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1  # the library read on after the first cancel

    task = asyncio.create_task(reader())
    await asyncio.sleep(0)
    await periodic.stop_task(task)
    assert task.cancelled() and swallowed == 1


async def test_a_task_that_never_ends_is_left_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(periodic, "STOP_WITHIN", 0.3)
    stop = False

    async def stubborn() -> None:
        while not stop:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(10)

    task = asyncio.create_task(stubborn(), name="stubborn")
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING, logger="shopgraph.kit"):
        await periodic.stop_task(task)
    assert not task.done()
    assert any("stubborn" in r.getMessage() for r in caplog.records), caplog.records
    stop = True
    task.cancel()
    await asyncio.wait({task})


async def test_an_error_the_task_ended_with_is_raised() -> None:
    async def broken() -> None:
        raise RuntimeError("boom")

    task = asyncio.create_task(broken())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="boom"):
        await periodic.stop_task(task)
