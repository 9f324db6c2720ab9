"""The catalog subgraph end to end: products, categories, search, filters, sorts, pagination, stock.

Every test creates its own products (unique SKUs, made-up search words, its own
category when it lists), so it never depends on what other tests or the seed did.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest

from deploy.stack import ThreadedStack
from subgraphs.catalog.seed import CATEGORIES
from subgraphs.kit.auth import mint_internal_token
from tests.integration.helpers import (
    CREATE_CATEGORY,
    CREATE_PRODUCT,
    PRODUCT_BY_ID,
    PRODUCT_BY_SKU,
    PRODUCT_FIELDS,
    Account,
    admin_token,
    create_category,
    create_product,
    data,
    error_codes,
    internal_token,
    register,
    stock_of,
    unique_sku,
    unique_word,
    user_error_codes,
)
from tests.integration.shop_helpers import fewest_statements
from tests.support.graphql import gql

PAYLOAD = f"product {{ {PRODUCT_FIELDS} }} userErrors {{ code field message }}"
UPDATE_PRODUCT = f"mutation($input: UpdateProductInput!) {{ updateProduct(input: $input) {{ {PAYLOAD} }} }}"
ARCHIVE_PRODUCT = f"mutation($input: ArchiveProductInput!) {{ archiveProduct(input: $input) {{ {PAYLOAD} }} }}"
ADJUST_STOCK = f"mutation($input: AdjustStockInput!) {{ adjustStock(input: $input) {{ {PAYLOAD} }} }}"
RESERVE_STOCK = """
    mutation($input: ReserveStockInput!) {
        reserveStock(input: $input) {
            lines { productId quantity sku name unitPrice { amount currencyCode } }
            userErrors { code field message }
        }
    }
"""
RELEASE_STOCK = "mutation($input: ReleaseStockInput!) { releaseStock(input: $input) { released } }"
PRODUCTS = """
    query($first: Int, $after: String, $search: String, $filter: ProductFilter,
          $sortKey: ProductSortKey, $reverse: Boolean! = false) {
        products(first: $first, after: $after, search: $search, filter: $filter,
                 sortKey: $sortKey, reverse: $reverse) {
            totalCount
            pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
            edges { cursor node { id sku name price { amount currencyCode } stock inStock active createdAt
                                  category { id } } }
        }
    }
"""


@pytest.fixture
async def admin(stack: ThreadedStack, demo_accounts: dict[str, tuple[str, str]]) -> str:
    return await admin_token(stack, demo_accounts)


_customers: dict[str, Account] = {}


@pytest.fixture
async def customer(stack: ThreadedStack) -> str:
    """A customer's access token (one account for the module: it is only ever refused or reads)."""
    if stack.url("users") not in _customers:
        _customers[stack.url("users")] = await register(stack)
    return _customers[stack.url("users")].access_token


async def products(
    stack: ThreadedStack, client: httpx.AsyncClient, token: str | None = None, **variables: Any
) -> dict[str, Any]:
    result: dict[str, Any] = data(await gql(stack.url("catalog"), PRODUCTS, variables, token, client=client))[
        "products"
    ]
    return result


async def walk(
    stack: ThreadedStack, client: httpx.AsyncClient, page_size: int, token: str | None = None, **variables: Any
) -> tuple[list[dict[str, Any]], int]:
    """Follow ``endCursor`` to the last page, checking every page's shape; return all nodes and totalCount."""
    nodes: list[dict[str, Any]] = []
    totals: set[int] = set()
    after: str | None = None
    for _ in range(1000):
        page = await products(stack, client, token, first=page_size, after=after, **variables)
        edges, info = page["edges"], page["pageInfo"]
        totals.add(page["totalCount"])
        assert info["hasPreviousPage"] is (after is not None)
        if edges:
            assert info["startCursor"] == edges[0]["cursor"] and info["endCursor"] == edges[-1]["cursor"]
        else:
            assert info["startCursor"] is None and info["endCursor"] is None
        nodes += [e["node"] for e in edges]
        if not info["hasNextPage"]:
            break
        assert len(edges) == page_size  # only the last page is short
        after = info["endCursor"]
    assert len(totals) == 1, totals
    return nodes, totals.pop()


def ids(nodes: list[dict[str, Any]]) -> list[str]:
    return [n["id"] for n in nodes]


def amount(node: dict[str, Any]) -> Decimal:
    return Decimal(node["price"]["amount"])


# --- creating and reading products -------------------------------------------------------


async def test_create_product_and_read_it_by_id_and_sku(
    stack: ThreadedStack, client: httpx.AsyncClient, admin: str
) -> None:
    category = await create_category(stack, admin, name="Teapots")
    sku = unique_sku("tea").lower()
    product = await create_product(
        stack,
        admin,
        sku=f"  {sku} ",
        name="  Cast Iron Teapot ",
        description="Keeps tea hot.",
        price="24.50",
        stock=7,
        category_id=category["id"],
    )
    assert product["sku"] == sku.upper()
    assert product["name"] == "Cast Iron Teapot"
    assert product["price"] == {"amount": "24.50", "currencyCode": "USD"}
    assert (product["stock"], product["inStock"], product["active"]) == (7, True, True)
    assert product["category"] == {"id": category["id"], "slug": category["slug"]}
    # Anyone can read it, by id or by SKU (any case).
    for query, variables in ((PRODUCT_BY_ID, {"id": product["id"]}), (PRODUCT_BY_SKU, {"sku": sku})):
        found = data(await gql(stack.url("catalog"), query, variables, client=client))["product"]
        assert found == product


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"id": "00000000-0000-4000-8000-000000000000"}, None),
        ({"id": "not-a-uuid"}, None),
        ({"sku": "NO-SUCH-SKU-AT-ALL"}, None),
        ({"sku": ""}, None),
    ],
)
async def test_unknown_products_are_null(
    stack: ThreadedStack, client: httpx.AsyncClient, variables: dict[str, str], expected: None
) -> None:
    query = "query($id: ID, $sku: String) { product(id: $id, sku: $sku) { id } }"
    assert data(await gql(stack.url("catalog"), query, variables, client=client)) == {"product": expected}


