"""``SHOPGRAPH_PAYMENTS_CAPTURE=on_fulfilment`` through the router (issue 16: "capture on fulfilment
or at once, configurable"): a paid order's payment is only authorised; shipping the order captures
it, once; cancelling a paid order that has not shipped voids the authorisation (nothing captured,
nothing to refund) and puts the stock back. An authorisation voided at the provider before the order
ships (a hold that lapsed) cancels the order (``payment_voided``) and releases its stock: it is never
shipped unpaid.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from deploy.stack import Stack, ThreadedStack, compose_router
from subgraphs.payments.providers.test import SIGNATURE_HEADER, sign
from tests.support.payments import (
    CANCEL,
    CARD_OK,
    SAGA_ENV,
    admin_token,
    checkout,
    data,
    environment,
    eventually,
    new_product,
    order_payment,
    pay,
    shopper,
    sql,
    stock_of,
)

SHIP = """mutation($input: UpdateOrderStatusInput!) {
  updateOrderStatus(input: $input) { order { id status } userErrors { code message } }
}"""


@pytest.fixture(scope="module")
def shop() -> Iterator[ThreadedStack]:
    with environment(SAGA_ENV | {"SHOPGRAPH_PAYMENTS_CAPTURE": "on_fulfilment"}):
        stack = Stack(fresh_database=True, seed=True, router=compose_router).start_in_thread()
    try:
        yield stack
    finally:
        stack.stop()


async def _where(url: str, token: str, order_id: str, order: str, payment: str) -> dict[str, Any] | None:
    found = await order_payment(url, token, order_id)
    return found if (found["status"], found["payment"]["status"]) == (order, payment) else None


async def test_shipping_captures_and_cancelling_before_voids(shop: ThreadedStack) -> None:
    url = shop.url("router")
    admin = await admin_token(url, shop.seeded.accounts)
    token, product = await shopper(url), await new_product(url, admin, 5)

    shipped = await checkout(url, token, product, 2)
    await pay(shipped["payment"]["nextActionUrl"], CARD_OK)
    held = await eventually(lambda: _where(url, token, shipped["id"], "PAID", "AUTHORISED"))
    assert held["payment"]["captured"]["amount"] == "0.00"  # paid, but the money only held
    answer = await data(url, SHIP, {"input": {"orderId": shipped["id"], "status": "SHIPPED"}}, admin)
    assert answer["updateOrderStatus"]["userErrors"] == []
    captured = await eventually(lambda: _where(url, token, shipped["id"], "SHIPPED", "CAPTURED"))
    assert captured["payment"]["captured"]["amount"] == "25.00"
    assert [h["kind"] for h in captured["payment"]["history"]] == ["attempt", "authorised", "captured"]

    voided = await checkout(url, token, product, 3)
    await pay(voided["payment"]["nextActionUrl"], CARD_OK)
    await eventually(lambda: _where(url, token, voided["id"], "PAID", "AUTHORISED"))
    cancelled = (await data(url, CANCEL, {"input": {"orderId": voided["id"]}}, token))["cancelOrder"]
    assert cancelled["userErrors"] == [] and cancelled["order"]["status"] == "CANCELLED"
    released = await eventually(lambda: _where(url, token, voided["id"], "CANCELLED", "CANCELLED"))
    payment = released["payment"]
    assert (payment["captured"]["amount"], payment["refunded"]["amount"]) == ("0.00", "0.00")
    assert "captured" not in [h["kind"] for h in payment["history"]]
    assert await eventually(lambda: _stock_is(url, product, 3))  # 5 - the 2 shipped

    # The shipped order's payment was captured once, whatever came after.
    final = await order_payment(url, token, shipped["id"])
    assert [h["kind"] for h in final["payment"]["history"]].count("captured") == 1


async def _stock_is(url: str, product: str, expected: int) -> bool:
    return await stock_of(url, product) == expected


async def test_an_authorisation_voided_at_the_provider_cancels_the_unshipped_order(shop: ThreadedStack) -> None:
    url = shop.url("router")
    admin = await admin_token(url, shop.seeded.accounts)
    token, product = await shopper(url), await new_product(url, admin, 4)
    order = await checkout(url, token, product, 3)
    await pay(order["payment"]["nextActionUrl"], CARD_OK)
    await eventually(lambda: _where(url, token, order["id"], "PAID", "AUTHORISED"))
    ref = order["payment"]["providerReference"]
    # The provider says the hold is gone (Stripe: payment_intent.canceled when an authorisation lapses).
    body = orjson.dumps({"id": f"evt_{ref}_lapsed", "intent": ref, "outcome": "cancelled"})
    async with httpx.AsyncClient() as client:
        answer = await client.post(
            shop.base_url("payments") + "/webhooks/test",
            content=body,
            headers={SIGNATURE_HEADER: sign(body, shop.settings.service_secret)},
        )
    assert answer.json() == {"result": "applied"}
    voided = await eventually(lambda: _where(url, token, order["id"], "CANCELLED", "CANCELLED"))
    assert voided["payment"]["captured"]["amount"] == "0.00"
    assert await eventually(lambda: _stock_is(url, product, 4))
    rows = await sql(
        shop.settings.database_url, "orders", "SELECT cancel_reason FROM orders WHERE id = :id", id=order["id"]
    )
    assert rows[0].cancel_reason == "payment_voided"
    ship = await data(url, SHIP, {"input": {"orderId": order["id"], "status": "SHIPPED"}}, admin)
    assert ship["updateOrderStatus"]["userErrors"], "a cancelled order is not shipped"
