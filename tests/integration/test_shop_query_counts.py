"""Query counts of the lists that fan out in cart, orders and catalog: the SQL statements (and, for the
cart, the catalog requests) a query issues stay the same as the list grows. The batched category
listings are also checked against the top-level listing they must agree with.

Statements are read from each subgraph's own engine counter (``runtime.db.statements``).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from deploy.stack import ThreadedStack
from tests.integration.helpers import admin_token, create_category, create_product, data, register
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
    assert small_cost["cart"] == 1  # the cart and its lines in one statement
    assert small_cost["catalog"] > 0


CATEGORY_PRODUCTS = "products(first: 3) { totalCount edges { node { name category { name } } } }"
CATEGORY_ENTITIES = entities_query(f"... on Category {{ id {CATEGORY_PRODUCTS} }}")
ALL_CATEGORIES = f"{{ categories {{ id {CATEGORY_PRODUCTS} }} }}"


async def test_category_products_cost_the_same_for_2_and_all_categories(stack: ThreadedStack) -> None:
    catalog = stack.url("catalog")
    listed = data(await gql(catalog, "{ categories { id products(first: 1) { totalCount } } }"))["categories"]
    stocked = [c["id"] for c in listed if c["products"]["totalCount"] >= 3]
    assert len(stocked) >= 12  # the seeded catalog, plus whatever other tests added

    async def entities(ids: list[str]) -> list[Any]:
        reps = [{"__typename": "Category", "id": i} for i in ids]
        found: list[Any] = data(await gql(catalog, CATEGORY_ENTITIES, {"reps": reps}))["_entities"]
        return found

    async def categories() -> list[Any]:
        found: list[Any] = data(await gql(catalog, ALL_CATEGORIES))["categories"]
        return found

    few, few_cost = await fewest_statements(stack, ("catalog",), lambda: entities(stocked[:2]))
    many, many_cost = await fewest_statements(stack, ("catalog",), lambda: entities(stocked))
    every, every_cost = await fewest_statements(stack, ("catalog",), categories)
    assert [c["id"] for c in many] == stocked and len(every) == len(listed)
    for category in few + many:
        assert category["products"]["totalCount"] >= 3 and len(category["products"]["edges"]) == 3
    names = {c["id"]: c["name"] for c in data(await gql(catalog, "{ categories { id name } }"))["categories"]}
    for category in many + every:
        assert {e["node"]["category"]["name"] for e in category["products"]["edges"]} <= {names[category["id"]]}
    # The categories (or their references), one page query, one count query; each product's category is
    # already loaded.
    assert few_cost == many_cost == every_cost == {"catalog": 3}


CONNECTION = "totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node { id } }"
ARGUMENTS = "first: 3, after: $after, search: $search, filter: $filter, sortKey: $sortKey, reverse: $reverse"
VARIABLES = "$after: String, $search: String, $filter: ProductFilter, $sortKey: ProductSortKey, $reverse: Boolean!"
BATCHED = f"query({VARIABLES}) {{ categories {{ id products({ARGUMENTS}) {{ {CONNECTION} }} }} }}"
ONE_CATEGORY = f"query({VARIABLES}) {{ products({ARGUMENTS}) {{ {CONNECTION} }} }}"


def second_pages(count: int) -> str:
    """``count`` categories' next pages in one request (``$id<i>``, ``$after<i>``): each its own cursor,
    so each its own batch group."""
    declared = VARIABLES.replace("$after: String", "") + "".join(
        f", $id{i}: ID!, $after{i}: String" for i in range(count)
    )
    fields = " ".join(
        f"c{i}: category(id: $id{i}) {{ id products({ARGUMENTS.replace('$after', f'$after{i}')}) {{ {CONNECTION} }} }}"
        for i in range(count)
    )
    return f"query({declared}) {{ {fields} }}"


@pytest.mark.parametrize(
    "listing",
    [
        {},
        {"sortKey": "PRICE"},
        {"sortKey": "NAME", "reverse": True},
        {"filter": {"inStock": True, "minPrice": "5.00"}},
        {"search": "tie"},
    ],
    ids=["newest", "price", "name-reversed", "filtered", "search"],
)
async def test_category_products_match_the_listing_filtered_by_category(
    stack: ThreadedStack, admin: str, listing: dict[str, Any]
) -> None:
    catalog = stack.url("catalog")
    # Beside the seeded ones: a category of price and name ties (keyset order by id), one with an
    # archived product, one empty.
    ties = await create_category(stack, admin, name="Ties")
    for _ in range(5):
        await create_product(stack, admin, name="Tie", price="7.00", category_id=ties["id"])
    await create_product(stack, admin, name="Tie", price="7.00", category_id=ties["id"], active=False)
    await create_category(stack, admin, name="Empty")
    variables: dict[str, Any] = {"after": None, "search": None, "filter": None, "sortKey": None, "reverse": False}
    variables |= listing

    async def of_category(category_id: str, after: str | None = None) -> dict[str, Any]:
        filter = {**(variables["filter"] or {}), "categoryId": category_id}
        wanted = {**variables, "filter": filter, "after": after}
        connection: dict[str, Any] = data(await gql(catalog, ONE_CATEGORY, wanted))["products"]
        return connection

    first = data(await gql(catalog, BATCHED, variables))["categories"]
    assert len(first) >= 14
    assert {c["id"]: c["products"]["totalCount"] for c in first}[ties["id"]] == 5  # a second page to follow
    for category in first:
        assert category["products"] == await of_category(category["id"]), category["id"]

    # Second pages: each category after its own end cursor (one group per cursor) ...
    cursors = {c["id"]: c["products"]["pageInfo"]["endCursor"] for c in first if c["products"]["edges"]}
    paged = {k: v for k, v in variables.items() if k != "after"}
    for i, (category_id, cursor) in enumerate(cursors.items()):
        paged |= {f"id{i}": category_id, f"after{i}": cursor}
    second = data(await gql(catalog, second_pages(len(cursors)), paged))
    assert len(second) == len(cursors)
    for category in second.values():
        expected = await of_category(category["id"], cursors[category["id"]])
        assert category["products"] == expected, category["id"]
        assert category["products"]["pageInfo"]["hasPreviousPage"]
    # ... and every category after one shared cursor (one group): a keyset position in each of them.
    shared = cursors[ties["id"]] if ties["id"] in cursors else next(iter(cursors.values()))
    after_shared = data(await gql(catalog, BATCHED, {**variables, "after": shared}))["categories"]
    for category in after_shared:
        assert category["products"] == await of_category(category["id"], shared), category["id"]
