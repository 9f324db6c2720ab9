"""The order saga through the router: checkout → pay with a test card → PAID, or compensated.

A stack of its own: reconcilers that act within a test (a deadline is passed by moving it), and
the outbox relays run by the test, so they can be killed mid-saga.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from deploy.stack import Stack, ThreadedStack, compose_router
from subgraphs.catalog.events import relay as catalog_relay
from subgraphs.orders.events import relay as orders_relay
from subgraphs.payments.events import relay as payments_relay
from subgraphs.payments.providers.test import SIGNATURE_HEADER, sign
from tests.support.payments import (
    CANCEL,
    CARD_3DS,
    CARD_DECLINED,
    CARD_OK,
    ORDER_UPDATED,
    REFUND,
    SAGA_ENV,
    admin_token,
    checkout,
    data,
    environment,
    eventually,
    expire,
    new_product,
    order_payment,
    pay,
    shopper,
    sql,
    stock_of,
)
from tests.support.subscriptions import subscription


class Relays:
    """The three outbox relays, run as tasks in the stack's loop: stopped and started by the tests."""

    def __init__(self, stack: ThreadedStack) -> None:
        self.stack = stack
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        async def start() -> list[asyncio.Task[None]]:
            settings = self.stack.settings
            return [asyncio.create_task(r(settings).run()) for r in (orders_relay, catalog_relay, payments_relay)]

        self.tasks = self.stack.run(start())

    def kill(self) -> None:
        async def kill() -> None:
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)

        self.stack.run(kill())
        self.tasks = []


@pytest.fixture(scope="module")
def saga() -> Iterator[tuple[ThreadedStack, Relays]]:
    with environment(SAGA_ENV):
        stack = Stack(
            fresh_database=True, seed=True, router=compose_router, settings_overrides={"outbox_relay": False}
        ).start_in_thread()
    relays = Relays(stack)
    relays.start()
    try:
        yield stack, relays
    finally:
        relays.kill()
        stack.stop()


async def _setup(stack: ThreadedStack, stock: int = 5) -> tuple[str, str, str, str]:
    url = stack.url("router")
    admin = await admin_token(url, stack.seeded.accounts)
    return url, admin, await shopper(url), await new_product(url, admin, stock)


async def _status(url: str, token: str, order_id: str, status: str) -> dict[str, Any] | None:
    order = await order_payment(url, token, order_id)
    return order if order["status"] == status else None


async def test_card_4242_pays_the_order_and_the_shopper_sees_it_live(saga: tuple[ThreadedStack, Relays]) -> None:
    stack, _ = saga
    url, _, token, product = await _setup(stack)
    order = await checkout(url, token, product, 2)
    assert order["status"] == "PENDING_PAYMENT"
    payment = order["payment"]
    assert payment["status"] == "PENDING" and payment["provider"] == "test"
    assert payment["amount"] == {"amount": "25.00", "currencyCode": "USD"} == order["total"]
    assert payment["nextActionUrl"].startswith(stack.base_url("payments") + "/pay/test/")
    assert await stock_of(url, product) == 3  # reserved while unpaid

    async with subscription(url, ORDER_UPDATED, {"id": order["id"]}, token) as feed:
        first = (await feed.wait(1))[0]["orderUpdated"]  # the latest event first: created
        assert first["order"]["status"] == "PENDING_PAYMENT"
        started = time.monotonic()
        answer = await pay(payment["nextActionUrl"], CARD_OK)
        assert answer.status_code == 303 and answer.headers["location"] == stack.settings.public_url + "/orders"
        paid = (await feed.wait(2, within=10))[1]["orderUpdated"]
        latency = time.monotonic() - started
    assert paid["type"] == "PAID" and paid["order"]["status"] == "PAID"
    print(f"card submitted → orderUpdated PAID at the shopper: {latency * 1000:.0f} ms")

    final = await eventually(lambda: _captured(url, token, order["id"]))
    assert final["status"] == "PAID"
    assert final["payment"]["methodSummary"] == "Visa •••• 4242"
    assert final["payment"]["captured"]["amount"] == "25.00"
    assert final["payment"]["clientSecret"] is None and final["payment"]["nextActionUrl"] is None
    kinds = [h["kind"] for h in final["payment"]["history"]]
    assert kinds == ["attempt", "authorised", "captured"]
    assert await stock_of(url, product) == 3


