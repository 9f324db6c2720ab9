"""Live order events end to end: a checkout made through our router shows up on
an ``orderEvents`` subscription through the same router, enriched by the users
and catalog subgraphs; customers are refused the ADMIN stream."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest
from gql import Client, gql
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport

from deploy.stack import ThreadedStack
from tests.e2e.storefront import ADDRESS, Storefront
from tests.support.order_events import newest_event_id

# ``after``: every event committed after that id, however long the subscription takes to reach orders.
EVENTS = """subscription($after: ID) { orderEvents(after: $after) {
  id type order { id number user { email } items { quantity product { name } } } } }"""


def _ws(router_url: str, token: str) -> Client:
    transport = WebsocketsTransport(
        url="ws://" + router_url.removeprefix("http://"),
        init_payload={"Authorization": f"Bearer {token}"},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
    )
    return Client(transport=transport)


async def _first(agen: Any, match: Any) -> dict[str, Any]:
    async for r in agen:
        if match(r):
            return dict(r)
    raise AssertionError("subscription ended")


async def test_checkout_shows_up_enriched_on_order_events(
    stack: ThreadedStack, router_url: str, ours: Storefront, demo_accounts: dict[str, tuple[str, str]]
) -> None:
    admin = await ours.login(*demo_accounts["ADMIN"])
    category = (await ours.data("CategoryNav"))["categories"][0]
    tag = "Live" + secrets.token_hex(4)
    product_input = {
        "sku": f"LIVE-{tag}",
        "name": f"{tag} Kettle",
        "description": "Boils.",
        "price": "24.00",
        "stock": 100,
        "imageUrl": f"https://img.example/{tag}.jpg",
        "categoryId": category["id"],
    }
    product = (await ours.data("AdminCreateProduct", {"input": product_input}, admin.access_token))["createProduct"]
    shopper = await ours.register("Lena Live")
    await ours.data(
        "AddToCart", {"input": {"productId": product["product"]["id"], "quantity": 2}}, shopper.access_token
    )

    after = await newest_event_id(stack.settings.database_url_for("orders"))
    async with _ws(router_url, admin.access_token) as session:
        agen = session.subscribe(gql(EVENTS), variable_values={"after": str(after)})
        mine = asyncio.ensure_future(
            _first(agen, lambda r: r["orderEvents"]["order"]["user"]["email"] == shopper.email)
        )
        checkout = {"idempotencyKey": secrets.token_hex(8), "shippingAddress": ADDRESS}
        order = (await ours.data("Checkout", {"input": checkout}, shopper.access_token))["checkout"]["order"]
        got = (await asyncio.wait_for(mine, 20))["orderEvents"]
    assert got["type"] == "CREATED"
    assert got["order"]["id"] == order["id"]
    assert got["order"]["items"] == [{"quantity": 2, "product": {"name": f"{tag} Kettle"}}]


async def test_customers_are_refused_the_admin_stream(router_url: str, ours: Storefront) -> None:
    shopper = await ours.register("Curious Customer")
    async with _ws(router_url, shopper.access_token) as session:
        with pytest.raises(TransportQueryError) as refused:
            async for _ in session.subscribe(gql("subscription { orderEvents { id } }")):
                break
    assert "FORBIDDEN" in str(refused.value) or "administrator" in str(refused.value).lower()