@pytest.mark.parametrize("variables", [{"id": "x", "sku": "Y"}, {}], ids=["both", "neither"])
async def test_product_needs_exactly_one_of_id_and_sku(
    stack: ThreadedStack, client: httpx.AsyncClient, variables: dict[str, str]
) -> None:
    query = "query($id: ID, $sku: String) { product(id: $id, sku: $sku) { id } }"
    response = await client.post(stack.url("catalog"), json={"query": query, "variables": variables})
    assert response.status_code == 200
    body = response.json()
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
    assert body["data"] == {"product": None}


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"sku": "bad sku!"}, "INVALID", "sku"),
        ({"sku": ""}, "INVALID", "sku"),
        ({"sku": "-LEADING-DASH"}, "INVALID", "sku"),
        ({"sku": "S" * 65}, "INVALID", "sku"),
        ({"name": "  "}, "REQUIRED", "name"),
        ({"name": "n" * 201}, "TOO_LONG", "name"),
        ({"description": "d" * 5001}, "TOO_LONG", "description"),
        ({"price": "9.999"}, "INVALID_PRICE", "price"),
        ({"price": "-1.00"}, "INVALID_PRICE", "price"),
        # "NaN", "Infinity", "1_000"… are not decimals at all: refused by the Decimal scalar
        # (BAD_USER_INPUT), see test_money_and_status_inputs.py.
        ({"price": "10000000000.01"}, "INVALID_PRICE", "price"),
        ({"stock": -1}, "INVALID_QUANTITY", "stock"),
        ({"stock": 1_000_001}, "INVALID_QUANTITY", "stock"),
        ({"imageUrl": "javascript:alert(1)"}, "INVALID", "imageUrl"),
        ({"imageUrl": "ftp://example.com/a.png"}, "INVALID", "imageUrl"),
        ({"categoryId": "00000000-0000-4000-8000-000000000000"}, "NOT_FOUND", "categoryId"),
        ({"categoryId": "not-a-uuid"}, "NOT_FOUND", "categoryId"),
    ],
)
async def test_create_product_validation(
    stack: ThreadedStack, client: httpx.AsyncClient, admin: str, changes: dict[str, Any], code: str, field: str
) -> None:
    sku = unique_sku()
    product_input = {"sku": sku, "name": "Valid Name", "price": "5.00", "stock": 1, **changes}
    result = await gql(stack.url("catalog"), CREATE_PRODUCT, {"input": product_input}, admin, client=client)
    payload = data(result)["createProduct"]
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [(code, ["input", field])]
    assert payload["product"] is None
    # Nothing was created.
    assert data(await gql(stack.url("catalog"), PRODUCT_BY_SKU, {"sku": sku}, admin, client=client))["product"] is None


async def test_create_product_with_a_non_decimal_price_is_a_graphql_error(
    stack: ThreadedStack, client: httpx.AsyncClient, admin: str
) -> None:
    product_input = {"sku": unique_sku(), "name": "X", "price": "ten dollars", "stock": 1}
    response = await client.post(
        stack.url("catalog"),
        json={"query": CREATE_PRODUCT, "variables": {"input": product_input}},
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    assert ["price" in e["message"] and "INTERNAL" not in json.dumps(e) for e in body["errors"]] == [True]


async def test_skus_are_unique_whatever_their_case(stack: ThreadedStack, client: httpx.AsyncClient, admin: str) -> None:
    first = await create_product(stack, admin)
    other = await create_product(stack, admin)
    product_input = {"sku": first["sku"].lower(), "name": "Copy", "price": "1.00", "stock": 1}
    result = await gql(stack.url("catalog"), CREATE_PRODUCT, {"input": product_input}, admin, client=client)
    assert user_error_codes(data(result)["createProduct"]) == ["SKU_TAKEN"]
    # An update cannot take it either.
    result = await gql(
        stack.url("catalog"), UPDATE_PRODUCT, {"input": {"id": other["id"], "sku": first["sku"]}}, admin, client=client
    )
    assert user_error_codes(data(result)["updateProduct"]) == ["SKU_TAKEN"]
    assert data(await gql(stack.url("catalog"), PRODUCT_BY_ID, {"id": other["id"]}, client=client))["product"] == other


# --- admin mutations ---------------------------------------------------------------------


async def test_update_product_changes_only_the_fields_sent(
    stack: ThreadedStack, client: httpx.AsyncClient, admin: str
) -> None:
    category = await create_category(stack, admin)
    product = await create_product(stack, admin, description="Old words", price="3.00", stock=4)
    changes = {
        "id": product["id"],
        "price": "3.5",
        "categoryId": category["id"],
        "imageUrl": "https://img.example/a.png",
    }
    result = await gql(stack.url("catalog"), UPDATE_PRODUCT, {"input": changes}, admin, client=client)
    updated = data(result)["updateProduct"]
    assert updated["userErrors"] == []
    after = updated["product"]
    assert after["price"] == {"amount": "3.50", "currencyCode": "USD"}
    assert after["category"]["id"] == category["id"]
    assert after["imageUrl"] == "https://img.example/a.png"
    assert {k: after[k] for k in ("sku", "name", "description", "stock", "active")} == {
        k: product[k] for k in ("sku", "name", "description", "stock", "active")
    }
    # Null clears optional fields; required ones cannot be nulled.
    cleared = await gql(
        stack.url("catalog"), UPDATE_PRODUCT, {"input": {"id": product["id"], "categoryId": None}}, admin, client=client
    )
    assert data(cleared)["updateProduct"]["product"]["category"] is None
    for field, code in (("name", "REQUIRED"), ("price", "REQUIRED"), ("active", "REQUIRED"), ("sku", "INVALID")):
        refused = await gql(
            stack.url("catalog"), UPDATE_PRODUCT, {"input": {"id": product["id"], field: None}}, admin, client=client
        )
        assert [(e["code"], e["field"]) for e in data(refused)["updateProduct"]["userErrors"]] == [
            (code, ["input", field])
        ]
    final = data(await gql(stack.url("catalog"), PRODUCT_BY_ID, {"id": product["id"]}, admin, client=client))
    assert final["product"]["price"]["amount"] == "3.50" and final["product"]["name"] == product["name"]


@pytest.mark.parametrize("product_id", ["00000000-0000-4000-8000-000000000000", "garbage"])
async def test_admin_mutations_on_unknown_products(
    stack: ThreadedStack, client: httpx.AsyncClient, admin: str, product_id: str
) -> None:
    cases = [
        (UPDATE_PRODUCT, "updateProduct", {"id": product_id, "name": "Ghost"}),
        (ARCHIVE_PRODUCT, "archiveProduct", {"id": product_id}),
        (ADJUST_STOCK, "adjustStock", {"productId": product_id, "delta": 1}),
    ]
    for query, field, variables in cases:
        result = await gql(stack.url("catalog"), query, {"input": variables}, admin, client=client)
        assert user_error_codes(data(result)[field]) == ["PRODUCT_NOT_FOUND"], field


async def test_adjust_stock_never_goes_below_zero(stack: ThreadedStack, client: httpx.AsyncClient, admin: str) -> None:
    product = await create_product(stack, admin, stock=3)

    async def adjust(delta: int) -> dict[str, Any]:
        variables = {"input": {"productId": product["id"], "delta": delta}}
        payload: dict[str, Any] = data(await gql(stack.url("catalog"), ADJUST_STOCK, variables, admin, client=client))[
            "adjustStock"
        ]
        return payload

    assert (await adjust(5))["product"]["stock"] == 8
    assert (await adjust(-8))["product"]["stock"] == 0
    refused = await adjust(-1)
    assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [("STOCK_BELOW_ZERO", ["input", "delta"])]
    assert refused["product"] is None
    assert await stock_of(stack, admin, product["id"]) == 0
    assert (await adjust(2))["product"]["inStock"] is True
    refused = await adjust(-3)
    assert user_error_codes(refused) == ["STOCK_BELOW_ZERO"]
    assert await stock_of(stack, admin, product["id"]) == 2


async def test_adjust_stock_refuses_absurd_amounts(stack: ThreadedStack, client: httpx.AsyncClient, admin: str) -> None:
    product = await create_product(stack, admin, stock=10)
    for delta in (1_000_001, 999_995, -1_000_001):
        variables = {"input": {"productId": product["id"], "delta": delta}}
        payload = data(await gql(stack.url("catalog"), ADJUST_STOCK, variables, admin, client=client))["adjustStock"]
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("INVALID_QUANTITY", ["input", "delta"])]
    assert await stock_of(stack, admin, product["id"]) == 10


