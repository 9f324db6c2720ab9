"""Fan-out stays flat through the router over the real subgraphs: a shopper with 100 orders of 3 items
costs the same subgraph HTTP requests, and the same SQL statements in each subgraph, as one with 2.

Subgraph requests are counted in each subgraph (a counter wrapped around its app for these
tests only), by caller: the router, or another subgraph; SQL statements by an observer of each
subgraph's ``db.statements`` counter (both of its paths: SQLAlchemy and direct asyncpg reads),
blind to the orders event hub's background polling of its outbox.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from deploy.stack import ThreadedStack
from tests.e2e.storefront import OPERATIONS, Json, Shopper, Storefront, delete_orders, insert_orders

pytestmark = pytest.mark.asyncio(loop_scope="session")

DONE_WHEN = (
    "{ me { cart { items { product { name price { amount currencyCode } } } }"
    " orders(first: 5) { edges { node { number total { amount } items { product { name } } } } } } }"
)
HUNDRED = "{ me { orders(first: 100) { edges { node { items { product { name } } } } } } }"
SUBGRAPHS = ("users", "catalog", "cart", "orders")


def _caller(scope: Scope) -> str:
    """Who sent a subgraph request: "router", another subgraph's name, or "anonymous" (unverified:
    the subgraph itself verifies the token; this only sorts the counts)."""
    for key, value in scope["headers"]:
        if key == b"authorization":
            try:
                claims = jwt.decode(value.decode().removeprefix("Bearer "), options={"verify_signature": False})
            except jwt.PyJWTError:
                return "unknown"
            return str(claims.get("sub", "unknown")).removeprefix("service:")
    return "anonymous"


@dataclass
class Cost:
    requests: Counter[str] = field(default_factory=Counter)  # "<subgraph> (from <caller>)" -> HTTP requests
    statements: dict[str, int] = field(default_factory=dict)  # subgraph -> SQL statements run


class Meter:
    """Counts what one router request costs downstream."""

    def __init__(self, stack: ThreadedStack) -> None:
        self.stack = stack
        self.requests: Counter[str] = Counter()
        self.statements: Counter[str] = Counter()

    def _on_request(self, name: str, app: Any) -> ASGIApp:
        async def count(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and scope["method"] == "POST":
                self.requests[f"{name} (from {_caller(scope)})"] += 1
            await app(scope, receive, send)

        return count

    def _on_statement(self, name: str) -> Callable[..., None]:
        def count(statement: str) -> None:
            # The orders event hub polls its outbox in the background: not part of any request.
            if "outbox" not in statement:
                self.statements[name] += 1

        return count

    @contextmanager
    def installed(self) -> Iterator[Meter]:
        """Counters in every subgraph: one around its app's middleware stack, one on its engine."""
        apps = {name: self.stack.apps[name] for name in SUBGRAPHS}
        # The fan-out of the graph itself is measured, not what the entity cache spares
        # (tests/e2e/test_entity_cache.py counts that).
        executor = self.stack.stack.router_app.state.pipeline.schema.executor  # type: ignore[union-attr]
        cache, executor.cache = executor.cache, None
        served: dict[str, Any] = {}
        listeners = {name: self._on_statement(name) for name in SUBGRAPHS}
        for name, app in apps.items():
            if app.middleware_stack is None:
                app.middleware_stack = app.build_middleware_stack()
            served[name] = app.middleware_stack
            app.middleware_stack = self._on_request(name, served[name])
            app.state.runtime.db.statements.observers.append(listeners[name])
        try:
            yield self
        finally:
            executor.cache = cache
            for name, app in apps.items():
                app.middleware_stack = served[name]
                app.state.runtime.db.statements.observers.remove(listeners[name])

    @asynccontextmanager
    async def measure(self) -> AsyncIterator[Cost]:
        cost = Cost()
        self.requests.clear()
        self.statements.clear()
        yield cost
        cost.requests = Counter(self.requests)
        cost.statements = {name: self.statements[name] for name in SUBGRAPHS}


@dataclass
class Shoppers:
    small: Shopper  # 2 orders
    big: Shopper  # 100 orders
    products: list[Json]


@pytest.fixture(scope="module")
async def shoppers(stack: ThreadedStack, ours: Storefront) -> AsyncIterator[Shoppers]:
    page = (await ours.data("ProductList", {"first": 60, "sortKey": "NAME"}))["products"]["edges"]
    products = [e["node"] for e in page if e["node"]["inStock"]]
    assert len(products) >= 12, "the seeded catalog should have a dozen products in stock"
    # 3 lines an order, rotating over the catalog so the big history references many products.
    lines = [
        [products[(3 * i + n) % len(products)] | {"quantity": n + 1} for n in range(3)] for i in range(len(products))
    ]
    database = stack.apps["orders"].state.runtime.db
    made = []
    for count in (2, 100):
        shopper = await ours.register(f"Has {count} orders")
        for product in products[:3]:
            await ours.data("AddToCart", {"input": {"productId": product["id"], "quantity": 1}}, shopper.access_token)
        stack.run(insert_orders(database, shopper.id, count, lines))
        made.append(shopper)
    yield Shoppers(made[0], made[1], products)
    for shopper in made:  # 102 orders other tests' order lists need not page through
        stack.run(delete_orders(database, shopper.id))


