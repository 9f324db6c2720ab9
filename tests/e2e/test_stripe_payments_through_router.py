"""The ``stripe`` provider end to end, against a local server answering Stripe's API shapes.

The official library talks to it (``STRIPE_API_BASE``); webhooks are signed with
the library's own scheme (``stripe.WebhookSignature``) and verified by the
payments app. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
import stripe

from deploy.stack import Stack, ThreadedStack, compose_router
from tests.support.fake_stripe import FakeStripe, event, serving
from tests.support.payments import (
    CANCEL,
    SAGA_ENV,
    admin_token,
    checkout,
    data,
    environment,
    eventually,
    new_product,
    order_payment,
    shopper,
    stock_of,
)

WEBHOOK_SECRET = "whsec_test_local_only"


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[FakeStripe, str]]:
    stripe_fake = FakeStripe()
    with serving(stripe_fake) as url:
        yield stripe_fake, url


@pytest.fixture(scope="module")
def shop(fake: tuple[FakeStripe, str]) -> Iterator[ThreadedStack]:
    env = SAGA_ENV | {
        "SHOPGRAPH_PAYMENTS_PROVIDER": "stripe",
        "STRIPE_SECRET_KEY": "sk_test_local_only",
        "STRIPE_PUBLISHABLE_KEY": "pk_test_local_only",
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": fake[1],
    }
    with environment(env):
        stack = Stack(fresh_database=True, seed=True, router=compose_router).start_in_thread()
    try:
        yield stack
    finally:
        stack.stop()


def _signed(payload: dict[str, Any], secret: str = WEBHOOK_SECRET) -> tuple[bytes, dict[str, str]]:
    body = orjson.dumps(payload)
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), secret)
    return body, {"Stripe-Signature": header, "Content-Type": "application/json"}


async def _post_webhook(shop: ThreadedStack, payload: dict[str, Any], secret: str = WEBHOOK_SECRET) -> httpx.Response:
    body, headers = _signed(payload, secret)
    async with httpx.AsyncClient() as client:
        return await client.post(shop.base_url("payments") + "/webhooks/stripe", content=body, headers=headers)


async def test_stripe_intent_webhook_capture_once_and_refund(shop: ThreadedStack, fake: tuple[FakeStripe, str]) -> None:
    stripe_fake, _ = fake
    url = shop.url("router")
    admin = await admin_token(url, shop.seeded.accounts)
    token, product = await shopper(url), await new_product(url, admin, 4, price="19.99")
    order = await checkout(url, token, product, 2)
    payment = order["payment"]
    assert payment["provider"] == "stripe" and payment["status"] == "PENDING"
    intent_id = payment["providerReference"]
    intent = stripe_fake.intents[intent_id]
    assert (intent["amount"], intent["currency"], intent["capture_method"]) == (3998, "usd", "manual")
    assert payment["clientSecret"] == intent["client_secret"] and payment["nextActionUrl"] is None
    publishable = await data(
        url, "query($id: ID!) { order(id: $id) { payment { publishableKey } } }", {"id": order["id"]}, token
    )
    assert publishable["order"]["payment"]["publishableKey"] == "pk_test_local_only"
    # Every call the shop made carried an idempotency key.
    assert all(key for method, _, key in stripe_fake.calls if method == "POST")

    confirmed = stripe_fake.confirm(intent_id, "4242424242424242")  # the shopper, in Stripe's element
    authorised = event("payment_intent.amount_capturable_updated", confirmed)
    answers = await asyncio.gather(*(_post_webhook(shop, authorised) for _ in range(4)))
    assert sorted(a.json()["result"] for a in answers) == ["applied", "duplicate", "duplicate", "duplicate"]

    paid = await eventually(lambda: _with_payment(url, token, order["id"], "CAPTURED"))
    assert paid["status"] == "PAID"
    assert paid["payment"]["methodSummary"] == "Visa •••• 4242"
    assert stripe_fake.intents[intent_id]["status"] == "succeeded"
    # Stripe then says `succeeded` (our own capture): nothing more happens.
    answer = await _post_webhook(shop, event("payment_intent.succeeded", stripe_fake.intents[intent_id]))
    assert answer.json() == {"result": "applied"}
    await asyncio.sleep(0.5)
    assert stripe_fake.count("POST", "/capture") == 1

    cancelled = (await data(url, CANCEL, {"input": {"orderId": order["id"]}}, token))["cancelOrder"]
    assert cancelled["order"]["status"] == "CANCELLED"
    refunded = await eventually(lambda: _refunded(url, token, order["id"]))
    assert refunded["payment"]["refunded"]["amount"] == "39.98"
    assert [r["amount"] for r in stripe_fake.refunds.values() if r["payment_intent"] == intent_id] == [3998]
    assert await eventually(lambda: _stock(url, product, 4))


async def test_stripe_webhooks_are_verified_and_declines_cancel(
    shop: ThreadedStack, fake: tuple[FakeStripe, str]
) -> None:
    stripe_fake, _ = fake
    url = shop.url("router")
    admin = await admin_token(url, shop.seeded.accounts)
    token, product = await shopper(url), await new_product(url, admin, 3)
    order = await checkout(url, token, product, 3)
    intent_id = order["payment"]["providerReference"]
    declined = event("payment_intent.payment_failed", stripe_fake.confirm(intent_id, "4000000000000002"))

    forged = await _post_webhook(shop, declined, secret="whsec_someone_else")
    assert forged.status_code == 400
    async with httpx.AsyncClient() as client:
        unsigned = await client.post(shop.base_url("payments") + "/webhooks/stripe", content=orjson.dumps(declined))
        assert unsigned.status_code == 400
        huge = await client.post(shop.base_url("payments") + "/webhooks/stripe", content=b"x" * 300_000)
        assert huge.status_code == 413
    assert (await order_payment(url, token, order["id"]))["payment"]["status"] == "PENDING"

    assert (await _post_webhook(shop, declined)).json() == {"result": "applied"}
    cancelled = await eventually(lambda: _with_payment(url, token, order["id"], "FAILED"))
    assert cancelled["payment"]["failureReason"] == "generic_decline"
    assert (await eventually(lambda: _order_is(url, token, order["id"], "CANCELLED")))["status"] == "CANCELLED"
    assert await eventually(lambda: _stock(url, product, 3))
    assert stripe_fake.count("POST", "/capture") == 1  # still only the first test's


async def _with_payment(url: str, token: str, order_id: str, status: str) -> dict[str, Any] | None:
    order = await order_payment(url, token, order_id)
    return order if order["payment"]["status"] == status else None


async def _order_is(url: str, token: str, order_id: str, status: str) -> dict[str, Any] | None:
    order = await order_payment(url, token, order_id)
    return order if order["status"] == status else None


async def _refunded(url: str, token: str, order_id: str) -> dict[str, Any] | None:
    order = await order_payment(url, token, order_id)
    return order if order["payment"]["refunded"]["amount"] != "0.00" else None


async def _stock(url: str, product: str, expected: int) -> bool:
    return await stock_of(url, product) == expected
