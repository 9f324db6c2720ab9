"""Federation contract of each subgraph: ``_service { sdl }`` and ``_entities``.

Parametrised over subgraphs: add a subgraph's SDL expectations to ``SDL_KEYS`` and
its entity cases to ``ENTITY_CASES`` (a case builds its own data through the graph
and says which representations resolve to what).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from deploy.stack import ThreadedStack
from tests.integration.helpers import (
    Account,
    admin_token,
    create_category,
    create_product,
    data,
    internal_token,
    register,
)
from tests.integration.shop_helpers import fill_cart, get_cart, place_order
from tests.support.graphql import gql

# subgraph -> (type, the @key directives it must carry, in order)
SDL_KEYS: dict[str, list[tuple[str, list[str]]]] = {
    "users": [("User", ['@key(fields: "id")'])],
    "catalog": [
        ("Product", ['@key(fields: "id")', '@key(fields: "sku")']),
        ("ProductVariant", ['@key(fields: "id")', '@key(fields: "sku")']),
        ("Category", ['@key(fields: "id")']),
    ],
    "cart": [
        ("Cart", ['@key(fields: "id")']),
        ("Product", ['@key(fields: "id", resolvable: false)']),
        ("ProductVariant", ['@key(fields: "id", resolvable: false)']),
        ("User", ['@key(fields: "id")']),
    ],
    "orders": [
        ("Order", ['@key(fields: "id")']),
        ("Product", ['@key(fields: "id", resolvable: false)']),
        ("ProductVariant", ['@key(fields: "id", resolvable: false)']),
        ("User", ['@key(fields: "id")']),
    ],
}


@pytest.mark.parametrize("subgraph", sorted(SDL_KEYS))
async def test_service_sdl_declares_federation_2_and_keys(
    stack: ThreadedStack, client: httpx.AsyncClient, subgraph: str
) -> None:
    sdl = data(await gql(stack.url(subgraph), "{ _service { sdl } }", client=client))["_service"]["sdl"]
    assert re.search(r'@link\(url: "https://specs\.apollo\.dev/federation/v2\.\d+"', sdl), sdl[:300]
    for type_name, keys in SDL_KEYS[subgraph]:
        match = re.search(rf"^type {type_name} (@[^{{]*)\{{", sdl, re.MULTILINE)
        assert match, f"type {type_name} missing from the {subgraph} SDL"
        assert re.findall(r"@key\([^)]*\)", match.group(1)) == keys
    # Every entity type, and only those, can be resolved through _entities.
    union = re.search(r"^union _Entity = (.*)$", sdl, re.MULTILINE)
    assert union, "no _Entity union"
    assert sorted(union.group(1).split(" | ")) == sorted(t for t, _ in SDL_KEYS[subgraph])


async def test_catalog_sdl_hides_internal_stock_operations(stack: ThreadedStack, client: httpx.AsyncClient) -> None:
    sdl = data(await gql(stack.url("catalog"), "{ _service { sdl } }", client=client))["_service"]["sdl"]
    for field in ("reserveStock", "releaseStock"):
        line = next(line for line in sdl.splitlines() if line.strip().startswith(field + "("))
        assert line.rstrip().endswith("@inaccessible"), line


# --- _entities -------------------------------------------------------------------------


@dataclass(frozen=True)
class EntityCase:
    """Representations to resolve, the token to send, and what each must resolve to (None = null)."""

    token: str | None
    representations: list[dict[str, Any]]
    expected: list[dict[str, Any] | None]


CaseBuilder = Callable[[ThreadedStack, dict[str, tuple[str, str]]], Awaitable[EntityCase]]
MISSING_UUID = "00000000-0000-4000-8000-000000000000"


_pairs: dict[str, tuple[Account, Account]] = {}


async def _two_users(stack: ThreadedStack) -> tuple[Account, Account]:
    """Two accounts registered for this module's user cases, which only read them (registering costs a hash)."""
    if stack.url("users") not in _pairs:
        _pairs[stack.url("users")] = (
            await register(stack, name="First Entity"),
            await register(stack, name="Second Entity"),
        )
    return _pairs[stack.url("users")]


async def _users(stack: ThreadedStack, demo_accounts: dict[str, tuple[str, str]]) -> EntityCase:
    first, second = await _two_users(stack)
    reps = [
        {"__typename": "User", "id": second.id},
        {"__typename": "User", "id": MISSING_UUID},
        {"__typename": "User", "id": "not-a-uuid"},
        {"__typename": "User", "id": first.id},
        {"__typename": "User", "id": ""},
        {"__typename": "User", "id": second.id},
    ]
    user = {"id": second.id, "email": second.email, "name": "Second Entity"}
    other = {"id": first.id, "email": first.email, "name": "First Entity"}
    # Another subgraph (here: orders, acting on its own) resolves any user.
    return EntityCase(internal_token(stack, "orders"), reps, [user, None, None, other, None, user])