async def test_archive_hides_a_product_from_shoppers_only(
    stack: ThreadedStack, client: httpx.AsyncClient, admin: str, customer: str
) -> None:
    word = unique_word()
    product = await create_product(stack, admin, name=f"{word.title()} Lantern")
    visible = await products(stack, client, search=word)
    assert [e["node"]["id"] for e in visible["edges"]] == [product["id"]]

    archived = data(
        await gql(stack.url("catalog"), ARCHIVE_PRODUCT, {"input": {"id": product["id"]}}, admin, client=client)
    )["archiveProduct"]
    assert archived["userErrors"] == [] and archived["product"]["active"] is False

    shoppers: dict[str, str | None] = {
        "anonymous": None,
        "customer": customer,
        "router-for-customer": internal_token(
            stack, "router", user_id=_customers[stack.url("users")].id, role="CUSTOMER"
        ),
    }
    for who, token in shoppers.items():
        for query, variables in ((PRODUCT_BY_ID, {"id": product["id"]}), (PRODUCT_BY_SKU, {"sku": product["sku"]})):
            found = data(await gql(stack.url("catalog"), query, variables, token, client=client))["product"]
            assert found is None, who
        listing = await products(stack, client, token, search=word)
        assert (listing["edges"], listing["totalCount"]) == ([], 0), who

    # Administrators (and other subgraphs, e.g. for order history) still see it.
    for token in (admin, internal_token(stack, "orders")):
        found = data(await gql(stack.url("catalog"), PRODUCT_BY_ID, {"id": product["id"]}, token, client=client))
        assert found["product"]["active"] is False
    listing = await products(stack, client, admin, search=word, filter={"includeArchived": True})
    assert [e["node"]["id"] for e in listing["edges"]] == [product["id"]] and listing["totalCount"] == 1
    # Without asking for archived ones, an admin browses what shoppers see.
    assert (await products(stack, client, admin, search=word))["totalCount"] == 0


@pytest.mark.parametrize(("who", "code"), [("customer", "FORBIDDEN"), ("anonymous", "UNAUTHENTICATED")])
async def test_only_admins_list_archived_products(
    stack: ThreadedStack, client: httpx.AsyncClient, customer: str, who: str, code: str
) -> None:
    token = customer if who == "customer" else None
    variables = {"filter": {"includeArchived": True}}
    result = await gql(stack.url("catalog"), PRODUCTS, variables, token, client=client)
    assert error_codes(result) == [code]
    assert result["data"] is None


def _admin_mutations(product_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (CREATE_PRODUCT, "createProduct", {"sku": unique_sku(), "name": "Nope", "price": "1.00", "stock": 1}),
        (UPDATE_PRODUCT, "updateProduct", {"id": product_id, "name": "Hijacked", "price": "0.01"}),
        (ARCHIVE_PRODUCT, "archiveProduct", {"id": product_id}),
        (ADJUST_STOCK, "adjustStock", {"productId": product_id, "delta": 100}),
        (CREATE_CATEGORY, "createCategory", {"slug": f"nope-{uuid.uuid4().hex[:8]}", "name": "Nope"}),
    ]