@pytest.fixture(scope="module")
def meter(stack: ThreadedStack, router_url: str) -> Iterator[Meter]:
    with Meter(stack).installed() as installed:
        yield installed


async def _cost(
    meter: Meter, ours: Storefront, query: str, shopper: Shopper, variables: Json | None = None
) -> tuple[Cost, Json]:
    """What ``query`` costs downstream: the least of three runs after a warm-up (background work
    of a subgraph, should any slip past the filter, only ever adds statements)."""
    body = {"query": query, "variables": variables or {}}
    headers = {"Authorization": f"Bearer {shopper.access_token}"}
    (await ours.client.post(ours.url, json=body, headers=headers)).raise_for_status()
    costs = []
    for _ in range(3):
        async with meter.measure() as cost:
            response = await ours.client.post(ours.url, json=body, headers=headers)
        costs.append(cost)
    payload: Json = response.json()
    assert "errors" not in payload, payload
    least = Cost(
        requests=min((c.requests for c in costs), key=lambda r: sum(r.values())),
        statements={name: min(c.statements[name] for c in costs) for name in SUBGRAPHS},
    )
    return least, payload


async def test_done_when_query_costs_the_same_for_100_orders(
    shoppers: Shoppers, meter: Meter, ours: Storefront
) -> None:
    small, small_result = await _cost(meter, ours, DONE_WHEN, shoppers.small)
    big, big_result = await _cost(meter, ours, DONE_WHEN, shoppers.big)
    for result in (small_result, big_result):
        me = result["data"]["me"]
        assert [i["product"]["name"] for i in me["cart"]["items"]] == [p["name"] for p in shoppers.products[:3]]
    assert len(small_result["data"]["me"]["orders"]["edges"]) == 2
    assert len(big_result["data"]["me"]["orders"]["edges"]) == 5
    assert all(len(e["node"]["items"]) == 3 for e in big_result["data"]["me"]["orders"]["edges"])
    assert big.requests == small.requests
    assert big.statements == small.statements
    # users (me) -> cart and orders (User entities) -> catalog (Product entities).
    assert {key.split()[0] for key in big.requests} == set(SUBGRAPHS)
    from_router = sum(n for key, n in big.requests.items() if key.endswith("(from router)"))
    assert from_router <= 5, big.requests


async def test_hundred_orders_cost_the_same_as_two(shoppers: Shoppers, meter: Meter, ours: Storefront) -> None:
    small, small_result = await _cost(meter, ours, HUNDRED, shoppers.small)
    big, big_result = await _cost(meter, ours, HUNDRED, shoppers.big)
    edges = big_result["data"]["me"]["orders"]["edges"]
    assert len(edges) == 100 and all(len(e["node"]["items"]) == 3 for e in edges)
    assert all(item["product"]["name"] for e in edges for item in e["node"]["items"])
    assert len(small_result["data"]["me"]["orders"]["edges"]) == 2
    assert big.requests == small.requests
    assert big.statements == small.statements
    assert big.requests == Counter({"users (from router)": 1, "orders (from router)": 1, "catalog (from router)": 1}), (
        big.requests
    )


async def test_order_history_page_costs_the_same_for_100_orders(
    shoppers: Shoppers, meter: Meter, ours: Storefront
) -> None:
    """The storefront's own OrderHistory operation: a page of 100 with totals, counts and images."""
    query = OPERATIONS["OrderHistory"].body
    small, small_result = await _cost(meter, ours, query, shoppers.small, {"first": 100})
    big, big_result = await _cost(meter, ours, query, shoppers.big, {"first": 100})
    assert small_result["data"]["me"]["orders"]["totalCount"] == 2
    assert big_result["data"]["me"]["orders"]["totalCount"] == 100
    assert big.requests == small.requests
    assert big.statements == small.statements


@pytest.mark.parametrize("query", [DONE_WHEN, HUNDRED], ids=["done-when", "hundred-orders"])
async def test_no_more_subgraph_requests_than_apollo_gateway(
    stack: ThreadedStack, shoppers: Shoppers, meter: Meter, ours: Storefront, theirs: Storefront, query: str
) -> None:
    """The same plan shape as Apollo Gateway's: no extra fetches, the same SQL downstream."""
    mine, _ = await _cost(meter, ours, query, shoppers.big)
    # Apollo Gateway only forwards a token: give it the internal one our router would forward.
    internal = shoppers.big.internal_token(stack.settings.service_secret)
    forwarded = dataclasses.replace(shoppers.big, access_token=internal)
    apollo, _ = await _cost(meter, theirs, query, forwarded)
    assert sum(mine.requests.values()) <= sum(apollo.requests.values()), (mine, apollo)
    assert mine.statements == apollo.statements