async def _captured(url: str, token: str, order_id: str) -> dict[str, Any] | None:
    order = await order_payment(url, token, order_id)
    return order if order["payment"]["status"] == "CAPTURED" else None


async def test_declined_card_cancels_the_order_and_puts_the_stock_back(saga: tuple[ThreadedStack, Relays]) -> None:
    stack, _ = saga
    url, _, token, product = await _setup(stack, stock=4)
    order = await checkout(url, token, product, 3)
    assert await stock_of(url, product) == 1
    answer = await pay(order["payment"]["nextActionUrl"], CARD_DECLINED)
    assert answer.status_code == 303
    cancelled = await eventually(lambda: _status(url, token, order["id"], "CANCELLED"))
    assert cancelled["payment"]["status"] == "FAILED"
    assert cancelled["payment"]["failureReason"] == "card_declined"
    assert cancelled["payment"]["captured"]["amount"] == "0.00"
    assert await eventually(lambda: _stock_is(url, product, 4))
    rows = await sql(
        stack.settings.database_url, "orders", "SELECT cancel_reason FROM orders WHERE id = :id", id=order["id"]
    )
    assert rows[0].cancel_reason == "payment_declined"


async def _stock_is(url: str, product: str, expected: int) -> bool:
    return await stock_of(url, product) == expected


async def test_bad_cards_are_refused_on_the_page_and_change_nothing(saga: tuple[ThreadedStack, Relays]) -> None:
    stack, _ = saga
    url, _, token, product = await _setup(stack)
    order = await checkout(url, token, product, 1)
    next_url = order["payment"]["nextActionUrl"]
    for card in ("4242 4242 4242 4241", "1234", "x" * 5000, "5555 5555 5555 4444"):
        answer = await pay(next_url, card)
        assert answer.status_code == 400 and "card-error" in answer.text
    async with httpx.AsyncClient() as client:
        wrong = await client.get(next_url.split("?")[0], params={"secret": "nope"})
        assert wrong.status_code == 404
        evil = await client.post(
            next_url.split("?")[0],
            data={
                "secret": httpx.URL(next_url).params["secret"],
                "card_number": CARD_OK,
                "cvc": "123",
                "return_to": "https://evil.example/steal",
            },
        )
    assert evil.status_code == 303 and evil.headers["location"] == stack.settings.public_url + "/orders"
    assert (await eventually(lambda: _status(url, token, order["id"], "PAID")))["status"] == "PAID"


async def test_3d_secure_step_then_paid(saga: tuple[ThreadedStack, Relays]) -> None:
    stack, _ = saga
    url, _, token, product = await _setup(stack)
    order = await checkout(url, token, product, 1)
    answer = await pay(order["payment"]["nextActionUrl"], CARD_3DS)
    assert answer.status_code == 303 and "/3ds?" in answer.headers["location"]
    waiting = await order_payment(url, token, order["id"])
    assert waiting["status"] == "PENDING_PAYMENT" and waiting["payment"]["status"] == "REQUIRES_ACTION"
    assert waiting["payment"]["nextActionUrl"] is not None
    challenge = httpx.URL(answer.headers["location"])
    async with httpx.AsyncClient() as client:
        page = await client.get(challenge)
        assert "Complete authentication" in page.text
        done = await client.post(
            str(challenge).split("?")[0],
            data={"secret": challenge.params["secret"], "return_to": "/orders", "action": "complete"},
        )
    assert done.status_code == 303
    paid = await eventually(lambda: _captured(url, token, order["id"]))
    assert paid["status"] == "PAID"