@pytest.mark.parametrize(
    ("who", "code"),
    [("customer", "FORBIDDEN"), ("anonymous", "UNAUTHENTICATED"), ("router-for-customer", "FORBIDDEN")],
)
async def test_admin_mutations_are_refused_to_non_admins(
    stack: ThreadedStack, client: httpx.AsyncClient, admin: str, customer: str, who: str, code: str
) -> None:
    product = await create_product(stack, admin, price="9.00", stock=2)
    customer_id = _customers[stack.url("users")].id
    token = {
        "customer": customer,
        "anonymous": None,
        "router-for-customer": internal_token(stack, "router", user_id=customer_id, role="CUSTOMER"),
    }[who]
    for query, field, variables in _admin_mutations(product["id"]):
        result = await gql(stack.url("catalog"), query, {"input": variables}, token, client=client)
        assert error_codes(result) == [code], field
        assert result["data"] is None
    after = data(await gql(stack.url("catalog"), PRODUCT_BY_ID, {"id": product["id"]}, admin, client=client))
    assert after["product"] == product


# --- categories --------------------------------------------------------------------------

CATEGORY = """
    query($id: ID, $slug: String) {
        category(id: $id, slug: $slug) { id slug name products(first: 10) { totalCount edges { node { id } } } }
    }
"""


async def test_categories_by_id_and_slug_with_their_products(
    stack: ThreadedStack, client: httpx.AsyncClient, admin: str
) -> None:
    slug = f"lamps-{uuid.uuid4().hex[:8]}"
    category = await create_category(stack, admin, slug=f" {slug.upper()} ", name=" Lamps ")
    assert (category["slug"], category["name"]) == (slug, "Lamps")
    inside = [await create_product(stack, admin, category_id=category["id"]) for _ in range(2)]
    await create_product(stack, admin)  # elsewhere
    for variables in ({"id": category["id"]}, {"slug": slug}):
        found = data(await gql(stack.url("catalog"), CATEGORY, variables, client=client))["category"]
        assert (found["id"], found["slug"], found["name"]) == (category["id"], slug, "Lamps")
        assert found["products"]["totalCount"] == 2
        assert {e["node"]["id"] for e in found["products"]["edges"]} == {p["id"] for p in inside}
    listed = data(await gql(stack.url("catalog"), "{ categories { id slug } }", client=client))["categories"]
    assert {"id": category["id"], "slug": slug} in listed
    for variables in ({"slug": "no-such-category"}, {"id": "garbage"}):
        assert data(await gql(stack.url("catalog"), CATEGORY, variables, client=client))["category"] is None
    both = await gql(stack.url("catalog"), CATEGORY, {"id": category["id"], "slug": slug}, client=client)
    assert error_codes(both) == ["BAD_USER_INPUT"]


CATEGORY_FILTERED = """
    query($id: ID!, $filter: ProductFilter) {
        category(id: $id) { products(filter: $filter) { totalCount edges { node { id } } } }
    }
"""


async def test_category_products_filtered_by_category_stay_within_the_category(
    stack: ThreadedStack, client: httpx.AsyncClient, admin: str
) -> None:
    lamps, chairs = await create_category(stack, admin), await create_category(stack, admin)
    inside = {(await create_product(stack, admin, category_id=lamps["id"]))["id"] for _ in range(2)}
    await create_product(stack, admin, category_id=chairs["id"])

    async def lamps_filtered_by(category_id: str) -> tuple[int, set[str]]:
        variables = {"id": lamps["id"], "filter": {"categoryId": category_id}}
        found = data(await gql(stack.url("catalog"), CATEGORY_FILTERED, variables, client=client))["category"]
        return found["products"]["totalCount"], {e["node"]["id"] for e in found["products"]["edges"]}

    # The filter narrows within the parent category; it never lists another one.
    assert await lamps_filtered_by(lamps["id"]) == (2, inside)
    assert await lamps_filtered_by(chairs["id"]) == (0, set())
    assert await lamps_filtered_by("not-a-uuid") == (0, set())


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"slug": "Not A Slug"}, "INVALID", "slug"),
        ({"slug": "trailing-"}, "INVALID", "slug"),
        ({"slug": ""}, "INVALID", "slug"),
        ({"name": " "}, "REQUIRED", "name"),
        ({"name": "n" * 101}, "TOO_LONG", "name"),
    ],
)
async def test_create_category_validation(
    stack: ThreadedStack, client: httpx.AsyncClient, admin: str, changes: dict[str, str], code: str, field: str
) -> None:
    category_input = {"slug": f"ok-{uuid.uuid4().hex[:8]}", "name": "Fine", **changes}
    result = await gql(stack.url("catalog"), CREATE_CATEGORY, {"input": category_input}, admin, client=client)
    payload = data(result)["createCategory"]
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [(code, ["input", field])]
    assert payload["category"] is None


async def test_category_slugs_are_unique(stack: ThreadedStack, client: httpx.AsyncClient, admin: str) -> None:
    category = await create_category(stack, admin)
    category_input = {"slug": category["slug"].upper(), "name": "Again"}
    result = await gql(stack.url("catalog"), CREATE_CATEGORY, {"input": category_input}, admin, client=client)
    assert user_error_codes(data(result)["createCategory"]) == ["SLUG_TAKEN"]


# --- search ------------------------------------------------------------------------------


