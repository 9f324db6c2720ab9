"""Through the router: a cart becomes one order, and an idempotency key names one request.

Concurrent checkouts under different keys each used to read the same cart
before it was emptied (twenty tabs made twenty orders from one 3-unit cart);
a used key with a different cart silently returned the old order.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from deploy.stack import ThreadedStack
from tests.integration.helpers import CREATE_PRODUCT, LOGIN, REGISTER, STRONG_PASSWORD, unique_email, unique_sku
from tests.integration.shop_helpers import ADD_TO_CART, ADDRESS, CART, CHECKOUT, lines_of, orders_of
from tests.support.graphql import gql

STOCK = "query($id: ID!) { product(id: $id) { stock } }"


async def _data(router_url: str, query: str, variables: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=60) as client:
        result = await gql(router_url, query, variables, token, client=client)
    assert "errors" not in result, result
    payload: dict[str, Any] = result["data"]
    return payload


async def _admin(router_url: str, demo_accounts: dict[str, tuple[str, str]]) -> str:
    email, password = demo_accounts["ADMIN"]
    login = (await _data(router_url, LOGIN, {"input": {"email": email, "password": password}}))["login"]
    token: str = login["accessToken"]
    return token


async def _product(router_url: str, admin: str, stock: int) -> str:
    variables = {"input": {"sku": unique_sku("ONCE"), "name": "Once Kettle", "price": "12.50", "stock": stock}}
    created = (await _data(router_url, CREATE_PRODUCT, variables, admin))["createProduct"]
    assert created["userErrors"] == []
    product_id: str = created["product"]["id"]
    return product_id


async def _shopper(router_url: str) -> tuple[str, str]:
    variables = {"input": {"email": unique_email("once"), "password": STRONG_PASSWORD, "name": "Tabs"}}
    registered = (await _data(router_url, REGISTER, variables))["register"]
    return registered["user"]["id"], registered["accessToken"]


async def _add(router_url: str, token: str, product_id: str, quantity: int) -> None:
    payload = await _data(router_url, ADD_TO_CART, {"input": {"productId": product_id, "quantity": quantity}}, token)
    assert payload["addToCart"]["userErrors"] == []


async def _checkout(router_url: str, token: str, key: str, address: dict[str, Any] = ADDRESS) -> dict[str, Any]:
    variables = {"input": {"idempotencyKey": key, "shippingAddress": address}}
    payload: dict[str, Any] = (await _data(router_url, CHECKOUT, variables, token))["checkout"]
    return payload


async def _stock(router_url: str, admin: str, product_id: str) -> int:
    return int((await _data(router_url, STOCK, {"id": product_id}, admin))["product"]["stock"])


async def test_concurrent_checkouts_of_one_cart_make_one_order(
    router_url: str, stack: ThreadedStack, demo_accounts: dict[str, tuple[str, str]]
) -> None:
    admin = await _admin(router_url, demo_accounts)
    product_id = await _product(router_url, admin, stock=100)
    user_id, token = await _shopper(router_url)
    await _add(router_url, token, product_id, 3)

    results = await asyncio.gather(*(_checkout(router_url, token, f"tab-{n}-{uuid.uuid4()}") for n in range(20)))

    placed = [r for r in results if r["order"] is not None]
    refused = [r for r in results if r["order"] is None]
    assert len(placed) == 1 and placed[0]["userErrors"] == []
    assert len(refused) == 19
    assert all(len(r["userErrors"]) == 1 for r in refused)
    assert {r["userErrors"][0]["code"] for r in refused} <= {"CHECKOUT_IN_PROGRESS", "CART_EMPTY"}
    assert await _stock(router_url, admin, product_id) == 97  # reduced once
    assert await orders_of(stack, user_id) == 1
    assert lines_of((await _data(router_url, CART, {}, token))["cart"]) == {}


async def test_a_used_key_with_another_request_is_refused_and_changes_nothing(
    router_url: str, stack: ThreadedStack, demo_accounts: dict[str, tuple[str, str]]
) -> None:
    admin = await _admin(router_url, demo_accounts)
    product_id = await _product(router_url, admin, stock=50)
    user_id, token = await _shopper(router_url)
    await _add(router_url, token, product_id, 2)
    key = f"key-{uuid.uuid4()}"
    first = await _checkout(router_url, token, key)
    assert first["userErrors"] == [] and first["order"] is not None
    # The same key and request: the same order, nothing more.
    assert await _checkout(router_url, token, key) == first

    # Another shipping address under the used key.
    moved = await _checkout(router_url, token, key, {**ADDRESS, "city": "Manchester"})
    assert moved["order"] is None
    assert [(e["code"], e["field"]) for e in moved["userErrors"]] == [
        ("IDEMPOTENCY_KEY_REUSED", ["input", "shippingAddress"])
    ]
    # Another cart under the used key: refused, the new cart stays, no stock taken.
    await _add(router_url, token, product_id, 5)
    again = await _checkout(router_url, token, key)
    assert again["order"] is None
    assert [e["code"] for e in again["userErrors"]] == ["IDEMPOTENCY_KEY_REUSED"]
    assert lines_of((await _data(router_url, CART, {}, token))["cart"]) == {product_id: 5}
    assert await _stock(router_url, admin, product_id) == 48
    assert await orders_of(stack, user_id) == 1
    # A new key orders the new cart.
    second = await _checkout(router_url, token, f"key-{uuid.uuid4()}")
    assert second["userErrors"] == [] and second["order"]["id"] != first["order"]["id"]
    assert await _stock(router_url, admin, product_id) == 43
