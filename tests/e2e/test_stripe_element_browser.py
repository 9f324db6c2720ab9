"""The storefront's payment step with Stripe's Payment Element, in a real browser (issue 16).

The stack runs the ``stripe`` provider against the local Stripe-shaped server
(tests/support/fake_stripe.py), which also serves a stand-in for Stripe.js: the element's card
frame comes from that server's origin, the card is posted there only, and the server then posts
the signed webhook to the payments app, as Stripe does. The router serves the storefront with its
CSP admitting exactly that origin (storefront.script_src/frame_src/connect_src). Headless
Chromium (tests/e2e/browser/stripe_element.mjs) pays one order with 4242 4242 4242 4242 and
watches the order page turn Paid by itself, and is declined on another with
4000 0000 0000 0002: the element says so and the order is cancelled, its stock back. The
order page does not go stale: back from Stripe before its webhook (held by the local server until
the browser script releases it) it says it waits for the bank and shows no second card form; a
cancelled order's page follows its payment's void, which no order event announces. An
administrator then refunds 10.00 of the paid order in the admin's orders list: Stripe gets one
refund of 1000 and the shopper's open order page shows it live. Last, 4000 0027 6000 3184 asks for
3-D Secure: the bank's page opens in a frame (from the Stripe origin, admitted by frame-src), is
completed, and the order is paid; left half-way (the page reloaded while the bank's frame was
open), the page offers the bank's step again (Stripe.js handleNextAction) and the order is paid.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy.stack import Stack, ThreadedStack, compose_router
from tests.e2e.browser_steps import run_journey, storefront_served  # noqa: F401 (a fixture)
from tests.integration.helpers import unique_email
from tests.support.fake_stripe import FakeStripe, serving
from tests.support.payments import (
    SAGA_ENV,
    admin_token,
    checkout,
    data,
    environment,
    eventually,
    new_product,
    order_payment,
    stock_of,
)

WEBHOOK_SECRET = "whsec_test_browser_only"
PASSWORD = "a card paying passphrase"
REGISTER = """mutation($input: RegisterInput!) {
  register(input: $input) { accessToken userErrors { code message } }
}"""


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[FakeStripe, str]]:
    stripe_fake = FakeStripe(webhook_secret=WEBHOOK_SECRET, hold_webhooks=True)
    with serving(stripe_fake) as url:
        yield stripe_fake, url


@pytest.fixture(scope="module")
def shop(fake: tuple[FakeStripe, str], storefront_served: Path) -> Iterator[ThreadedStack]:  # noqa: F811
    stripe_fake, origin = fake
    env = SAGA_ENV | {
        "SHOPGRAPH_PAYMENTS_PROVIDER": "stripe",
        "STRIPE_SECRET_KEY": "sk_test_local_only",
        "STRIPE_PUBLISHABLE_KEY": stripe_fake.publishable_key,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": origin,
        "STRIPE_JS_URL": f"{origin}/v3",
        # Only Stripe's (held) webhooks move the payments here, not the reconciler asking Stripe.
        "SHOPGRAPH_PAYMENTS_STALE_SECONDS": "600",
        # What production sets to Stripe's origins (README, "Payments and the order saga").
        "SHOPGRAPH_STOREFRONT_SCRIPT_SRC": origin,
        "SHOPGRAPH_STOREFRONT_FRAME_SRC": origin,
        "SHOPGRAPH_STOREFRONT_CONNECT_SRC": origin,
    }
    with environment(env):
        stack = Stack(fresh_database=True, seed=True, router=compose_router).start_in_thread()
    stripe_fake.webhook_url = stack.base_url("payments") + "/webhooks/stripe"
    try:
        yield stack
    finally:
        stack.stop()


async def _browser(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return await run_journey("stripe_element.mjs", config, "Stripe element journey", within=120)


async def test_a_shopper_pays_with_the_stripe_element_and_a_decline_cancels(
    shop: ThreadedStack, fake: tuple[FakeStripe, str]
) -> None:
    stripe_fake, origin = fake
    url = shop.url("router")
    base = url.removesuffix("/graphql")
    admin = await admin_token(url, shop.seeded.accounts)
    product = await new_product(url, admin, 7, price="21.00")
    email = unique_email("element")
    registered = await data(url, REGISTER, {"input": {"email": email, "password": PASSWORD, "name": "Elle"}})
    token = registered["register"]["accessToken"]
    paid, declined = await checkout(url, token, product, 2), await checkout(url, token, product, 1)
    cancelled, secure = await checkout(url, token, product, 1), await checkout(url, token, product, 1)
    resumed = await checkout(url, token, product, 1)
    assert await stock_of(url, product) == 1  # all five reserved

    try:
        steps = await _browser(
            {
                "url": base,
                "stripe": origin,
                "email": email,
                "password": PASSWORD,
                "paid": paid["number"],
                "declined": declined["number"],
                "cancelled": cancelled["number"],
                "secure": secure["number"],
                "resumed": resumed["number"],
                "admin": dict(zip(("email", "password"), _admin_login(shop), strict=True)),
            }
        )
    except AssertionError as failed:
        raise AssertionError(f"{failed}; webhooks: {stripe_fake.webhooks_sent}; calls: {stripe_fake.calls}") from None

    shown = steps["paid"]
    assert shown["waiting"] == {
        "text": "We have your card details; waiting for your bank to confirm the payment… this page updates by itself.",
        "forms": 0,
        "status": "Pending payment",
    }, shown["waiting"]
    assert shown["released"] == {"released": 1}
    assert shown["path"] == f"/orders/{paid['number']}" and shown["status"] == "Paid"
    assert shown["intent"] == paid["payment"]["providerReference"]
    assert "Paid $42.00 with Visa •••• 4242" in shown["payment"], shown
    assert f"{origin}/v3" in shown["scripts"], "Stripe.js came from the URL payments named"
    refused = steps["declined"]
    assert refused["elementSaid"] == ["Your card was declined."], refused
    assert refused["status"] == "Cancelled"
    assert refused["alert"].startswith("Your card was declined (generic decline)"), refused

    # The card numbers went to the provider's origin only, never to the shop's router or subgraphs.
    done = steps["done"]
    assert set(done["cardRequests"]) == {origin}, done["cardRequests"]
    assert stripe_fake.cards_seen == ["4242424242424242", "4000000000000002", *["4000002760003184"] * 2]
    assert steps["resumed"] == {"told": "Your bank asks you to confirm this payment (3-D Secure).", "status": "Paid"}
    assert steps["secure"] == {"asked": "Your bank: confirm this payment", "status": "Paid"}
    violations = [line for line in done["console"] if "Content Security Policy" in line]
    assert violations == [], "the page's CSP refused part of the element"
    # Stripe told the shop once per confirmation; the shop captured the paid order once.
    assert stripe_fake.webhooks_sent == [
        ("payment_intent.amount_capturable_updated", 200),
        ("payment_intent.payment_failed", 200),
        ("payment_intent.requires_action", 200),
        ("payment_intent.amount_capturable_updated", 200),
        ("payment_intent.requires_action", 200),
        ("payment_intent.amount_capturable_updated", 200),
    ]
    captured = await eventually(lambda: _captured(url, token, paid["id"]))
    assert captured["payment"]["captured"]["amount"] == "42.00"
    assert steps["cancelled"] == {"status": "Cancelled", "payment": "The payment was cancelled; nothing was charged."}
    assert stripe_fake.intents[cancelled["payment"]["providerReference"]]["status"] == "canceled"
    refunded = steps["refunded"]
    # (the cell's text ends with its Refund button: more can be refunded)
    assert refunded["before"] == "Captured Visa •••• 4242Refund", refunded
    assert refunded["after"] == "Captured Visa •••• 4242 refunded $10.00Refund", refunded
    assert refunded["shopperSees"] == "Paid $42.00 with Visa •••• 4242. Refunded $10.00.", refunded
    intent = paid["payment"]["providerReference"]
    assert [r["amount"] for r in stripe_fake.refunds.values() if r["payment_intent"] == intent] == [1000]
    assert await eventually(lambda: _stock_is(url, product, 3))  # 7 - 2 - 1 - 1 (the paid ones)
    assert await eventually(lambda: _captured(url, token, secure["id"]))
    assert await eventually(lambda: _captured(url, token, resumed["id"]))
    captures = sorted(path for method, path, _ in stripe_fake.calls if method == "POST" and path.endswith("/capture"))
    paid_intents = [o["payment"]["providerReference"] for o in (paid, secure, resumed)]
    assert captures == sorted(f"/v1/payment_intents/{i}/capture" for i in paid_intents)  # once each
    print(f"element: PAID on the order page {shown['ms']} ms after the card was submitted")


def _admin_login(shop: ThreadedStack) -> tuple[str, str]:
    (email, password) = next((e, p) for role, e, p in shop.seeded.accounts if role == "ADMIN")
    return email, password


async def _captured(url: str, token: str, order_id: str) -> dict[str, Any] | None:
    order = await order_payment(url, token, order_id)
    return order if order["payment"]["status"] == "CAPTURED" else None


async def _stock_is(url: str, product: str, expected: int) -> bool:
    return await stock_of(url, product) == expected