async def test_search_matches_word_prefixes_in_name_description_and_sku(
    stack: ThreadedStack, client: httpx.AsyncClient, admin: str
) -> None:
    word, other = unique_word(), unique_word()
    in_name = await create_product(stack, admin, name=f"{word.title()} Walnut Desk")
    in_description = await create_product(stack, admin, name="Plain Desk", description=f"Made by {word} artisans.")
    both_words = await create_product(stack, admin, name=f"{word.title()} {other.title()} Chair")
    in_sku = await create_product(stack, admin, sku=f"{other.upper()}-7", name="Stool")

    async def found(search: str) -> list[str]:
        nodes, total = await walk(stack, client, 100, search=search)
        assert total == len(nodes)
        return ids(nodes)

    # Relevance first: name (weight A) beats description (weight B).
    by_prefix = await found(word[:7])
    assert set(by_prefix) == {in_name["id"], in_description["id"], both_words["id"]}
    assert by_prefix[-1] == in_description["id"]
    # Every word must match (AND), in any order and case.
    assert await found(f"{other.upper()[:6]}  {word[:6]}") == [both_words["id"]]
    assert set(await found(other)) == {both_words["id"], in_sku["id"]}
    assert await found(f"{word} walnut") == [in_name["id"]]
    assert await found(f"{word} nothingelse{uuid.uuid4().hex[:6]}") == []
    # Punctuation and operators typed by a shopper are not query syntax.
    assert await found(f"{word[:7]}:* & !|()'") == by_prefix


@pytest.mark.parametrize("search", ["", "   ", "!!! ???"])
async def test_blank_search_lists_everything(stack: ThreadedStack, client: httpx.AsyncClient, search: str) -> None:
    everything = await products(stack, client, first=1)
    assert (await products(stack, client, first=1, search=search))["totalCount"] == everything["totalCount"]


# --- filters, sorts, pagination ----------------------------------------------------------

# (name, price, stock): repeated names and prices make the id tie-breaker matter.
CATALOG = [
    ("Banana", "5.00", 3),
    ("Apple", "12.00", 0),
    ("Cherry", "5.00", 1),
    ("Damson", "7.25", 0),
    ("Apple", "7.25", 9),
    ("Elderberry", "0.00", 2),
    ("Fig", "99.99", 5),
    ("Grape", "5.00", 0),
    ("Cherry", "12.00", 4),
    ("Huckleberry", "7.24", 1),
    ("Kiwi", "7.26", 6),
    ("Lime", "15.00", 1),
    ("Mango", "5.00", 8),
]


