"""Helpers for the notifications tests: a worker over the session's stack, its rows, a paid order."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

from deploy.devmail import MailSink
from deploy.stack import ThreadedStack
from subgraphs.kit.migrate import libpq_url
from subgraphs.notifications.config import NotifySettings
from subgraphs.notifications.worker import Worker
from tests.integration.helpers import Account, register
from tests.integration.shop_helpers import pay_order, place_order, product

T = TypeVar("T")


def notify_settings(sink: MailSink, **changes: Any) -> NotifySettings:
    """Fast retries for tests; the sink as the mail server."""
    values: dict[str, Any] = {
        "smtp_host": sink.host,
        "smtp_port": sink.port,
        "backoff_seconds": 0.05,
        "backoff_max_seconds": 1.0,
        "block_ms": 200,
        "smtp_timeout_seconds": 2.0,
    }
    return NotifySettings(**(values | changes))


@contextlib.asynccontextmanager
async def worker(stack: ThreadedStack, sink: MailSink, **changes: Any) -> AsyncIterator[Worker]:
    streams = changes.pop("streams", ("orders", "users"))
    async with Worker(stack.settings, notify_settings(sink, **changes), streams=streams).running() as running:
        yield running


@contextlib.asynccontextmanager
async def notifications_db(stack: ThreadedStack) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(
        libpq_url(stack.settings.database_url), server_settings={"search_path": "notifications"}
    )
    try:
        yield conn
    finally:
        await conn.close()


async def deliveries(stack: ThreadedStack, key_like: str) -> list[asyncpg.Record]:
    async with notifications_db(stack) as conn:
        return list(await conn.fetch("SELECT * FROM deliveries WHERE idempotency_key LIKE $1 ORDER BY id", key_like))


async def eventually(check: Callable[[], Awaitable[T | None]], within: float = 20.0, step: float = 0.05) -> T:
    """``check()``'s first truthy result, polled until ``within`` seconds have passed."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: {check}")
        await asyncio.sleep(step)


async def paid_order(
    stack: ThreadedStack,
    admin: str,
    *,
    prices: tuple[str, ...] = ("12.50", "3.99"),
    quantities: tuple[int, ...] = (2, 1),
    shopper: Account | None = None,
) -> tuple[Account, dict[str, Any], list[dict[str, Any]]]:
    """An order of new products (by a new shopper unless given), paid with the test card 4242
    (the saga marks it PAID: ``order.paid``)."""
    shopper = shopper or await register(stack)
    products = [await product(stack, admin, price=p, stock=10) for p in prices]
    order = await place_order(
        stack, shopper.access_token, {p["id"]: q for p, q in zip(products, quantities, strict=True)}
    )
    await pay_order(stack, shopper.access_token, order["id"])
    return shopper, order, products


def order_key(order: dict[str, Any], template: str) -> str:
    return f"order:{uuid.UUID(order['id'])}:{template}"
