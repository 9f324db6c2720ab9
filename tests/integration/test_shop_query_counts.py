"""Query counts of the lists that fan out in cart, orders and catalog: the SQL statements (and, for the
cart, the catalog requests) a query issues stay the same as the list grows.

Statements are read from each subgraph's own engine counter (``runtime.db.statements``).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from deploy.stack import ThreadedStack
from tests.integration.helpers import admin_token, data, register
from tests.integration.shop_helpers import (
    entities_query,
    fewest_statements,
    fill_cart,
    gather_limited,
    insert_orders,
    product,
)
from tests.support.graphql import gql


@pytest.fixture
async def admin(stack: ThreadedStack, demo_accounts: dict[str, tuple[str, str]]) -> str:
    return await admin_token(stack, demo_accounts)


MY_ORDERS_DEEP = """
    { orders(first: 100) { edges { node { id items { sku product { id } } user { id } } } } }
"""


async def test_my_orders_with_items_cost_the_same_for_2_and_100_orders(stack: ThreadedStack) -> None:
    few, many = await register(stack), await register(stack)
    await insert_orders(stack, [uuid.UUID(few.id)], 2, 4)
    await insert_orders(stack, [uuid.UUID(many.id)], 100, 4)

    async def my_orders(token: str) -> dict[str, Any]:
        return data(await gql(stack.url("orders"), MY_ORDERS_DEEP, None, token))

    small, small_cost = await fewest_statements(stack, ("orders",), lambda: my_orders(few.access_token))
    large, large_cost = await fewest_statements(stack, ("orders",), lambda: my_orders(many.access_token))
    assert len(small["orders"]["edges"]) == 2
    assert len(large["orders"]["edges"]) == 100
    assert all(len(e["node"]["items"]) == 4 for e in large["orders"]["edges"])
    assert all(e["node"]["user"] == {"id": many.id} for e in large["orders"]["edges"])
    assert 0 < large_cost["orders"] == small_cost["orders"]


USER_ORDERS = entities_query(
    "... on User { id orders(first: 10) { totalCount edges { node { number items { quantity product { id } } } } } }"
)


async def test_orders_of_many_users_through_entities_cost_the_same_for_2_and_100_users(
    stack: ThreadedStack, admin: str
) -> None:
    users = [uuid.uuid4() for _ in range(100)]
    await insert_orders(stack, users, 2, 3)

    async def orders_of(user_ids: list[uuid.UUID]) -> list[Any]:
        reps = [{"__typename": "User", "id": str(u)} for u in user_ids]
        entities: list[Any] = data(await gql(stack.url("orders"), USER_ORDERS, {"reps": reps}, admin))["_entities"]
        return entities

    small, small_cost = await fewest_statements(stack, ("orders",), lambda: orders_of(users[:2]))
    large, large_cost = await fewest_statements(stack, ("orders",), lambda: orders_of(users))
    assert [e["id"] for e in large] == [str(u) for u in users]
    assert all(e["orders"]["totalCount"] == 2 and len(e["orders"]["edges"]) == 2 for e in large + small)
    assert all(len(edge["node"]["items"]) == 3 for e in large for edge in e["orders"]["edges"])
    assert 0 < large_cost["orders"] == small_cost["orders"]


PRODUCT_ENTITIES = entities_query("... on Product { id sku name price { amount } stock active category { id name } }")


async def test_product_entities_cost_the_same_for_2_and_100_products(stack: ThreadedStack) -> None:
    listing = data(
        await gql(
            stack.url("catalog"), "{ products(first: 100, sortKey: NAME) { edges { node { id category { id } } } } }"
        )
    )
    nodes = [e["node"] for e in listing["products"]["edges"]]
    ids = [n["id"] for n in nodes]
    # Both sets join categories: the small one must not skip the category lookup the large one makes.
    few = [n["id"] for n in nodes if n["category"] is not None][:2]
    assert len(ids) == 100 and len(few) == 2

    async def products(some: list[str]) -> list[Any]:
        reps = [{"__typename": "Product", "id": i} for i in some]
        entities: list[Any] = data(await gql(stack.url("catalog"), PRODUCT_ENTITIES, {"reps": reps}))["_entities"]
        return entities

    _, small_cost = await fewest_statements(stack, ("catalog",), lambda: products(few))
    large, large_cost = await fewest_statements(stack, ("catalog",), lambda: products(ids))
    assert [p["id"] for p in large] == ids
    assert sum(p["category"] is not None for p in large) > 1  # the category join is exercised
    assert 0 < large_cost["catalog"] == small_cost["catalog"]


CART_QUERY = (
    "{ cart { items { quantity unitPrice { amount } lineTotal { amount } available product { id } } "
    "subtotal { amount } totalQuantity } }"
)


async def test_cart_costs_the_same_for_2_and_50_lines(stack: ThreadedStack, admin: str) -> None:
    few, many = await register(stack), await register(stack)
    products = await gather_limited([product(stack, admin, price="1.25", stock=10) for _ in range(50)])
    await fill_cart(stack, few.access_token, {p["id"]: 2 for p in products[:2]})
    await fill_cart(stack, many.access_token, {p["id"]: 2 for p in products})

    async def cart(token: str) -> dict[str, Any]:
        cart: dict[str, Any] = data(await gql(stack.url("cart"), CART_QUERY, None, token))["cart"]
        return cart

    # Catalog statements stand for the catalog requests too: one _entities request is one SQL batch.
    subgraphs = ("cart", "catalog")
    small, small_cost = await fewest_statements(stack, subgraphs, lambda: cart(few.access_token))
    large, large_cost = await fewest_statements(stack, subgraphs, lambda: cart(many.access_token))
    assert (len(small["items"]), small["subtotal"]) == (2, {"amount": "5.00"})
    assert (len(large["items"]), large["subtotal"], large["totalQuantity"]) == (50, {"amount": "125.00"}, 100)
    assert all(i["available"] and i["unitPrice"] == {"amount": "1.25"} for i in large["items"])
    assert large_cost == small_cost
    assert small_cost["cart"] > 0 and small_cost["catalog"] > 0
