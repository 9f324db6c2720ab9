"""The router's entity cache over the real subgraphs, PostgreSQL and Redis.

- A shopper's order history repeated 100 times reads catalog's products table a
  handful of times (entities cached in Redis, public: catalog's hints).
- updateProduct through the router: the very next answer has the new price.
- A change the router never saw (made at the catalog subgraph directly) reaches
  it by catalog's change event, and so does a change made through another
  router replica sharing the Redis.
- Redis killed under a router: its requests still succeed (the cache is bypassed).
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import cast

import httpx
import pytest
from starlette.applications import Starlette

import router.http as http
from deploy.embedded import EmbeddedRedis
from deploy.stack import ThreadedStack, compose_router
from tests.e2e.storefront import Json, Shopper, Storefront, delete_orders, insert_orders

pytestmark = pytest.mark.asyncio(loop_scope="session")

HISTORY = "{ me { orders(first: 10) { edges { node { items { product { name price { amount } } } } } } } }"
UPDATE = "mutation($i: UpdateProductInput!) { updateProduct(input: $i) { product { id } userErrors { code message } } }"


@dataclass
class Shop:
    admin: Shopper
    shopper: Shopper
    products: list[Json]


async def _post(client: httpx.AsyncClient, url: str, query: str, variables: Json, token: str) -> Json:
    response = await client.post(
        url, json={"query": query, "variables": variables}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    payload: Json = response.json()
    assert not payload.get("errors"), payload
    return payload


def _prices(payload: Json) -> dict[str, str]:
    """Product name -> price shown in an order history answer."""
    return {
        item["product"]["name"]: item["product"]["price"]["amount"]
        for edge in payload["data"]["me"]["orders"]["edges"]
        for item in edge["node"]["items"]
    }


@pytest.fixture(scope="module")
async def shop(
    stack: ThreadedStack, ours: Storefront, demo_accounts: dict[str, tuple[str, str]]
) -> AsyncIterator[Shop]:
    admin = await ours.login(*demo_accounts["ADMIN"])
    category = (await ours.data("CategoryNav"))["categories"][0]
    tag = "Cache" + secrets.token_hex(4)
    products = []
    for i, price in enumerate(["10.00", "20.00", "30.00"]):
        variables = {
            "input": {
                "sku": f"EC-{tag}-{i}".upper(),
                "name": f"{tag} item {i}",
                "price": price,
                "stock": 1000,
                "categoryId": category["id"],
            }
        }
        products.append(
            (await ours.data("AdminCreateProduct", variables, admin.access_token))["createProduct"]["product"]
        )
    shopper = await ours.register("Cary Cached")
    database = stack.apps["orders"].state.runtime.db
    lines = [[p | {"quantity": 1} for p in products]]
    stack.run(insert_orders(database, shopper.id, 4, lines))
    yield Shop(admin, shopper, products)
    stack.run(delete_orders(database, shopper.id))


@contextmanager
def products_reads(stack: ThreadedStack) -> Iterator[Callable[[], int]]:
    """How many statements the catalog subgraph runs against its products table meanwhile."""
    count = 0

    def seen(statement: str) -> None:
        nonlocal count
        if "products" in statement and "outbox" not in statement:
            count += 1

    # Every statement of the subgraph's database, on either path (SQLAlchemy, direct asyncpg reads).
    observers = stack.apps["catalog"].state.runtime.db.statements.observers
    observers.append(seen)
    try:
        yield lambda: count
    finally:
        observers.remove(seen)


async def _set_price(client: httpx.AsyncClient, url: str, admin: Shopper, product: Json, price: str) -> None:
    payload = await _post(client, url, UPDATE, {"i": {"id": product["id"], "price": price}}, admin.access_token)
    assert payload["data"]["updateProduct"]["userErrors"] == [], payload


async def _until_price(client: httpx.AsyncClient, url: str, shopper: Shopper, name: str, price: str) -> float:
    """Seconds until ``url`` shows ``price`` for product ``name`` (asks every 5 ms)."""
    start = time.monotonic()
    while True:
        if _prices(await _post(client, url, HISTORY, {}, shopper.access_token))[name] == price:
            return time.monotonic() - start
        assert time.monotonic() - start < 10, f"{url} still shows the old price of {name} after 10 s"
        await asyncio.sleep(0.005)


async def test_repeated_history_reads_products_a_handful_of_times(
    stack: ThreadedStack, ours: Storefront, shop: Shop
) -> None:
    token = shop.shopper.access_token
    with products_reads(stack) as reads:
        answers = [await _post(ours.client, ours.url, HISTORY, {}, token) for _ in range(100)]
    assert all(a == answers[0] for a in answers)
    assert _prices(answers[0]) == {p["name"]: p["price"]["amount"] for p in shop.products}
    assert 1 <= reads() <= 5, reads()


async def test_update_through_the_router_shows_at_once(ours: Storefront, shop: Shop) -> None:
    product = shop.products[0]
    token = shop.shopper.access_token
    await _post(ours.client, ours.url, HISTORY, {}, token)  # cached
    await _set_price(ours.client, ours.url, shop.admin, product, "11.50")
    assert _prices(await _post(ours.client, ours.url, HISTORY, {}, token))[product["name"]] == "11.50"


async def test_a_change_the_router_did_not_make_arrives_by_event(
    stack: ThreadedStack, ours: Storefront, shop: Shop
) -> None:
    product = shop.products[1]
    await _post(ours.client, ours.url, HISTORY, {}, shop.shopper.access_token)  # cached
    # Straight at the catalog subgraph: the router sees no mutation, only catalog's change event.
    await _set_price(ours.client, stack.url("catalog"), shop.admin, product, "21.25")
    await _until_price(ours.client, ours.url, shop.shopper, product["name"], "21.25")


async def test_another_replica_sees_the_change_by_event(stack: ThreadedStack, ours: Storefront, shop: Shop) -> None:
    other = stack.run(stack.stack.serve_app("router-replica", _router_on(stack, stack.settings.redis_url))) + "/graphql"
    product = shop.products[2]
    for url in (ours.url, other):
        await _post(ours.client, url, HISTORY, {}, shop.shopper.access_token)  # cached by both
    await _set_price(ours.client, ours.url, shop.admin, product, "33.00")
    await _until_price(ours.client, other, shop.shopper, product["name"], "33.00")


async def test_redis_killed_requests_still_succeed(stack: ThreadedStack, ours: Storefront, shop: Shop) -> None:
    redis = EmbeddedRedis()
    redis.start()
    try:
        url = stack.run(stack.stack.serve_app("router-own-redis", _router_on(stack, redis.url))) + "/graphql"
        token = shop.shopper.access_token
        first = await _post(ours.client, url, HISTORY, {}, token)
        assert await _post(ours.client, url, HISTORY, {}, token) == first  # from the cache
    finally:
        redis.stop()
    for _ in range(3):
        assert await _post(ours.client, url, HISTORY, {}, token) == first


def _router_on(stack: ThreadedStack, redis_url: str) -> Starlette:
    """The session's router, on another Redis."""
    base = cast(Starlette, compose_router(stack.stack)).state.pipeline
    return http.create_app(base.schema.sdl, dataclasses.replace(base.settings, redis_url=redis_url))


