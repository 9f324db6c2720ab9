"""Guest checkout through the router: a signed-out shopper checks out a guest cart with an e-mail address,
reads the order with its lookup token, signs up with that address and claims it; attacked: forged, expired
and replayed tokens, another account's claim, a replayed key, a claim without signing in, a bad address."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from deploy.devmail import MailSink
from deploy.stack import ThreadedStack
from subgraphs.kit import telemetry
from subgraphs.orders import guest
from tests.e2e.pricing_helpers import CREATE_GUEST, GUEST_CART, MONEY, Shop, mutation
from tests.e2e.storefront import Storefront
from tests.integration.helpers import LOGIN, REGISTER, STRONG_PASSWORD, unique_email
from tests.integration.notify_helpers import worker
from tests.integration.shop_helpers import ADDRESS, CARD_OK, eventually, fewest_statements, pay_order
from tests.support.graphql import gql

ERRORS = "userErrors { code field message }"
ORDER = f"id number status guestEmail total {MONEY} items {{ quantity sku product {{ id name }} }}"
GUEST_CHECKOUT = mutation("guestCheckout", "GuestCheckoutInput", f"order {{ {ORDER} }} lookupToken {ERRORS}")
GUEST_ORDER = f"query($token: String!) {{ guestOrder(token: $token) {{ {ORDER} }} }}"
CLAIM = mutation("claimGuestOrders", "ClaimGuestOrdersInput", f"orders {{ id number }} {ERRORS}")
ADD_VARIANT_LINE = mutation("addToCart", "AddToCartInput", f"cart {{ id }} {ERRORS}")
MY_ORDERS = "{ orders(first: 20) { edges { node { id number } } } }"
GUEST_PAYMENT = "query($token: String!) { guestPayment(lookupToken: $token) { status nextActionUrl } }"
ORDER_PAYMENT = "query($id: ID!) { order(id: $id) { id status payment { status } } }"


@pytest.fixture
async def shop(router_url: str, demo_accounts: dict[str, tuple[str, str]]) -> AsyncIterator[Shop]:
    async with httpx.AsyncClient(timeout=120) as client:
        email, password = demo_accounts["ADMIN"]
        login = await gql(router_url, LOGIN, {"input": {"email": email, "password": password}}, client=client)
        yield Shop(router_url, client, login["data"]["login"]["accessToken"])


async def guest_cart_with(shop: Shop, *items: tuple[str, int]) -> str:
    token: str = (await shop.call(CREATE_GUEST))["cartToken"]
    for product_id, quantity in items:
        assert (await shop.add(None, product_id, quantity, cart_token=token))["userErrors"] == []
    return token


def checkout_input(cart_token: str, email: str, key: str | None = None, **address: Any) -> dict[str, Any]:
    return {
        "idempotencyKey": key or str(uuid.uuid4()),
        "cartToken": cart_token,
        "email": email,
        "shippingAddress": {**ADDRESS, **address},
    }


async def test_a_guest_checks_out_reads_the_order_signs_up_and_claims_it(shop: Shop, stack: ThreadedStack) -> None:
    lamp, mug = await shop.product("30.00", stock=10), await shop.product("8.50", stock=10)
    cart_token = await guest_cart_with(shop, (lamp, 2), (mug, 1))
    email = unique_email("guest")
    placed = await shop.call(GUEST_CHECKOUT, {"input": checkout_input(cart_token, email.upper())})
    assert placed["userErrors"] == [], placed
    order, lookup = placed["order"], placed["lookupToken"]
    assert order["status"] == "PENDING_PAYMENT" and order["guestEmail"] == email
    assert order["total"]["amount"] == "68.50"
    assert {i["product"]["id"]: i["quantity"] for i in order["items"]} == {lamp: 2, mug: 1}
    # The guest cart is emptied by the order (its token still opens it for more shopping).
    assert (await shop.call(GUEST_CART, {"token": cart_token}))["items"] == []

    # Signed out, the lookup token opens the order; nothing else does.
    assert (await shop.call(GUEST_ORDER, {"token": lookup}))["number"] == order["number"]
    prefix, order_id, expires, signature = lookup.split(".")
    forged = [
        guest.issue("not-the-secret", uuid.UUID(order["id"])),
        lookup[:-3] + "AAA",
        f"{prefix}.{uuid.uuid4()}.{expires}.{signature}",  # another order, the same signature
        f"{prefix}.{order_id}.{int(expires) + 10**6}.{signature}",  # a longer life
        f"o1.{order_id}.{signature}",  # the first format, which never expired
        "x" * 5000,
        "",
    ]
    for bad in forged:
        assert await shop.call(GUEST_ORDER, {"token": bad}) is None, bad
    anonymous = await gql(
        shop.url, "query($id: ID!) { order(id: $id) { id } }", {"id": order["id"]}, client=shop.client
    )
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

    # Someone else signed in, holding the token, cannot take the order: the address must match.
    stranger = await shop.ok(REGISTER, {"email": unique_email("x"), "password": STRONG_PASSWORD, "name": "X"})
    refused = await shop.call(CLAIM, {"input": {"lookupTokens": [lookup]}}, stranger["accessToken"])
    assert refused["orders"] == [] and [e["code"] for e in refused["userErrors"]] == ["NOT_FOUND"]
    # Claiming needs an account.
    signed_out = await gql(shop.url, CLAIM, {"input": {"lookupTokens": [lookup]}}, client=shop.client)
    assert signed_out["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

    # Sign up with the address: the claim makes the order the account's.
    account = await shop.ok(REGISTER, {"email": email, "password": STRONG_PASSWORD, "name": "Guest"})
    access = account["accessToken"]
    claimed = await shop.call(CLAIM, {"input": {"lookupTokens": [lookup, forged[0]]}}, access)
    assert claimed["orders"] == [{"id": order["id"], "number": order["number"]}]
    assert claimed["userErrors"] == [
        {"code": "INVALID_TOKEN", "field": ["input", "lookupTokens", "1"], "message": "This token is not valid."}
    ]
    history = await shop.call(MY_ORDERS, None, access)
    assert [e["node"]["id"] for e in history["edges"]] == [order["id"]]
    # Claimed: the token opens nothing now, a second claim is a no-op, the stranger still gets nothing.
    assert await shop.call(GUEST_ORDER, {"token": lookup}) is None
    again = await shop.call(CLAIM, {"input": {"lookupTokens": [lookup]}}, access)
    assert again == {"orders": [{"id": order["id"], "number": order["number"]}], "userErrors": []}
    assert (await shop.call(CLAIM, {"input": {"lookupTokens": [lookup]}}, stranger["accessToken"]))["orders"] == []

    # The payment followed the order to the account (payments reads order.claimed): it can pay.
    async def payment() -> dict[str, Any] | None:
        found = await shop.call(ORDER_PAYMENT, {"id": order["id"]}, access)
        return found if found["payment"] is not None else None

    assert (await eventually(payment))["payment"]["status"] in ("PENDING", "REQUIRES_ACTION")
    paid = await pay_order(stack, access, order["id"])
    assert paid["status"] == "PAID"


async def test_a_lookup_token_expires_and_an_expired_one_is_refused_with_its_code(
    shop: Shop, stack: ThreadedStack
) -> None:
    item = await shop.product("11.00", stock=5)
    email = unique_email("late")
    issued_from = int(time.time())
    placed = await shop.call(GUEST_CHECKOUT, {"input": checkout_input(await guest_cart_with(shop, (item, 1)), email)})
    issued_by = int(time.time()) + 1
    lookup, order = placed["lookupToken"], placed["order"]
    # The token opens the order for the configured lifetime (30 days unless set), from its issue.
    ttl = stack.settings.order_lookup_ttl_seconds
    assert ttl == 30 * 24 * 3600
    assert issued_from + ttl <= int(lookup.split(".")[2]) <= issued_by + ttl

    # The same order's genuine token, issued a lifetime and a second ago: refused with its code, everywhere.
    secret = stack.settings.service_secret
    expired = guest.issue(secret, uuid.UUID(order["id"]), ttl=ttl, now=time.time() - ttl - 1)
    for query in (GUEST_ORDER, GUEST_PAYMENT):
        answer = await gql(shop.url, query, {"token": expired}, client=shop.client)
        assert [e["extensions"]["code"] for e in answer["errors"]] == ["TOKEN_EXPIRED"], answer
        assert "expired" in answer["errors"][0]["message"]
        assert answer["data"] is None or next(iter(answer["data"].values())) is None
    account = await shop.ok(REGISTER, {"email": email, "password": STRONG_PASSWORD, "name": "Late"})
    late = await shop.call(CLAIM, {"input": {"lookupTokens": [expired]}}, account["accessToken"])
    assert late == {
        "orders": [],
        "userErrors": [
            {"code": "TOKEN_EXPIRED", "field": ["input", "lookupTokens", "0"], "message": "This token has expired."}
        ],
    }
    # Refused, it changed nothing: the live token still opens the order, and claims it.
    assert (await shop.call(GUEST_ORDER, {"token": lookup}))["id"] == order["id"]
    claimed = await shop.call(CLAIM, {"input": {"lookupTokens": [lookup]}}, account["accessToken"])
    assert claimed == {"orders": [{"id": order["id"], "number": order["number"]}], "userErrors": []}
    # Replayed once claimed, the live token opens nothing; the expired one is still refused as expired.
    assert await shop.call(GUEST_ORDER, {"token": lookup}) is None
    again = await gql(shop.url, GUEST_ORDER, {"token": expired}, client=shop.client)
    assert again["errors"][0]["extensions"]["code"] == "TOKEN_EXPIRED"


async def claim_statements(shop: Shop, stack: ThreadedStack, access: str, tokens: list[str]) -> tuple[Any, int]:
    """Claim ``tokens`` through the router; the payload and the SQL statements the orders subgraph ran for
    the claim itself (told from background work, a relay or a sweeper, by the request's X-Request-ID)."""
    request_id = f"claim-{uuid.uuid4().hex}"
    counted = 0

    def observe(_sql: str) -> None:
        nonlocal counted
        if telemetry.current_request_id() == request_id:
            counted += 1

    statements = stack.apps["orders"].state.runtime.db.statements
    statements.observers.append(observe)
    try:
        body = {"query": CLAIM, "variables": {"input": {"lookupTokens": tokens}}}
        headers = {"Authorization": f"Bearer {access}", "X-Request-ID": request_id}
        answer = (await shop.client.post(shop.url, json=body, headers=headers)).json()
    finally:
        statements.observers.remove(observe)
    assert "errors" not in answer, answer
    return answer["data"]["claimGuestOrders"], counted


async def test_claiming_1_or_4_guest_orders_costs_the_same_statements(shop: Shop, stack: ThreadedStack) -> None:
    item = await shop.product("3.00", stock=20)
    email = unique_email("claims")
    tokens = []
    for _ in range(5):
        cart_token = await guest_cart_with(shop, (item, 1), (await shop.product("4.00"), 2))
        placed = await shop.call(GUEST_CHECKOUT, {"input": checkout_input(cart_token, email)})
        assert placed["userErrors"] == [], placed
        tokens.append(placed["lookupToken"])
    access = (await shop.ok(REGISTER, {"email": email, "password": STRONG_PASSWORD, "name": "Many"}))["accessToken"]

    one, one_cost = await claim_statements(shop, stack, access, tokens[:1])
    four, four_cost = await claim_statements(shop, stack, access, tokens[1:])
    assert len(one["orders"]) == 1 and len(four["orders"]) == 4 and four["userErrors"] == []
    assert 0 < one_cost == four_cost


async def test_a_guest_checkout_is_idempotent_per_key_and_refuses_bad_input(shop: Shop) -> None:
    item = await shop.product("12.00", stock=5)
    cart_token = await guest_cart_with(shop, (item, 1))
    email, key = unique_email("guest"), str(uuid.uuid4())
    first = await shop.call(GUEST_CHECKOUT, {"input": checkout_input(cart_token, email, key)})
    again = await shop.call(GUEST_CHECKOUT, {"input": checkout_input(cart_token, email, key)})
    assert first["userErrors"] == [] and again["userErrors"] == []
    assert again["order"]["id"] == first["order"]["id"] and again["lookupToken"] == first["lookupToken"]
    moved = await shop.call(GUEST_CHECKOUT, {"input": checkout_input(cart_token, email, key, city="Paris")})
    assert [e["code"] for e in moved["userErrors"]] == ["IDEMPOTENCY_KEY_REUSED"]
    # Its cart is empty now: a new key has nothing to order.
    empty = await shop.call(GUEST_CHECKOUT, {"input": checkout_input(cart_token, email)})
    assert [e["code"] for e in empty["userErrors"]] == ["CART_EMPTY"]

    other = await guest_cart_with(shop, (item, 1))
    for bad_email in ("not-an-address", "a@b", "x" * 250 + "@example.com", ""):
        refused = await shop.call(GUEST_CHECKOUT, {"input": checkout_input(other, bad_email)})
        assert [e["field"] for e in refused["userErrors"]] == [["input", "email"]], bad_email
    forged = await shop.call(GUEST_CHECKOUT, {"input": checkout_input(other[:-2] + "AA", email)})
    assert [e["code"] for e in forged["userErrors"]] == ["INVALID_TOKEN"]
    # Two guests want the last 4: the first order takes them, the second is refused.
    first_guest, second_guest = await guest_cart_with(shop, (item, 4)), await guest_cart_with(shop, (item, 4))
    assert (await shop.call(GUEST_CHECKOUT, {"input": checkout_input(first_guest, email)}))["userErrors"] == []
    short = await shop.call(GUEST_CHECKOUT, {"input": checkout_input(second_guest, unique_email("late"))})
    assert [e["code"] for e in short["userErrors"]] == ["OUT_OF_STOCK"]
    assert (await shop.call(GUEST_CART, {"token": second_guest}))["totalQuantity"] == 4
    # Every refusal changed nothing: the cart still holds its line.
    assert (await shop.call(GUEST_CART, {"token": other}))["totalQuantity"] == 1


async def test_reading_a_guest_order_costs_the_same_for_1_and_8_lines(shop: Shop, stack: ThreadedStack) -> None:
    async def placed(lines: int) -> str:
        items = [(await shop.product("2.00"), 1) for _ in range(lines)]
        cart_token = await guest_cart_with(shop, *items)
        payload = await shop.call(GUEST_CHECKOUT, {"input": checkout_input(cart_token, unique_email("g"))})
        assert payload["userErrors"] == []
        token: str = payload["lookupToken"]
        return token

    small, large = await placed(1), await placed(8)

    async def read(token: str) -> Any:
        return await shop.call(GUEST_ORDER, {"token": token})

    one, one_cost = await fewest_statements(stack, ("orders", "catalog"), lambda: read(small))
    eight, eight_cost = await fewest_statements(stack, ("orders", "catalog"), lambda: read(large))
    assert len(one["items"]) == 1 and len(eight["items"]) == 8
    assert all(i["product"]["name"] for i in eight["items"])
    assert 0 < one_cost["orders"] == eight_cost["orders"]
    assert one_cost["catalog"] == eight_cost["catalog"]


async def test_a_guest_pays_with_the_lookup_token(shop: Shop) -> None:
    item = await shop.product("15.00", stock=5)
    placed = await shop.call(
        GUEST_CHECKOUT, {"input": checkout_input(await guest_cart_with(shop, (item, 1)), unique_email("p"))}
    )
    token = placed["lookupToken"]

    async def payment() -> dict[str, Any] | None:
        found: dict[str, Any] | None = await shop.call(GUEST_PAYMENT, {"token": token})
        return found

    open_payment = await eventually(payment)
    assert open_payment["status"] in ("PENDING", "REQUIRES_ACTION") and open_payment["nextActionUrl"]
    forged = guest.issue("not-the-secret", uuid.UUID(placed["order"]["id"]))
    assert await shop.call(GUEST_PAYMENT, {"token": forged}) is None
    # Signed out, on the provider's page: the saga marks the order paid.
    url = str(open_payment["nextActionUrl"])
    form = {"secret": httpx.URL(url).params["secret"], "card_number": CARD_OK, "exp": "12/34", "cvc": "123"}
    answer = await shop.client.post(url.split("?", 1)[0], data=form | {"return_to": "/order-status"})
    assert answer.status_code in (200, 303), answer.text

    async def paid() -> dict[str, Any] | None:
        order: dict[str, Any] = await shop.call(GUEST_ORDER, {"token": token})
        return order if order["status"] == "PAID" else None

    assert (await eventually(paid))["number"] == placed["order"]["number"]
    assert await shop.call(GUEST_PAYMENT, {"token": token}) is None  # paid: its details stay private


async def test_a_guest_gets_the_confirmation_mail_with_the_orders_link(shop: Shop, stack: ThreadedStack) -> None:
    item = await shop.product("9.00", stock=5)
    email = unique_email("mailed")
    placed = await shop.call(GUEST_CHECKOUT, {"input": checkout_input(await guest_cart_with(shop, (item, 2)), email)})
    token, number = placed["lookupToken"], placed["order"]["number"]
    async with MailSink() as sink, worker(stack, sink):
        open_payment = await eventually(lambda: shop.call(GUEST_PAYMENT, {"token": token}))
        url = str(open_payment["nextActionUrl"])
        form = {"secret": httpx.URL(url).params["secret"], "card_number": CARD_OK, "exp": "12/34", "cvc": "123"}
        await shop.client.post(url.split("?", 1)[0], data=form)
        mail = await sink.wait_for(lambda m: email in m.recipients)
    assert number in mail.subject
    (link,) = [u for u in mail.links if "/order-status?token=" in u]
    # A fresh token (its life counts from the mail), opening the same order.
    assert link.startswith(f"{stack.settings.public_url}/order-status?token=")
    mailed = httpx.URL(link).params["token"]
    assert int(mailed.split(".")[2]) >= int(token.split(".")[2])
    assert (await shop.call(GUEST_ORDER, {"token": mailed}))["number"] == number
    assert "/account" not in mail.text  # no account: nothing to unsubscribe from there


DEMO_VARIANTS = '{ productSearch(query: "headphones", first: 3) { products { edges { node { variants { id } } } } } }'


async def test_the_cart_page_shows_each_lines_variant_picture(shop: Shop, ours: Storefront) -> None:
    found = await shop.call(DEMO_VARIANTS)
    variants = [e["node"]["variants"][-1]["id"] for e in found["products"]["edges"]]
    token: str = (await shop.call(CREATE_GUEST))["cartToken"]
    for variant_id in variants:
        added = await shop.call(
            ADD_VARIANT_LINE, {"input": {"variantId": variant_id, "quantity": 1, "cartToken": token}}
        )
        assert added["userErrors"] == [], added
    # The storefront's own operation, as the app sends it.
    cart = (await ours.data("GuestCartPage", {"token": token}))["guestCart"]
    assert [i["variant"]["id"] for i in cart["items"]] == variants
    for item in cart["items"]:
        image = item["variant"]["image"]
        assert image["url"].endswith("/160.webp") and "/media/" in image["url"]
        assert [part.rsplit(" ", 1)[1] for part in image["srcset"].split(", ")] == [
            "160w",
            "320w",
            "640w",
            "960w",
            "1280w",
        ]


async def test_the_admin_order_list_shows_a_guest_order_with_no_account(shop: Shop) -> None:
    """A guest's order has no account: ``user`` is null and ``guestEmail`` says who placed it. (It
    was a reference users could not resolve: every admin list holding a guest order was an error.)"""
    item = await shop.product("9.00", stock=3)
    email = unique_email("listed")
    placed = await shop.ok(GUEST_CHECKOUT, checkout_input(await guest_cart_with(shop, (item, 1)), email))
    listed = await shop.call(
        "{ allOrders(first: 50) { edges { node { id guestEmail user { id email } } } } }", token=shop.admin
    )
    (mine,) = [e["node"] for e in listed["edges"] if e["node"]["id"] == placed["order"]["id"]]
    assert mine == {"id": placed["order"]["id"], "guestEmail": email, "user": None}