@pytest.fixture(scope="module")
async def shelf(
    stack: ThreadedStack, demo_accounts: dict[str, tuple[str, str]]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A category of its own holding CATALOG, created in list order, plus one archived product.

    Shared by the listing tests of this module, which only read it.
    """
    admin = await admin_token(stack, demo_accounts)
    category = await create_category(stack, admin, name="Fruit")
    items = []
    async with httpx.AsyncClient(timeout=30) as client:
        for name, price, stock in CATALOG:
            items.append(
                await create_product(
                    stack, admin, name=name, price=price, stock=stock, category_id=category["id"], client=client
                )
            )
        await create_product(stack, admin, name="Archived", price="5.00", category_id=category["id"], active=False)
    return category, items


def uuid_of(node: dict[str, Any]) -> uuid.UUID:
    return uuid.UUID(node["id"])


SORTS: dict[str, Any] = {
    "PRICE": lambda n: (amount(n), uuid_of(n)),
    "NAME": lambda n: (n["name"], uuid_of(n)),
    "NEWEST": None,  # checked against creation order
}


@pytest.mark.parametrize("reverse", [False, True], ids=["natural", "reversed"])
@pytest.mark.parametrize("sort_key", ["PRICE", "NAME", "NEWEST"])
async def test_sorted_walk_over_a_category_has_no_duplicates_or_omissions(
    stack: ThreadedStack,
    client: httpx.AsyncClient,
    shelf: tuple[dict[str, Any], list[dict[str, Any]]],
    sort_key: str,
    reverse: bool,
) -> None:
    category, items = shelf
    nodes, total = await walk(
        stack, client, 4, filter={"categoryId": category["id"]}, sortKey=sort_key, reverse=reverse
    )
    assert total == len(CATALOG) == len(nodes)
    assert sorted(ids(nodes)) == sorted(p["id"] for p in items)
    # Newest first; cheapest / A-Z first with the id breaking ties.
    expected = [p["id"] for p in reversed(items)] if sort_key == "NEWEST" else ids(sorted(items, key=SORTS[sort_key]))
    assert ids(nodes) == (expected[::-1] if reverse else expected)


async def test_default_sort_is_newest_first(
    stack: ThreadedStack, client: httpx.AsyncClient, shelf: tuple[dict[str, Any], list[dict[str, Any]]]
) -> None:
    category, items = shelf
    page = await products(stack, client, first=3, filter={"categoryId": category["id"]})
    assert [e["node"]["id"] for e in page["edges"]] == [p["id"] for p in items[::-1][:3]]
    created = [e["node"]["createdAt"] for e in page["edges"]]
    assert created == sorted(created, reverse=True)


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        ({"minPrice": "7.25"}, lambda n, p, s: p >= Decimal("7.25")),
        ({"maxPrice": "7.25"}, lambda n, p, s: p <= Decimal("7.25")),
        ({"minPrice": "7.25", "maxPrice": "7.26"}, lambda n, p, s: Decimal("7.25") <= p <= Decimal("7.26")),
        ({"minPrice": "0", "maxPrice": "0"}, lambda n, p, s: p == 0),
        ({"minPrice": "13", "maxPrice": "12"}, lambda n, p, s: False),
        ({"inStock": True}, lambda n, p, s: s > 0),
        ({"inStock": False}, lambda n, p, s: s == 0),
        ({"inStock": True, "maxPrice": "5"}, lambda n, p, s: s > 0 and p <= 5),
        ({"minPrice": "-5", "maxPrice": "90000000000000000"}, lambda n, p, s: True),
    ],
    ids=["min", "max", "range", "free", "empty-range", "in-stock", "sold-out", "combined", "unbounded"],
)
async def test_filters_select_exactly_the_matching_products(
    stack: ThreadedStack,
    client: httpx.AsyncClient,
    shelf: tuple[dict[str, Any], list[dict[str, Any]]],
    filter: dict[str, Any],
    expected: Any,
) -> None:
    category, items = shelf
    nodes, total = await walk(stack, client, 5, filter={"categoryId": category["id"], **filter}, sortKey="PRICE")
    wanted = {p["id"] for p in items if expected(p["name"], amount(p), p["stock"])}
    assert set(ids(nodes)) == wanted and total == len(wanted) == len(nodes)
    for node in nodes:
        assert node["category"]["id"] == category["id"] and node["active"] is True
        assert node["inStock"] is (node["stock"] > 0)


async def test_filter_on_an_unknown_category_is_empty(stack: ThreadedStack, client: httpx.AsyncClient) -> None:
    for category_id in ("00000000-0000-4000-8000-000000000000", "garbage"):
        page = await products(stack, client, filter={"categoryId": category_id})
        assert (page["edges"], page["totalCount"], page["pageInfo"]["hasNextPage"]) == ([], 0, False)


async def test_relevance_walk_breaks_ties_without_losing_rows(
    stack: ThreadedStack, client: httpx.AsyncClient, admin: str
) -> None:
    word = unique_word()
    created = [await create_product(stack, admin, name=f"{word.title()} Mug") for _ in range(7)]
    created.append(await create_product(stack, admin, name="Cup", description=f"A {word} cup."))
    for reverse in (False, True):
        nodes, total = await walk(stack, client, 3, search=word, reverse=reverse)
        assert total == 8 and sorted(ids(nodes)) == sorted(p["id"] for p in created)
        # The weaker (description-only) match is last, or first when reversed.
        assert nodes[0 if reverse else -1]["id"] == created[-1]["id"]


async def test_walk_over_the_seeded_catalog_matches_total_count(
    stack: ThreadedStack, client: httpx.AsyncClient
) -> None:
    """A bigger listing with many equal prices: pages of 50 agree with one sort order against another."""
    slug = next(iter(CATEGORIES))
    category = data(await gql(stack.url("catalog"), CATEGORY, {"slug": slug}, client=client))["category"]
    flt = {"categoryId": category["id"], "inStock": True, "minPrice": "20"}
    # 25 products a category since variants (300 in all): pages of 7 still walk several pages.
    by_price, total = await walk(stack, client, 7, filter=flt, sortKey="PRICE")
    assert total > 14 and len(by_price) == total == len(set(ids(by_price)))
    prices = [amount(n) for n in by_price]
    assert prices == sorted(prices) and prices[0] >= 20
    assert all(n["stock"] > 0 and n["category"]["id"] == category["id"] for n in by_price)
    by_name, _ = await walk(stack, client, 5, filter=flt, sortKey="NAME", reverse=True)
    assert sorted(ids(by_name)) == sorted(ids(by_price))


# --- bad input ---------------------------------------------------------------------------


def _cursor(key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


BAD_LISTINGS: dict[str, dict[str, Any]] = {
    "first-too-big": {"first": 101},
    "first-negative": {"first": -1},
    "cursor-not-base64": {"after": "!!!not a cursor!!!"},
    "cursor-not-json": {"after": base64.urlsafe_b64encode(b"{{{").decode()},
    "cursor-not-a-list": {"after": _cursor({"price": 1})},
    "cursor-wrong-arity": {"after": _cursor([1, 2, 3])},
    "cursor-bad-id": {"after": _cursor([100, "not-a-uuid"]), "sortKey": "PRICE"},
    "cursor-id-not-a-string": {"after": _cursor([100, 12]), "sortKey": "PRICE"},
    "cursor-bad-price": {"after": _cursor(["cheap", str(uuid.uuid4())]), "sortKey": "PRICE"},
    "cursor-huge-price": {"after": _cursor([10**30, str(uuid.uuid4())]), "sortKey": "PRICE"},
    "cursor-infinite-price": {"after": _cursor([float("inf"), str(uuid.uuid4())]), "sortKey": "PRICE"},
    "cursor-date-out-of-range": {"after": _cursor(["0001-01-01T00:00:00+01:00", str(uuid.uuid4())])},
    "cursor-bad-date": {"after": _cursor(["yesterday", str(uuid.uuid4())]), "sortKey": "NEWEST"},
    "cursor-date-as-number": {"after": _cursor([1700000000, str(uuid.uuid4())])},
    "cursor-bad-rank": {"after": _cursor(["high", str(uuid.uuid4())]), "search": "lamp"},
    "search-too-long": {"search": "lamp " * 41},
    "min-price-sub-cent": {"filter": {"minPrice": "1.005"}},
    "max-price-sub-cent": {"filter": {"maxPrice": "0.001"}},
    "min-price-huge": {"filter": {"minPrice": "1e30"}},
    "max-price-huge-negative": {"filter": {"maxPrice": "-1e30"}},
}


@pytest.mark.parametrize("variables", list(BAD_LISTINGS.values()), ids=list(BAD_LISTINGS))
async def test_bad_listing_arguments_are_bad_user_input(
    stack: ThreadedStack, client: httpx.AsyncClient, variables: dict[str, Any]
) -> None:
    response = await client.post(stack.url("catalog"), json={"query": PRODUCTS, "variables": variables})
    assert response.status_code == 200
    body = response.json()
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"], body
    assert body["data"] is None
    assert "Traceback" not in response.text


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("query($s: String!) { product(sku: $s) { id } }", {"s": "A\x00"}),
        ("query($s: String!) { category(slug: $s) { id } }", {"s": "a\x00"}),
        ('{ product(sku: "A\\u0000B") { id } }', {}),
    ],
    ids=["product-sku", "category-slug", "literal-escape"],
)
async def test_nul_characters_in_input_are_not_a_server_error(
    stack: ThreadedStack, client: httpx.AsyncClient, query: str, variables: dict[str, str]
) -> None:
    result = await gql(stack.url("catalog"), query, variables, client=client)
    assert error_codes(result) == ["BAD_USER_INPUT"], result


async def test_a_cursor_from_another_sort_order_is_refused(
    stack: ThreadedStack, client: httpx.AsyncClient, shelf: tuple[dict[str, Any], list[dict[str, Any]]]
) -> None:
    category, _ = shelf
    page = await products(stack, client, first=2, filter={"categoryId": category["id"]}, sortKey="PRICE")
    result = await gql(
        stack.url("catalog"),
        PRODUCTS,
        {"first": 2, "after": page["pageInfo"]["endCursor"], "sortKey": "NEWEST"},
        client=client,
    )
    assert error_codes(result) == ["BAD_USER_INPUT"]


async def test_page_size_limits(stack: ThreadedStack, client: httpx.AsyncClient) -> None:
    assert len((await products(stack, client))["edges"]) == 20  # the default
    assert len((await products(stack, client, first=100))["edges"]) == 100
    empty = await products(stack, client, first=0)
    assert empty["edges"] == [] and empty["pageInfo"]["hasNextPage"] is True and empty["totalCount"] > 100


# --- stock reservations (internal, for orders) -------------------------------------------


async def reserve(
    stack: ThreadedStack,
    client: httpx.AsyncClient,
    lines: list[tuple[str, int]],
    reservation_id: str | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    variables = {
        "input": {
            "reservationId": reservation_id or str(uuid.uuid4()),
            "lines": [{"productId": product_id, "quantity": quantity} for product_id, quantity in lines],
        }
    }
    return await gql(
        stack.url("catalog"), RESERVE_STOCK, variables, token or internal_token(stack, "orders"), client=client
    )


async def release(
    stack: ThreadedStack, client: httpx.AsyncClient, reservation_id: str, token: str | None = None
) -> dict[str, Any]:
    variables = {"input": {"reservationId": reservation_id}}
    return await gql(
        stack.url("catalog"), RELEASE_STOCK, variables, token or internal_token(stack, "orders"), client=client
    )


@pytest.mark.parametrize(
    "who", ["customer", "admin", "anonymous", "router-for-admin", "service-cart", "wrong-secret-orders"]
)
async def test_only_the_orders_service_may_reserve_or_release_stock(
    stack: ThreadedStack, client: httpx.AsyncClient, admin: str, customer: str, who: str
) -> None:
    product = await create_product(stack, admin, stock=5)
    reservation = str(uuid.uuid4())
    token = {
        "customer": customer,
        "admin": admin,
        "anonymous": None,
        "router-for-admin": internal_token(stack, "router", user_id=str(uuid.uuid4()), role="ADMIN"),
        "service-cart": internal_token(stack, "cart"),
        "wrong-secret-orders": mint_internal_token("not-the-shared-secret-" + "x" * 16, "orders"),
    }[who]
    for query, variables in (
        (
            RESERVE_STOCK,
            {"input": {"reservationId": reservation, "lines": [{"productId": product["id"], "quantity": 2}]}},
        ),
        (RELEASE_STOCK, {"input": {"reservationId": reservation}}),
    ):
        response = await client.post(
            stack.url("catalog"),
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}"} if token else {},
        )
        body = response.json()
        if who == "wrong-secret-orders":
            assert response.status_code == 401
            assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
        else:
            assert response.status_code == 200
            assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
            assert body["data"] is None
    assert await stock_of(stack, admin, product["id"]) == 5


async def test_reservation_takes_stock_and_snapshots_prices(
    stack: ThreadedStack, client: httpx.AsyncClient, admin: str
) -> None:
    a = await create_product(stack, admin, stock=5, price="19.99")
    b = await create_product(stack, admin, stock=2, price="0.50")
    result = data(await reserve(stack, client, [(a["id"], 2), (b["id"], 2), (a["id"], 1)]))["reserveStock"]
    assert result["userErrors"] == []
    lines = {line["productId"]: line for line in result["lines"]}
    assert lines[a["id"]] == {
        "productId": a["id"],
        "quantity": 3,  # repeated lines add up
        "sku": a["sku"],
        "name": a["name"],
        "unitPrice": {"amount": "19.99", "currencyCode": "USD"},
    }
    assert lines[b["id"]]["quantity"] == 2 and lines[b["id"]]["unitPrice"]["amount"] == "0.50"
    assert await stock_of(stack, admin, a["id"]) == 2
    assert await stock_of(stack, admin, b["id"]) == 0


async def test_reservation_is_all_or_nothing(stack: ThreadedStack, client: httpx.AsyncClient, admin: str) -> None:
    plenty = await create_product(stack, admin, stock=10)
    scarce = await create_product(stack, admin, stock=1)
    archived = await create_product(stack, admin, stock=10, active=False)
    cases = [
        ([(plenty["id"], 3), (scarce["id"], 2)], "OUT_OF_STOCK"),
        ([(plenty["id"], 3), (scarce["id"], 1), (scarce["id"], 1)], "OUT_OF_STOCK"),
        ([(plenty["id"], 3), (archived["id"], 1)], "PRODUCT_INACTIVE"),
        ([(plenty["id"], 3), ("00000000-0000-4000-8000-000000000000", 1)], "PRODUCT_NOT_FOUND"),
        ([(plenty["id"], 3), ("garbage", 1)], "PRODUCT_NOT_FOUND"),
        ([(plenty["id"], 3), (scarce["id"], 0)], "INVALID_QUANTITY"),
        ([(plenty["id"], -1)], "INVALID_QUANTITY"),
        ([(plenty["id"], 1000)], "INVALID_QUANTITY"),
        ([], "CART_EMPTY"),
    ]
    for lines, code in cases:
        reservation = str(uuid.uuid4())
        payload = data(await reserve(stack, client, lines, reservation))["reserveStock"]
        assert user_error_codes(payload) == [code], lines
        assert payload["lines"] is None
        # A refused reservation is not recorded: releasing it gives nothing back.
        assert data(await release(stack, client, reservation))["releaseStock"] == {"released": False}
    assert [await stock_of(stack, admin, p["id"]) for p in (plenty, scarce, archived)] == [10, 1, 10]


async def test_reservation_is_idempotent_per_id(stack: ThreadedStack, client: httpx.AsyncClient, admin: str) -> None:
    product = await create_product(stack, admin, stock=5)
    reservation = str(uuid.uuid4())
    first = data(await reserve(stack, client, [(product["id"], 2)], reservation))["reserveStock"]
    again = data(await reserve(stack, client, [(product["id"], 2)], reservation))["reserveStock"]
    assert first["userErrors"] == [] and again == first
    assert await stock_of(stack, admin, product["id"]) == 3
    # Even a retry that raced itself takes the stock once.
    racing = str(uuid.uuid4())
    results = await asyncio.gather(*(reserve(stack, client, [(product["id"], 1)], racing) for _ in range(5)))
    assert all(data(r)["reserveStock"]["userErrors"] == [] for r in results)
    assert await stock_of(stack, admin, product["id"]) == 2


async def test_release_puts_stock_back_once(stack: ThreadedStack, client: httpx.AsyncClient, admin: str) -> None:
    a = await create_product(stack, admin, stock=4)
    b = await create_product(stack, admin, stock=3)
    reservation = str(uuid.uuid4())
    assert data(await reserve(stack, client, [(a["id"], 4), (b["id"], 1)], reservation))["reserveStock"]["lines"]
    assert [await stock_of(stack, admin, p["id"]) for p in (a, b)] == [0, 2]
    assert data(await release(stack, client, reservation))["releaseStock"] == {"released": True}
    assert [await stock_of(stack, admin, p["id"]) for p in (a, b)] == [4, 3]
    assert data(await release(stack, client, reservation))["releaseStock"] == {"released": False}
    assert data(await release(stack, client, str(uuid.uuid4())))["releaseStock"] == {"released": False}
    assert [await stock_of(stack, admin, p["id"]) for p in (a, b)] == [4, 3]


async def test_a_released_reservation_retried_takes_the_stock_again(
    stack: ThreadedStack, client: httpx.AsyncClient, admin: str
) -> None:
    # Orders releases a reservation when its checkout fails; the shopper's retry
    # (same key, same reservation id) must hold stock again, or it would oversell.
    product = await create_product(stack, admin, stock=5)
    reservation = str(uuid.uuid4())
    assert data(await reserve(stack, client, [(product["id"], 2)], reservation))["reserveStock"]["userErrors"] == []
    assert data(await release(stack, client, reservation))["releaseStock"] == {"released": True}
    assert await stock_of(stack, admin, product["id"]) == 5
    again = data(await reserve(stack, client, [(product["id"], 3)], reservation))["reserveStock"]
    assert again["userErrors"] == [] and again["lines"][0]["quantity"] == 3
    assert await stock_of(stack, admin, product["id"]) == 2
    assert data(await release(stack, client, reservation))["releaseStock"] == {"released": True}
    assert await stock_of(stack, admin, product["id"]) == 5


async def test_releasing_an_archived_products_stock_still_works(
    stack: ThreadedStack, client: httpx.AsyncClient, admin: str
) -> None:
    product = await create_product(stack, admin, stock=3)
    reservation = str(uuid.uuid4())
    assert data(await reserve(stack, client, [(product["id"], 3)], reservation))["reserveStock"]["userErrors"] == []
    await gql(stack.url("catalog"), ARCHIVE_PRODUCT, {"input": {"id": product["id"]}}, admin, client=client)
    assert data(await release(stack, client, reservation))["releaseStock"] == {"released": True}
    assert await stock_of(stack, admin, product["id"]) == 3


@pytest.mark.parametrize("reservation_id", ["not-a-uuid", ""])
async def test_reservation_ids_must_be_uuids(
    stack: ThreadedStack, client: httpx.AsyncClient, admin: str, reservation_id: str
) -> None:
    product = await create_product(stack, admin, stock=2)
    for result in (
        await reserve(stack, client, [(product["id"], 1)], reservation_id or "x"),
        await release(stack, client, reservation_id or "x"),
    ):
        assert error_codes(result) == ["BAD_USER_INPUT"]
    assert await stock_of(stack, admin, product["id"]) == 2


async def test_concurrent_reservations_never_oversell(
    stack: ThreadedStack, client: httpx.AsyncClient, admin: str
) -> None:
    product = await create_product(stack, admin, stock=10)
    results = await asyncio.gather(*(reserve(stack, client, [(product["id"], 1)]) for _ in range(25)))
    codes = [user_error_codes(data(r)["reserveStock"]) for r in results]
    assert codes.count([]) == 10
    assert codes.count(["OUT_OF_STOCK"]) == 15
    assert await stock_of(stack, admin, product["id"]) == 0


async def test_a_first_pages_total_count_is_read_with_the_page(stack: ThreadedStack, admin: str) -> None:
    """A first page counts its matches in the page's own statement (a window count); a later page,
    whose rows are only those after its cursor, counts apart: both give the same total."""
    category = await create_category(stack, admin)
    for _ in range(5):
        await create_product(stack, admin, category_id=category["id"])

    async def listing(total: bool, after: str | None = None) -> dict[str, Any]:
        fields = "totalCount pageInfo { endCursor } edges { node { id } }" if total else "edges { node { id } }"
        page = f"products(first: 3, after: $after, filter: $f) {{ {fields} }}"
        query = f"query($after: String, $f: ProductFilter) {{ {page} }}"
        variables = {"after": after, "f": {"categoryId": category["id"]}}
        found: dict[str, Any] = data(await gql(stack.url("catalog"), query, variables))["products"]
        return found

    _, plain = await fewest_statements(stack, ("catalog",), lambda: listing(False))
    first, counted = await fewest_statements(stack, ("catalog",), lambda: listing(True))
    assert 0 < counted["catalog"] == plain["catalog"]
    later = await listing(True, first["pageInfo"]["endCursor"])
    assert first["totalCount"] == later["totalCount"] == 5
    assert len(first["edges"]) == 3 and len(later["edges"]) == 2