async def test_get_responses_carry_the_most_restrictive_hint(ours: Storefront, shop: Shop) -> None:
    async def cache_control(query: str, token: str | None = None) -> str | None:
        headers = {"apollo-require-preflight": "true"} | ({"Authorization": f"Bearer {token}"} if token else {})
        response = await ours.client.get(ours.url, params={"query": query}, headers=headers)
        assert response.status_code == 200 and not response.json().get("errors"), response.text
        value: str | None = response.headers.get("cache-control")
        return value

    # catalog's products: public for 600 s, whoever asks
    listing = "{ products(first: 2) { edges { node { name price { amount } category { name } } } } }"
    assert await cache_control(listing) == "max-age=600, public"
    assert await cache_control(listing, shop.shopper.access_token) == "max-age=600, public"
    # Query.product depends on the caller (archived products): not cached
    one = '{ product(id: "' + shop.products[0]["id"] + '") { name } }'
    assert await cache_control(one, shop.shopper.access_token) == "no-store"
    # users and orders give no hints: the whole response may not be stored
    assert await cache_control(HISTORY, shop.shopper.access_token) == "no-store"
    # POST requests are not cacheable by a CDN: no header at all
    response = await ours.client.post(ours.url, json={"query": listing})
    assert "cache-control" not in response.headers