async def test_duplicate_webhooks_capture_once(saga: tuple[ThreadedStack, Relays]) -> None:
    stack, _ = saga
    url, _, token, product = await _setup(stack)
    order = await checkout(url, token, product, 1)
    await pay(order["payment"]["nextActionUrl"], CARD_OK)
    await eventually(lambda: _captured(url, token, order["id"]))
    ref = order["payment"]["providerReference"]
    hook = stack.base_url("payments") + "/webhooks/test"
    body = orjson.dumps(
        {"id": f"evt_{ref}_authorised", "intent": ref, "outcome": "authorised", "method": "Visa •••• 4242"}
    )
    fresh = orjson.dumps({"id": "evt_replayed_later", "intent": ref, "outcome": "authorised"})
    secret = stack.settings.service_secret
    async with httpx.AsyncClient() as client:
        answers = await asyncio.gather(
            *(client.post(hook, content=body, headers={SIGNATURE_HEADER: sign(body, secret)}) for _ in range(5))
        )
        assert {a.json()["result"] for a in answers} == {"duplicate"}
        # Another id with the same news: applied, but the payment has moved on; nothing changes.
        again = await client.post(hook, content=fresh, headers={SIGNATURE_HEADER: sign(fresh, secret)})
        assert again.json() == {"result": "applied"}
        forged = await client.post(hook, content=fresh, headers={SIGNATURE_HEADER: sign(fresh, "not-the-secret")})
        assert forged.status_code == 400
        unsigned = await client.post(hook, content=b"{}")
        assert unsigned.status_code == 400
    await asyncio.sleep(1.0)
    captures = await sql(
        stack.settings.database_url,
        "payments",
        "SELECT count(*) AS n FROM payment_history h JOIN payments p ON p.id = h.payment_id"
        " WHERE p.provider_ref = :ref AND h.kind = 'captured'",
        ref=ref,
    )
    assert captures[0].n == 1
    paid_events = await sql(
        stack.settings.database_url,
        "orders",
        "SELECT count(*) AS n FROM outbox WHERE aggregate_id = :id AND event_type = 'order.paid'",
        id=order["id"],
    )
    assert paid_events[0].n == 1
    assert (await order_payment(url, token, order["id"]))["status"] == "PAID"


async def test_unpaid_order_is_cancelled_after_its_deadline(saga: tuple[ThreadedStack, Relays]) -> None:
    stack, _ = saga
    url, _, token, product = await _setup(stack, stock=2)
    order = await checkout(url, token, product, 2)
    assert await stock_of(url, product) == 0
    await asyncio.sleep(1.0)
    assert (await order_payment(url, token, order["id"]))["status"] == "PENDING_PAYMENT"  # not due yet
    await expire(stack.settings.database_url, order["id"])
    cancelled = await eventually(lambda: _status(url, token, order["id"], "CANCELLED"), within=30)
    assert await eventually(lambda: _stock_is(url, product, 2))
    voided = await eventually(lambda: _payment_is(url, token, order["id"], "CANCELLED"))
    assert voided["payment"]["captured"]["amount"] == "0.00"
    assert cancelled["id"] == order["id"]
    rows = await sql(
        stack.settings.database_url, "orders", "SELECT cancel_reason FROM orders WHERE id = :id", id=order["id"]
    )
    assert rows[0].cancel_reason == "payment_abandoned"
    # Paying afterwards is refused by the provider's page: the intent was cancelled.
    late = await pay(order["payment"]["nextActionUrl"], CARD_OK)
    assert late.status_code == 200 and "canceled" in late.text
    assert (await order_payment(url, token, order["id"]))["status"] == "CANCELLED"


async def _payment_is(url: str, token: str, order_id: str, status: str) -> dict[str, Any] | None:
    order = await order_payment(url, token, order_id)
    return order if order["payment"] and order["payment"]["status"] == status else None


