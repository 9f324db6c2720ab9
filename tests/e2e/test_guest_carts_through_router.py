"""Guest carts through the router: a signed-out shopper's cart (a signed token), merged at sign-in, attacked:
forged and expired tokens, two tabs on one token, a merge done twice, a token used after its merge."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from deploy.stack import ThreadedStack
from subgraphs.cart import guest
from tests.e2e.pricing_helpers import (
    ADD,
    ARCHIVE,
    CREATE_GUEST,
    DESTINATION,
    GUEST_CART,
    MERGE,
    Shop,
    amounts,
)
from tests.integration.helpers import LOGIN
from tests.support.graphql import gql


@pytest.fixture
async def shop(router_url: str, demo_accounts: dict[str, tuple[str, str]]) -> AsyncIterator[Shop]:
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=100)) as client:
        email, password = demo_accounts["ADMIN"]
        login = await gql(router_url, LOGIN, {"input": {"email": email, "password": password}}, client=client)
        yield Shop(router_url, client, login["data"]["login"]["accessToken"])


async def new_guest_cart(shop: Shop) -> str:
    created = await shop.call(CREATE_GUEST)
    assert created["userErrors"] == [] and created["cart"]["guest"] is True
    token: str = created["cartToken"]
    return token


async def test_a_signed_out_shopper_keeps_a_priced_cart_with_a_token(shop: Shop) -> None:
    token = await new_guest_cart(shop)
    item = await shop.product("12.00", stock=10)
    added = await shop.add(None, item, 2, cart_token=token)
    assert added["userErrors"] == [] and added["cart"]["totalQuantity"] == 2
    priced = await shop.call(DESTINATION, {"input": {"country": "GB", "cartToken": token}})
    assert amounts(priced["cart"]["cost"])[0] == 24
    cart = await shop.call(GUEST_CART, {"token": token})
    assert cart["totalQuantity"] == 2 and cart["destination"] == {"country": "GB", "region": None}
    # Without the token a signed-out caller has no cart to change.
    anonymous = await gql(shop.url, ADD, {"input": {"productId": item, "quantity": 1}}, client=shop.client)
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_forged_and_expired_tokens_open_nothing_and_change_nothing(shop: Shop, stack: ThreadedStack) -> None:
    token = await new_guest_cart(shop)
    item = await shop.product("5.00", stock=10)
    await shop.add(None, item, 1, cart_token=token)
    prefix, cart_id, expires, signature = token.split(".")
    other = (await shop.call(GUEST_CART, {"token": await new_guest_cart(shop)}))["id"]
    secret = stack.settings.service_secret
    forged = [
        f"{prefix}.{other}.{expires}.{signature}",  # another cart, the same signature
        f"{prefix}.{cart_id}.{int(expires) + 10**6}.{signature}",  # a longer life
        f"{prefix}.{cart_id}.{expires}.{signature[:-2]}AA",
        guest.issue("not-the-secret", uuid.UUID(cart_id)),
        guest.issue(secret, uuid.UUID(cart_id), now=time.time() - guest.TTL_SECONDS - 1),  # expired
        "x" * 5000,
        "",
    ]
    for bad in forged:
        refused = await shop.add(None, item, 5, cart_token=bad)
        assert [e["code"] for e in refused["userErrors"]] == ["INVALID_TOKEN"], (bad, refused)
        assert await shop.call(GUEST_CART, {"token": bad}) is None
    assert (await shop.call(GUEST_CART, {"token": token}))["totalQuantity"] == 1


async def test_two_tabs_on_one_token_share_one_cart(shop: Shop) -> None:
    token = await new_guest_cart(shop)
    item = await shop.product("1.00", stock=99)
    results = await asyncio.gather(*(shop.add(None, item, 1, cart_token=token) for _ in range(20)))
    assert all(r["userErrors"] == [] for r in results)
    assert (await shop.call(GUEST_CART, {"token": token}))["totalQuantity"] == 20


async def test_sign_in_merges_the_guest_cart_capped_by_stock_once(shop: Shop) -> None:
    scarce, plenty, gone = await shop.product("3.00", stock=5), await shop.product("4.00"), await shop.product("2.00")
    _, account, email = await shop.shopper()
    await shop.add(account, scarce, 3)
    token = await new_guest_cart(shop)
    for item, quantity in ((scarce, 4), (plenty, 2), (gone, 1)):
        assert (await shop.add(None, item, quantity, cart_token=token))["userErrors"] == []
    await shop.call(DESTINATION, {"input": {"country": "FR", "cartToken": token}})
    await shop.ok(ARCHIVE, {"id": gone}, shop.admin)

    signed_in = await shop.sign_in(email)  # a new session of the same account
    merged = await shop.call(MERGE, {"input": {"cartToken": token}}, signed_in)
    assert merged["userErrors"] == []
    lines = {i["product"]["id"]: i["quantity"] for i in merged["cart"]["items"]}
    assert lines == {scarce: 5, plenty: 2}
    notices = {n["code"]: n for n in merged["notices"]}
    assert notices["QUANTITY_CAPPED"] == {"code": "QUANTITY_CAPPED", "productId": scarce, "requested": 7, "kept": 5}
    assert notices["PRODUCT_UNAVAILABLE"]["productId"] == gone
    assert merged["cart"]["destination"] == {"country": "FR", "region": None}  # the guest's choice carried over

    again = await shop.call(MERGE, {"input": {"cartToken": token}}, signed_in)
    assert [n["code"] for n in again["notices"]] == ["ALREADY_MERGED"]
    assert {i["product"]["id"]: i["quantity"] for i in again["cart"]["items"]} == lines

    # The token is dead: a stolen copy can neither read nor change the cart, nor merge it into another account.
    _, thief, _ = await shop.shopper()
    stolen = await shop.call(MERGE, {"input": {"cartToken": token}}, thief)
    assert [e["code"] for e in stolen["userErrors"]] == ["INVALID_TOKEN"]
    assert (await shop.cart(thief))["items"] == []
    assert [e["code"] for e in (await shop.add(None, plenty, 1, cart_token=token))["userErrors"]] == ["INVALID_TOKEN"]
    assert await shop.call(GUEST_CART, {"token": token}) is None
    assert {i["product"]["id"]: i["quantity"] for i in (await shop.cart(account))["items"]} == lines


async def test_merging_needs_a_signed_in_shopper(shop: Shop) -> None:
    token = await new_guest_cart(shop)
    result = await gql(shop.url, MERGE, {"input": {"cartToken": token}}, client=shop.client)
    assert result["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
