"""Fan-out over the real pipeline: 500 concurrent ADMIN ``orderEvents`` subscribers through the router
all receive a burst of 200 real order events complete, in order, none twice, enriched.

Events are committed the way the orders subgraph commits them (the order row
changed and ``record_event`` in one transaction), by four concurrent writers,
then travel the whole way: outbox → relay → Redis Stream → the orders hub →
graphql-transport-ws → the router, which enriches each with ``order { number
user { email } }`` (an entity fetch to users) → 500 WebSocket clients, one
connection each, in a process of their own (``tests.support.fanout_clients``)
so that decoding 100,000 messages does not compete with the servers' loop.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator

import pytest

from deploy.stack import ThreadedStack
from subgraphs.kit.db import Database
from tests.e2e.storefront import ADDRESS, Storefront
from tests.support.fanout_clients import Fanout
from tests.support.order_events import OrderChanges

SUBSCRIBERS = 500
BURST = 200
WRITERS = 4
QUERY = "subscription { orderEvents { id type order { number user { email } } } }"


@pytest.fixture
async def orders_db(stack: ThreadedStack) -> AsyncIterator[Database]:
    db = Database(stack.settings.database_url_for("orders"), "orders", pool_size=WRITERS)
    yield db
    await db.dispose()


async def _placed_order(ours: Storefront, admin_token: str) -> tuple[uuid.UUID, str]:
    """A real order, checked out through the router: (its id, its customer's email)."""
    category = (await ours.data("CategoryNav"))["categories"][0]
    tag = "Fan" + secrets.token_hex(4)
    product_input = {
        "sku": f"FAN-{tag}",
        "name": f"{tag} Teapot",
        "description": "Pours.",
        "price": "18.00",
        "stock": 100,
        "imageUrl": f"https://img.example/{tag}.jpg",
        "categoryId": category["id"],
    }
    product = (await ours.data("AdminCreateProduct", {"input": product_input}, admin_token))["createProduct"]
    shopper = await ours.register("Fay Fanout")
    line = {"productId": product["product"]["id"], "quantity": 1}
    await ours.data("AddToCart", {"input": line}, shopper.access_token)
    checkout = {"idempotencyKey": secrets.token_hex(8), "shippingAddress": ADDRESS}
    order = (await ours.data("Checkout", {"input": checkout}, shopper.access_token))["checkout"]["order"]
    return uuid.UUID(order["id"]), shopper.email


async def test_500_subscribers_get_a_burst_of_200_real_events_complete_in_order_enriched(
    router_url: str, ours: Storefront, demo_accounts: dict[str, tuple[str, str]], orders_db: Database
) -> None:
    admin = await ours.login(*demo_accounts["ADMIN"])
    order_id, email = await _placed_order(ours, admin.access_token)
    changes = await OrderChanges.of(orders_db, order_id)
    ws_url = "ws" + router_url.removeprefix("http")

    async with asyncio.timeout(420):
        async with Fanout(
            ws_url, admin.access_token, SUBSCRIBERS, per_connection=1, field="orderEvents", query=QUERY
        ) as clients:

            async def warm_up() -> None:
                await changes.commit_event()

            # Until every subscription has had an event, each has surely reached the orders subgraph.
            await clients.prime(warm_up, every=0.5, within=180)

            async def writer(count: int) -> list[int]:
                return [(await changes.commit_event())[0] for _ in range(count)]

            shares = [BURST // WRITERS + (1 if i < BURST % WRITERS else 0) for i in range(WRITERS)]
            burst = sorted(i for ids in await asyncio.gather(*(writer(n) for n in shares)) for i in ids)
            report = await clients.finish(burst, within=180)

    assert len(burst) == BURST
    assert report["errors"] == [], report["errors"]
    assert report["complete"] == SUBSCRIBERS, report  # every subscriber has every burst event ...
    assert report["in_order"] == SUBSCRIBERS, report  # ... in commit order ...
    assert report["with_duplicates"] == 0, report  # ... once
    event = report["sample"]["data"]["orderEvents"]
    assert event["type"] == "PAID"
    assert event["order"]["number"].startswith("SG-")
    assert event["order"]["user"]["email"] == email  # enriched through the users subgraph