async def _users_as_customer(stack: ThreadedStack, demo_accounts: dict[str, tuple[str, str]]) -> EntityCase:
    me, other = await _two_users(stack)
    reps = [{"__typename": "User", "id": other.id}, {"__typename": "User", "id": me.id}]
    # A customer calling the subgraph directly sees only themself.
    return EntityCase(me.access_token, reps, [None, {"id": me.id, "email": me.email, "name": "First Entity"}])


async def _users_anonymous(stack: ThreadedStack, demo_accounts: dict[str, tuple[str, str]]) -> EntityCase:
    first, second = await _two_users(stack)
    reps = [{"__typename": "User", "id": first.id}, {"__typename": "User", "id": second.id}]
    return EntityCase(None, reps, [None, None])


def _product(p: dict[str, Any]) -> dict[str, Any]:
    return {"id": p["id"], "sku": p["sku"], "name": p["name"], "stock": p["stock"]}


async def _products(stack: ThreadedStack, demo_accounts: dict[str, tuple[str, str]]) -> EntityCase:
    admin = await admin_token(stack, demo_accounts)
    a = await create_product(stack, admin, stock=3)
    b = await create_product(stack, admin, stock=0)
    archived = await create_product(stack, admin, active=False)
    reps = [
        {"__typename": "Product", "sku": b["sku"]},
        {"__typename": "Product", "id": a["id"]},
        {"__typename": "Product", "id": MISSING_UUID},
        {"__typename": "Product", "sku": "NO-SUCH-SKU-" + uuid.uuid4().hex[:8].upper()},
        {"__typename": "Product", "id": "12345"},
        {"__typename": "Product", "id": b["id"]},
        {"__typename": "Product", "sku": a["sku"].lower()},
        # References come from carts and order history: archived products still resolve.
        {"__typename": "Product", "id": archived["id"]},
        {"__typename": "Product", "sku": ""},
    ]
    expected = [_product(b), _product(a), None, None, None, _product(b), _product(a), _product(archived), None]
    return EntityCase(None, reps, expected)


async def _variants(stack: ThreadedStack, demo_accounts: dict[str, tuple[str, str]]) -> EntityCase:
    """Variants by id and by SKU (any case); a product's default variant shares its id and SKU."""
    admin = await admin_token(stack, demo_accounts)
    single = await create_product(stack, admin, stock=4)
    archived = await create_product(stack, admin, active=False, stock=1)

    def variant(p: dict[str, Any]) -> dict[str, Any]:
        return {"id": p["id"], "sku": p["sku"], "stock": p["stock"], "product": {"id": p["id"]}}

    reps = [
        {"__typename": "ProductVariant", "sku": single["sku"].lower()},
        {"__typename": "ProductVariant", "id": MISSING_UUID},
        {"__typename": "ProductVariant", "id": single["id"]},
        {"__typename": "ProductVariant", "id": "garbage"},
        {"__typename": "ProductVariant", "id": archived["id"]},
        {"__typename": "ProductVariant", "sku": "NO-SUCH-" + uuid.uuid4().hex[:8].upper()},
    ]
    expected = [variant(single), None, variant(single), None, variant(archived), None]
    return EntityCase(None, reps, expected)


async def _categories(stack: ThreadedStack, demo_accounts: dict[str, tuple[str, str]]) -> EntityCase:
    admin = await admin_token(stack, demo_accounts)
    one, two = await create_category(stack, admin, name="One"), await create_category(stack, admin, name="Two")
    reps = [
        {"__typename": "Category", "id": two["id"]},
        {"__typename": "Category", "id": "nope"},
        {"__typename": "Category", "id": one["id"]},
        {"__typename": "Category", "id": MISSING_UUID},
    ]
    expected = [
        {"id": two["id"], "slug": two["slug"], "name": "Two"},
        None,
        {"id": one["id"], "slug": one["slug"], "name": "One"},
        None,
    ]
    return EntityCase(None, reps, expected)


async def _mixed_types(stack: ThreadedStack, demo_accounts: dict[str, tuple[str, str]]) -> EntityCase:
    admin = await admin_token(stack, demo_accounts)
    category = await create_category(stack, admin, name="Mixed")
    product = await create_product(stack, admin, category_id=category["id"])
    reps = [
        {"__typename": "Category", "id": category["id"]},
        {"__typename": "Product", "sku": product["sku"]},
        {"__typename": "Category", "id": product["id"]},  # a product id is no category id
        {"__typename": "Product", "id": category["id"]},
    ]
    expected = [
        {"id": category["id"], "slug": category["slug"], "name": "Mixed"},
        _product(product),
        None,
        None,
    ]
    return EntityCase(None, reps, expected)


