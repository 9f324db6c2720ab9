"""Products with variants: options, variants with their own SKU/price/stock, stock per variant,
a checkout of a variant line (cart → orders → catalog reservation), and query counts."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

import pytest
import redis.asyncio as aioredis

from deploy.stack import ThreadedStack
from tests.integration.helpers import admin_token, data, register, unique, unique_sku, user_error_codes
from tests.integration.shop_helpers import cancel, cart_call, checkout, fewest_statements, get_cart
from tests.support.graphql import gql
from tests.support.wait import until

USER_ERRORS = "userErrors { code field message }"
VARIANT_FIELDS = "id sku title selectedOptions { name value } price { amount } stock inStock active product { id }"
PRODUCT_FIELDS = f"""
    id sku name price {{ amount }} stock options {{ name values }}
    variants {{ {VARIANT_FIELDS} }} defaultVariant {{ id }}
"""
CREATE = f"""mutation($input: CreateProductInput!) {{
    createProduct(input: $input) {{ product {{ {PRODUCT_FIELDS} }} {USER_ERRORS} }} }}"""
CREATE_VARIANT = f"""mutation($input: CreateProductVariantInput!) {{
    createProductVariant(input: $input) {{ variant {{ {VARIANT_FIELDS} }} {USER_ERRORS} }} }}"""
UPDATE_VARIANT = f"""mutation($input: UpdateProductVariantInput!) {{
    updateProductVariant(input: $input) {{ variant {{ {VARIANT_FIELDS} }} {USER_ERRORS} }} }}"""
ADJUST = f"""mutation($input: AdjustStockInput!) {{
    adjustStock(input: $input) {{ product {{ stock }} variant {{ id stock }} {USER_ERRORS} }} }}"""
PRODUCT = f"query($id: ID!) {{ product(id: $id) {{ {PRODUCT_FIELDS} }} }}"
VARIANT_BY = f"query($id: ID, $sku: String) {{ productVariant(id: $id, sku: $sku) {{ {VARIANT_FIELDS} }} }}"
ADD = f"""mutation($input: AddToCartInput!) {{ addToCart(input: $input) {{
    cart {{ items {{ quantity product {{ id }} variant {{ id }} unitPrice {{ amount }} }} }} {USER_ERRORS} }} }}"""
REMOVE = f"""mutation($input: RemoveFromCartInput!) {{ removeFromCart(input: $input) {{
    cart {{ items {{ variant {{ id }} }} }} {USER_ERRORS} }} }}"""
ORDER_ITEMS = "query($id: ID!) { order(id: $id) { items { sku name quantity product { id } variant { id } } } }"


@pytest.fixture
async def admin(stack: ThreadedStack, demo_accounts: dict[str, tuple[str, str]]) -> str:
    return await admin_token(stack, demo_accounts)


def shirt_input(**overrides: Any) -> dict[str, Any]:
    base = unique_sku("SH")
    return {
        "sku": base,
        "name": unique("Variant Shirt "),
        "price": "20.00",
        "options": [{"name": "Colour", "values": ["Olive", "Navy"]}, {"name": "Size", "values": ["S", "M"]}],
        "variants": [
            {
                "sku": f"{base}-OS",
                "options": [{"name": "Colour", "value": "Olive"}, {"name": "Size", "value": "S"}],
                "stock": 3,
            },
            {
                "sku": f"{base}-OM",
                "options": [{"name": "colour", "value": "olive"}, {"name": "Size", "value": "M"}],
                "price": "22.50",
                "stock": 0,
            },
            {
                "sku": f"{base}-NS",
                "options": [{"name": "Colour", "value": "Navy"}, {"name": "Size", "value": "S"}],
                "price": "18.00",
                "stock": 7,
            },
        ],
        **overrides,
    }


async def create(stack: ThreadedStack, admin: str, **overrides: Any) -> dict[str, Any]:
    payload = data(await gql(stack.url("catalog"), CREATE, {"input": shirt_input(**overrides)}, admin))["createProduct"]
    assert payload["userErrors"] == [], payload
    product: dict[str, Any] = payload["product"]
    return product


async def test_a_product_with_options_and_variants(stack: ThreadedStack, admin: str) -> None:
    product = await create(stack, admin)
    assert product["options"] == [
        {"name": "Colour", "values": ["Olive", "Navy"]},
        {"name": "Size", "values": ["S", "M"]},
    ]
    variants = product["variants"]
    assert [v["title"] for v in variants] == ["Olive / S", "Olive / M", "Navy / S"]
    # Option names and values are matched case-insensitively and stored as the product spells them.
    assert variants[1]["selectedOptions"] == [{"name": "Colour", "value": "Olive"}, {"name": "Size", "value": "M"}]
    assert [Decimal(v["price"]["amount"]) for v in variants] == [Decimal("20"), Decimal("22.5"), Decimal("18")]
    # The product's price is its cheapest variant's, its stock their sum.
    assert Decimal(product["price"]["amount"]) == Decimal("18") and product["stock"] == 10
    assert [v["inStock"] for v in variants] == [True, False, True]
    assert product["defaultVariant"]["id"] == variants[0]["id"]
    # By id and by SKU (any case).
    for variables in ({"id": variants[2]["id"]}, {"sku": variants[2]["sku"].lower()}):
        found = data(await gql(stack.url("catalog"), VARIANT_BY, variables))["productVariant"]
        assert found == variants[2]
    assert data(await gql(stack.url("catalog"), VARIANT_BY, {"id": str(uuid.uuid4())}))["productVariant"] is None


async def test_a_product_without_variants_has_one_sharing_its_id_and_sku(stack: ThreadedStack, admin: str) -> None:
    sku = unique_sku()
    payload = data(
        await gql(
            stack.url("catalog"), CREATE, {"input": {"sku": sku, "name": "Plain", "price": "5", "stock": 2}}, admin
        )
    )["createProduct"]
    product = payload["product"]
    assert product["options"] == [] and len(product["variants"]) == 1
    (variant,) = product["variants"]
    assert variant["id"] == product["id"] and variant["sku"] == sku and variant["title"] == ""
    assert variant["stock"] == 2 and variant["selectedOptions"] == []


BAD_PRODUCTS: dict[str, tuple[dict[str, Any], str]] = {
    "options-without-variants": ({"variants": []}, "REQUIRED"),
    "duplicate-option-name": (
        {"options": [{"name": "Size", "values": ["S"]}, {"name": "size", "values": ["M"]}]},
        "INVALID",
    ),
    "missing-option-value": (
        {"variants": [{"sku": "X1" + uuid.uuid4().hex[:6].upper(), "options": [{"name": "Colour", "value": "Red"}]}]},
        "INVALID",
    ),
    "unknown-option": (
        {
            "variants": [
                {
                    "sku": "X2" + uuid.uuid4().hex[:6].upper(),
                    "options": [
                        {"name": "Colour", "value": "Red"},
                        {"name": "Size", "value": "S"},
                        {"name": "Fabric", "value": "Silk"},
                    ],
                }
            ]
        },
        "INVALID",
    ),
    "same-combination-twice": (
        {
            "variants": [
                {
                    "sku": f"X3{i}" + uuid.uuid4().hex[:6].upper(),
                    "options": [{"name": "Colour", "value": "Olive"}, {"name": "Size", "value": "S"}],
                }
                for i in range(2)
            ]
        },
        "INVALID",
    ),
    "negative-stock": (
        {
            "variants": [
                {
                    "sku": "X4" + uuid.uuid4().hex[:6].upper(),
                    "stock": -1,
                    "options": [{"name": "Colour", "value": "Olive"}, {"name": "Size", "value": "S"}],
                }
            ]
        },
        "INVALID_QUANTITY",
    ),
    "bad-variant-sku": (
        {
            "variants": [
                {
                    "sku": "no spaces allowed",
                    "options": [{"name": "Colour", "value": "Olive"}, {"name": "Size", "value": "S"}],
                }
            ]
        },
        "INVALID",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_PRODUCTS))
async def test_bad_variants_are_refused_and_nothing_is_created(stack: ThreadedStack, admin: str, case: str) -> None:
    overrides, code = BAD_PRODUCTS[case]
    product_input = shirt_input(**overrides)
    payload = data(await gql(stack.url("catalog"), CREATE, {"input": product_input}, admin))["createProduct"]
    assert user_error_codes(payload) == [code] and payload["product"] is None
    found = data(
        await gql(
            stack.url("catalog"), "query($s: String!) { product(sku: $s) { id } }", {"s": product_input["sku"]}, admin
        )
    )["product"]
    assert found is None


async def test_variants_added_updated_and_stocked_one_by_one(stack: ThreadedStack, admin: str) -> None:
    product = await create(stack, admin)
    new_sku = unique_sku("NM")
    add = {
        "productId": product["id"],
        "sku": new_sku,
        "price": "25.00",
        "stock": 4,
        "options": [{"name": "Colour", "value": "Navy"}, {"name": "Size", "value": "M"}],
    }
    payload = data(await gql(stack.url("catalog"), CREATE_VARIANT, {"input": add}, admin))["createProductVariant"]
    assert payload["userErrors"] == [] and payload["variant"]["title"] == "Navy / M"
    navy_m = payload["variant"]
    # The same combination again, or a taken SKU: refused.
    again = data(await gql(stack.url("catalog"), CREATE_VARIANT, {"input": {**add, "sku": unique_sku()}}, admin))
    assert user_error_codes(again["createProductVariant"]) == ["INVALID"]
    taken = {**add, "options": [{"name": "Colour", "value": "Sand"}, {"name": "Size", "value": "M"}]}
    refused = data(await gql(stack.url("catalog"), CREATE_VARIANT, {"input": taken}, admin))
    assert user_error_codes(refused["createProductVariant"]) == ["SKU_TAKEN"]
    # A new value extends its option.
    sand = {**taken, "sku": unique_sku()}
    assert (
        data(await gql(stack.url("catalog"), CREATE_VARIANT, {"input": sand}, admin))["createProductVariant"][
            "userErrors"
        ]
        == []
    )
    after = data(await gql(stack.url("catalog"), PRODUCT, {"id": product["id"]}, admin))["product"]
    assert after["options"][0] == {"name": "Colour", "values": ["Olive", "Navy", "Sand"]}
    assert after["stock"] == 10 + 4 + 4

    # Stock moves per variant; the product's is the sum.
    moved = data(await gql(stack.url("catalog"), ADJUST, {"input": {"variantId": navy_m["id"], "delta": -3}}, admin))
    assert moved["adjustStock"]["variant"] == {"id": navy_m["id"], "stock": 1}
    assert moved["adjustStock"]["product"]["stock"] == 15
    below = data(await gql(stack.url("catalog"), ADJUST, {"input": {"variantId": navy_m["id"], "delta": -2}}, admin))
    assert user_error_codes(below["adjustStock"]) == ["STOCK_BELOW_ZERO"]
    # A price change of one variant moves the product's "from" price; deactivating drops it from the sum.
    cheapest = after["variants"][2]
    update = {"id": cheapest["id"], "price": "30.00", "active": False}
    changed = data(await gql(stack.url("catalog"), UPDATE_VARIANT, {"input": update}, admin))["updateProductVariant"]
    assert changed["userErrors"] == [] and changed["variant"]["active"] is False
    final = data(await gql(stack.url("catalog"), PRODUCT, {"id": product["id"]}, admin))["product"]
    assert Decimal(final["price"]["amount"]) == Decimal("20") and final["stock"] == 15 - 7
    assert cheapest["id"] not in [v["id"] for v in final["variants"]]


async def test_concurrent_stock_changes_of_sibling_variants_add_up(stack: ThreadedStack, admin: str) -> None:
    product = await create(stack, admin)
    a, _, c = product["variants"]

    async def bump(variant_id: str) -> None:
        result = data(await gql(stack.url("catalog"), ADJUST, {"input": {"variantId": variant_id, "delta": 1}}, admin))
        assert result["adjustStock"]["userErrors"] == []

    await asyncio.gather(*(bump(v["id"]) for v in [a, c] * 10))
    final = data(await gql(stack.url("catalog"), PRODUCT, {"id": product["id"]}, admin))["product"]
    assert [v["stock"] for v in final["variants"]] == [3 + 10, 0, 7 + 10] and final["stock"] == 30


async def test_checkout_of_variant_lines_takes_and_gives_back_each_variants_stock(
    stack: ThreadedStack, admin: str
) -> None:
    product = await create(stack, admin)
    olive_s, olive_m, navy_s = product["variants"]
    shopper = await register(stack)
    token = shopper.access_token

    two = await cart_call(stack, token, ADD, {"input": {"variantId": olive_s["id"], "quantity": 2}})
    assert two["userErrors"] == []
    one = await cart_call(stack, token, ADD, {"input": {"variantId": navy_s["id"], "quantity": 1}})
    items = one["cart"]["items"]
    assert [(i["variant"]["id"], i["product"]["id"], i["quantity"]) for i in items] == [
        (olive_s["id"], product["id"], 2),
        (navy_s["id"], product["id"], 1),
    ]
    assert [Decimal(i["unitPrice"]["amount"]) for i in items] == [Decimal("20"), Decimal("18")]
    # A sold-out variant, and a variant named with another product's id: refused.
    sold_out = await cart_call(stack, token, ADD, {"input": {"variantId": olive_m["id"]}})
    assert user_error_codes(sold_out) == ["OUT_OF_STOCK"]
    mismatch = await cart_call(
        stack, token, ADD, {"input": {"variantId": olive_m["id"], "productId": str(uuid.uuid4())}}
    )
    assert user_error_codes(mismatch) == ["PRODUCT_NOT_FOUND"]

    placed = await checkout(stack, token)
    assert placed["userErrors"] == [], placed
    order = placed["order"]
    assert Decimal(order["subtotal"]["amount"]) == Decimal("58")
    items = data(await gql(stack.url("orders"), ORDER_ITEMS, {"id": order["id"]}, token))["order"]["items"]
    assert [(i["sku"], i["quantity"], i["variant"]["id"], i["product"]["id"]) for i in items] == [
        (olive_s["sku"], 2, olive_s["id"], product["id"]),
        (navy_s["sku"], 1, navy_s["id"], product["id"]),
    ]
    assert items[0]["name"] == f"{product['name']} — Olive / S"
    assert (await get_cart(stack, token))["items"] == []
    after = data(await gql(stack.url("catalog"), PRODUCT, {"id": product["id"]}, admin))["product"]
    assert [v["stock"] for v in after["variants"]] == [1, 0, 6] and after["stock"] == 7

    cancelled = await cancel(stack, token, order["id"])
    assert cancelled["userErrors"] == []
    for _ in range(100):
        back = data(await gql(stack.url("catalog"), PRODUCT, {"id": product["id"]}, admin))["product"]
        if back["stock"] == 10:
            break
        await asyncio.sleep(0.05)
    assert [v["stock"] for v in back["variants"]] == [3, 0, 7]


async def test_a_product_id_alone_means_its_default_variant(stack: ThreadedStack, admin: str) -> None:
    product = await create(stack, admin)
    shopper = await register(stack)
    added = await cart_call(stack, shopper.access_token, ADD, {"input": {"productId": product["id"]}})
    assert [i["variant"]["id"] for i in added["cart"]["items"]] == [product["defaultVariant"]["id"]]
    await cart_call(stack, shopper.access_token, ADD, {"input": {"variantId": product["variants"][2]["id"]}})
    # Removing by product id takes every line of the product.
    removed = await cart_call(stack, shopper.access_token, REMOVE, {"input": {"productId": product["id"]}})
    assert removed["userErrors"] == [] and removed["cart"]["items"] == []


LISTING = "query($n: Int) { products(first: $n) { edges { node { id options { name } variants { id sku } } } } }"


async def test_variants_and_options_of_a_listing_cost_the_same_for_2_and_60_products(stack: ThreadedStack) -> None:
    async def listing(n: int) -> dict[str, Any]:
        return data(await gql(stack.url("catalog"), LISTING, {"n": n}))

    _small, small_cost = await fewest_statements(stack, ("catalog",), lambda: listing(2))
    large, large_cost = await fewest_statements(stack, ("catalog",), lambda: listing(60))
    assert len(large["products"]["edges"]) == 60
    assert sum(len(e["node"]["variants"]) for e in large["products"]["edges"]) > 60
    assert 0 < large_cost["catalog"] == small_cost["catalog"]


async def test_a_product_price_change_invalidates_each_of_its_variants(stack: ThreadedStack, admin: str) -> None:
    """updateProduct's ``price`` sets every variant's: routers cache ProductVariant entities apart
    from their product, so the catalog's change stream names the product and each variant."""
    product = await create(stack, admin)
    variant_ids = {v["id"] for v in product["variants"]}
    update = "mutation($i: UpdateProductInput!) { updateProduct(input: $i) { userErrors { code } } }"
    result = await gql(stack.url("catalog"), update, {"i": {"id": product["id"], "price": "31.00"}}, admin)
    assert data(result)["updateProduct"]["userErrors"] == []
    redis = aioredis.from_url(stack.settings.redis_url)
    stream = f"{stack.settings.redis_prefix}catalog:events"

    want = {("ProductChanged", product["id"])} | {("ProductVariantChanged", v) for v in variant_ids}

    async def published() -> bool:
        entries: Any = await redis.xrevrange(stream, count=500)
        seen = {(f[b"type"].decode(), f[b"aggregate"].decode()) for _, f in entries}
        return want <= seen

    try:
        await until(published, within=15, what="a change event per variant")
    finally:
        await redis.aclose()
