"""Wait for a condition, not for a length of time.

``await until(check)`` calls ``check`` (sync or async) until it returns something truthy
and returns that; after ``within`` seconds it fails with ``what`` and the last value seen.
``until_sync`` is the same for synchronous tests. The poll interval is short (20 ms): the
test goes on as soon as the condition holds, and ``within`` only bounds a failure.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")


@overload
async def until(
    check: Callable[[], Awaitable[T]], *, within: float = ..., every: float = ..., what: str = ...
) -> T: ...


@overload
async def until(check: Callable[[], T], *, within: float = ..., every: float = ..., what: str = ...) -> T: ...


async def until(
    check: Callable[[], Any], *, within: float = 30.0, every: float = 0.02, what: str = "the condition"
) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {within:g}s (last: {value!r})")
        await asyncio.sleep(every)


def until_sync(check: Callable[[], T], *, within: float = 30.0, every: float = 0.02, what: str = "the condition") -> T:
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {within:g}s (last: {value!r})")
        time.sleep(every)


async def next_millisecond(after: int | None = None) -> int:
    """Wait until the wall clock's millisecond (``time.time_ns() // 10**6``) is past ``after`` (default: now).

    For code that stamps in milliseconds: something done after this is in a later millisecond."""
    start = time.time_ns() // 1_000_000 if after is None else after
    while (now := time.time_ns() // 1_000_000) <= start:  # noqa: ASYNC110 (the clock has no event to await)
        await asyncio.sleep(0.001)
    return now
