"""The saga's reconcilers work off a backlog in bounded passes, and every stuck item gets its turn.

A stack of its own whose reconcilers take one item per pass (``SHOPGRAPH_*_RECONCILE_BATCH=1``):
three orders past their payment deadline at once are cancelled over three passes, each pass
saying in a WARNING line how many it left, and ``shopgraph_reconciler_backlog`` says it on
``/metrics``; three quiet open payments are each asked about at the provider in turn (the
oldest one was asked about on every pass before, the others never).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from deploy.stack import Stack, ThreadedStack, compose_router
from tests.support.payments import (
    SAGA_ENV,
    admin_token,
    checkout,
    environment,
    eventually,
    expire,
    new_product,
    order_payment,
    shopper,
    sql,
    stock_of,
)


@pytest.fixture(scope="module")
def shop() -> Iterator[ThreadedStack]:
    env = SAGA_ENV | {"SHOPGRAPH_ORDERS_RECONCILE_BATCH": "1", "SHOPGRAPH_PAYMENTS_RECONCILE_BATCH": "1"}
    with environment(env):
        stack = Stack(fresh_database=True, seed=True, router=compose_router).start_in_thread()
    try:
        yield stack
    finally:
        stack.stop()


async def _metric(stack: ThreadedStack, subgraph: str, name: str, labels: str) -> float | None:
    async with httpx.AsyncClient() as client:
        text = (await client.get(stack.base_url(subgraph) + "/metrics")).text
    found = re.search(rf"^{name}\{{{labels}\}} ([0-9.e+-]+)$", text, re.M)
    return float(found.group(1)) if found else None


async def test_a_burst_of_abandoned_orders_is_cancelled_over_bounded_passes(
    shop: ThreadedStack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="shopgraph.orders.saga")
    url = shop.url("router")
    admin = await admin_token(url, shop.seeded.accounts)
    token, product = await shopper(url), await new_product(url, admin, 6)
    placed = [await checkout(url, token, product, 2) for _ in range(3)]
    assert await stock_of(url, product) == 0
    # All three past their deadline in one statement: the next pass finds three and takes one.
    await expire(shop.settings.database_url, *(o["id"] for o in placed))

    async def all_cancelled() -> list[dict[str, Any]] | None:
        now = [await order_payment(url, token, o["id"]) for o in placed]
        return now if all(o["status"] == "CANCELLED" for o in now) else None

    await eventually(all_cancelled)
    assert await eventually(lambda: _stock_is(url, product, 6))
    said = [r.getMessage() for r in caplog.records if "unpaid past their deadline; this pass takes" in r.getMessage()]
    assert said[:2] == [
        "reconciler: 3 orders unpaid past their deadline; this pass takes 1, the next passes the rest",
        "reconciler: 2 orders unpaid past their deadline; this pass takes 1, the next passes the rest",
    ], said
    assert await _metric(shop, "orders", "shopgraph_reconciler_backlog", 'subgraph="orders"') == 0.0
    repaired = await _metric(
        shop,
        "orders",
        "shopgraph_reconciler_repairs_total",
        'kind="order_cancelled_payment_abandoned",subgraph="orders"',
    )
    assert repaired is not None and repaired >= 3


async def test_every_quiet_open_payment_gets_its_turn_at_the_provider(shop: ThreadedStack) -> None:
    url = shop.url("router")
    admin = await admin_token(url, shop.seeded.accounts)
    token, product = await shopper(url), await new_product(url, admin, 3)
    placed = [await checkout(url, token, product, 1) for _ in range(3)]  # unpaid, well within the deadline
    ids = [o["id"] for o in placed]

    async def all_looked_at() -> list[Any] | None:
        rows = await sql(
            shop.settings.database_url,
            "payments",
            "SELECT looked_at FROM payments WHERE order_id = ANY(CAST(:ids AS uuid[]))",
            ids=ids,
        )
        return rows if len(rows) == 3 and all(r.looked_at is not None for r in rows) else None

    # One look-up per pass (the bound), oldest-asked first: all three within a few passes.
    await eventually(all_looked_at)
    backlog = await _metric(shop, "payments", "shopgraph_reconciler_backlog", 'subgraph="payments"')
    assert backlog is not None and backlog >= 2  # three stuck, one taken per pass
    statuses = [(await order_payment(url, token, i))["status"] for i in ids]
    assert statuses == ["PENDING_PAYMENT"] * 3  # asked about, not touched: the provider says pending


async def _stock_is(url: str, product: str, expected: int) -> bool:
    return await stock_of(url, product) == expected