async def test_cancelling_a_paid_order_refunds_it_and_admins_refund_in_part(
    saga: tuple[ThreadedStack, Relays],
) -> None:
    stack, _ = saga
    url, admin, token, product = await _setup(stack)
    first = await checkout(url, token, product, 1)
    await pay(first["payment"]["nextActionUrl"], CARD_OK)
    await eventually(lambda: _captured(url, token, first["id"]))
    cancelled = (await data(url, CANCEL, {"input": {"orderId": first["id"]}}, token))["cancelOrder"]
    assert cancelled["order"]["status"] == "CANCELLED"
    refunded = await eventually(lambda: _refunded(url, token, first["id"], "12.50"))
    assert [h["kind"] for h in refunded["payment"]["history"]][-1] == "refunded"
    assert await eventually(lambda: _stock_is(url, product, 5))

    second = await checkout(url, token, product, 2)
    await pay(second["payment"]["nextActionUrl"], CARD_OK)
    paid = await eventually(lambda: _captured(url, token, second["id"]))
    payment_id = paid["payment"]["id"]
    for amount, code in (("25.01", "INVALID"), ("0", "INVALID"), ("1.001", "INVALID")):
        refused = (await data(url, REFUND, {"input": {"paymentId": payment_id, "amount": amount}}, admin))[
            "refundPayment"
        ]
        assert [e["code"] for e in refused["userErrors"]] == [code], refused
    shopper_try = await gql_errors(url, REFUND, {"input": {"paymentId": payment_id, "amount": "1.00"}}, token)
    assert shopper_try == ["UNAUTHORIZED_FIELD_OR_TYPE"]  # refused by the router (@requiresScopes)
    partial = (await data(url, REFUND, {"input": {"paymentId": payment_id, "amount": "5.00"}}, admin))["refundPayment"]
    assert partial["userErrors"] == [] and partial["payment"]["refunded"]["amount"] == "5.00"
    rest = (await data(url, REFUND, {"input": {"paymentId": payment_id}}, admin))["refundPayment"]
    assert rest["payment"]["refunded"]["amount"] == "25.00"
    events = await eventually(lambda: _refund_events(stack, second["id"], 2))
    assert [(e.payload["amount_minor"], e.payload["currency"]) for e in events] == [(500, "USD"), (2000, "USD")]
    assert (await order_payment(url, token, second["id"]))["status"] == "PAID"  # refunds do not undo the order


async def gql_errors(url: str, query: str, variables: dict[str, Any], token: str) -> list[str]:
    from tests.support.graphql import gql

    result = await gql(url, query, variables, token)
    return [e.get("extensions", {}).get("code") for e in result.get("errors", [])]


async def _refunded(url: str, token: str, order_id: str, amount: str) -> dict[str, Any] | None:
    order = await order_payment(url, token, order_id)
    return order if order["payment"]["refunded"]["amount"] == amount else None


async def _refund_events(stack: ThreadedStack, order_id: str, count: int) -> list[Any] | None:
    rows = await sql(
        stack.settings.database_url,
        "orders",
        "SELECT payload FROM outbox WHERE aggregate_id = :id AND event_type = 'order.refunded' ORDER BY id",
        id=order_id,
    )
    return rows if len(rows) == count else None


async def test_relay_killed_mid_saga_converges_after_restart(saga: tuple[ThreadedStack, Relays]) -> None:
    stack, relays = saga
    url, _, token, product = await _setup(stack, stock=3)
    order = await checkout(url, token, product, 1)
    relays.kill()
    try:
        await pay(order["payment"]["nextActionUrl"], CARD_OK)
        # Payments has the authorisation; without a relay the order cannot hear of it.
        await eventually(lambda: _payment_is(url, token, order["id"], "CAPTURED"))
        await asyncio.sleep(1.0)
        assert (await order_payment(url, token, order["id"]))["status"] == "PENDING_PAYMENT"
    finally:
        relays.start()
    paid = await eventually(lambda: _status(url, token, order["id"], "PAID"))
    assert paid["payment"]["captured"]["amount"] == "12.50"
    assert await stock_of(url, product) == 2


async def test_a_payment_event_never_delivered_is_repaired_by_the_reconciler(
    saga: tuple[ThreadedStack, Relays],
) -> None:
    """Payments has the money, orders never heard (no relay): past the deadline the orders reconciler
    asks payments and marks the order PAID; the late event, once relayed, changes nothing."""
    stack, relays = saga
    url, _, token, product = await _setup(stack, stock=3)
    order = await checkout(url, token, product, 2)
    relays.kill()
    try:
        await pay(order["payment"]["nextActionUrl"], CARD_OK)
        await eventually(lambda: _payment_is(url, token, order["id"], "CAPTURED"))
        await expire(stack.settings.database_url, order["id"])
        repaired = await eventually(lambda: _status(url, token, order["id"], "PAID"))
        assert repaired["payment"]["status"] == "CAPTURED"
    finally:
        relays.start()
    await asyncio.sleep(2.0)  # the relayed payment.authorised reaches orders: already PAID
    events = await sql(
        stack.settings.database_url,
        "orders",
        "SELECT event_type FROM outbox WHERE aggregate_id = :id ORDER BY id",
        id=order["id"],
    )
    assert [e.event_type for e in events] == ["order.created", "order.paid"]
    assert (await order_payment(url, token, order["id"]))["status"] == "PAID"
    assert await stock_of(url, product) == 1