async def _carts(stack: ThreadedStack, demo_accounts: dict[str, tuple[str, str]]) -> EntityCase:
    admin = await admin_token(stack, demo_accounts)
    me, other = await register(stack), await register(stack)
    item = await create_product(stack, admin, stock=5)
    mine = (await fill_cart(stack, me.access_token, {item["id"]: 2}))["id"]
    theirs = (await get_cart(stack, other.access_token))["id"]
    reps = [
        {"__typename": "Cart", "id": mine},
        {"__typename": "User", "id": other.id},
        {"__typename": "Cart", "id": MISSING_UUID},
        {"__typename": "Cart", "id": theirs},
        {"__typename": "User", "id": me.id},
        {"__typename": "Cart", "id": "not-a-uuid"},
    ]
    my_cart = {"id": mine, "totalQuantity": 2}
    # A customer sees their own cart only; someone else's is null, like an unknown one.
    expected = [my_cart, {"id": other.id, "cart": None}, None, None, {"id": me.id, "cart": my_cart}, None]
    return EntityCase(me.access_token, reps, expected)


async def _orders(stack: ThreadedStack, demo_accounts: dict[str, tuple[str, str]]) -> EntityCase:
    admin = await admin_token(stack, demo_accounts)
    me, other = await register(stack), await register(stack)
    item = await create_product(stack, admin, stock=5)
    mine = await place_order(stack, me.access_token, {item["id"]: 1})
    theirs = await place_order(stack, other.access_token, {item["id"]: 1})
    reps = [
        {"__typename": "Order", "id": theirs["id"]},
        {"__typename": "Order", "id": mine["id"]},
        {"__typename": "User", "id": other.id},
        {"__typename": "Order", "id": MISSING_UUID},
        {"__typename": "User", "id": me.id},
        {"__typename": "Order", "id": "12"},
    ]
    my_order = {"id": mine["id"], "number": mine["number"], "status": "PENDING_PAYMENT"}
    expected = [
        None,
        my_order,
        {"id": other.id, "orders": None},
        None,
        {"id": me.id, "orders": {"totalCount": 1}},
        None,
    ]
    return EntityCase(me.access_token, reps, expected)


SELECTIONS = {
    "users": "... on User { id email name }",
    "catalog": "... on Product { id sku name stock } ... on Category { id slug name }"
    " ... on ProductVariant { id sku stock product { id } }",
    "cart": "... on Cart { id totalQuantity } ... on User { id cart { id totalQuantity } }",
    "orders": "... on Order { id number status } ... on User { id orders { totalCount } }",
}

# (subgraph, case id, builder)
ENTITY_CASES: list[tuple[str, str, CaseBuilder]] = [
    ("users", "User-as-service", _users),
    ("users", "User-as-customer", _users_as_customer),
    ("users", "User-anonymous", _users_anonymous),
    ("catalog", "Product-id-and-sku", _products),
    ("catalog", "Category", _categories),
    ("catalog", "ProductVariant-id-and-sku", _variants),
    ("catalog", "Product-and-Category", _mixed_types),
    ("cart", "Cart-and-User-as-customer", _carts),
    ("orders", "Order-and-User-as-customer", _orders),
]


@pytest.mark.parametrize(
    ("subgraph", "build"), [(s, b) for s, _, b in ENTITY_CASES], ids=[f"{s}-{i}" for s, i, _ in ENTITY_CASES]
)
async def test_entities_resolve_in_order_with_null_for_unknown(
    stack: ThreadedStack,
    demo_accounts: dict[str, tuple[str, str]],
    client: httpx.AsyncClient,
    subgraph: str,
    build: CaseBuilder,
) -> None:
    case = await build(stack, demo_accounts)
    query = f"query($reps: [_Any!]!) {{ _entities(representations: $reps) {{ {SELECTIONS[subgraph]} }} }}"
    result = await gql(stack.url(subgraph), query, {"reps": case.representations}, case.token, client=client)
    assert data(result)["_entities"] == case.expected


@pytest.mark.parametrize("subgraph", sorted(SELECTIONS))
async def test_entities_with_no_representations(stack: ThreadedStack, client: httpx.AsyncClient, subgraph: str) -> None:
    query = f"query($reps: [_Any!]!) {{ _entities(representations: $reps) {{ {SELECTIONS[subgraph]} }} }}"
    result = await gql(stack.url(subgraph), query, {"reps": []}, client=client)
    assert data(result) == {"_entities": []}
