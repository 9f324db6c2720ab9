"""Variant weights through the router: the shop team weighs each variant (createProduct,
createProductVariant, updateProductVariant), and BY_WEIGHT shipping rates price the cart and the
order by those weights; bad weights are refused and change nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.e2e.pricing_helpers import DESTINATION, Shop, country, mutation
from tests.integration.helpers import LOGIN, unique_sku
from tests.support.graphql import gql

ERRORS = "userErrors { code field message }"
VARIANT = "id sku weightGrams selectedOptions { name value }"
CREATE = mutation("createProduct", "CreateProductInput", f"product {{ id variants {{ {VARIANT} }} }} {ERRORS}")
ADD_VARIANT = mutation("createProductVariant", "CreateProductVariantInput", f"variant {{ {VARIANT} }} {ERRORS}")
UPDATE_VARIANT = mutation("updateProductVariant", "UpdateProductVariantInput", f"variant {{ {VARIANT} }} {ERRORS}")
ADD_LINE = mutation("addToCart", "AddToCartInput", f"cart {{ totalQuantity }} {ERRORS}")
OPTIONS = "{ cart { shippingOptions { name price { amount } } cost { shipping { amount } } } }"


@pytest.fixture
async def shop(router_url: str, demo_accounts: dict[str, tuple[str, str]]) -> AsyncIterator[Shop]:
    async with httpx.AsyncClient(timeout=120) as client:
        email, password = demo_accounts["ADMIN"]
        login = await gql(router_url, LOGIN, {"input": {"email": email, "password": password}}, client=client)
        yield Shop(router_url, client, login["data"]["login"]["accessToken"])


async def weighed_product(shop: Shop) -> dict[str, Any]:
    sku = unique_sku("WG")
    product = await shop.ok(
        CREATE,
        {
            "sku": sku,
            "name": "Weighed Thing",
            "price": "10.00",
            "options": [{"name": "Colour", "values": ["Red", "Blue"]}],
            "variants": [
                {"sku": f"{sku}-RED", "options": [{"name": "Colour", "value": "Red"}], "stock": 50, "weightGrams": 200},
                {
                    "sku": f"{sku}-BLU",
                    "options": [{"name": "Colour", "value": "Blue"}],
                    "stock": 50,
                    "weightGrams": 3000,
                },
            ],
        },
        shop.admin,
    )
    return dict(product["product"])


async def by_weight_price(shop: Shop, token: str) -> str:
    cart = await shop.call(OPTIONS, None, token)
    prices = {o["name"]: o["price"]["amount"] for o in cart["shippingOptions"]}
    return str(prices.get("By weight", "none"))


async def test_by_weight_rates_use_each_variants_weight_and_its_edits(shop: Shop) -> None:
    product = await weighed_product(shop)
    red, blue = product["variants"]
    assert (red["weightGrams"], blue["weightGrams"]) == (200, 3000)
    where = country()
    zone = await shop.zone([where])
    bands = [{"upTo": 1000, "price": "3.00"}, {"upTo": 10000, "price": "9.00"}]
    await shop.method(zone, "By weight", "BY_WEIGHT", bands=bands)
    _, token, _ = await shop.shopper()
    await shop.ok(DESTINATION, {"country": where}, token)

    await shop.ok(ADD_LINE, {"variantId": red["id"], "quantity": 4}, token)  # 800 g
    assert await by_weight_price(shop, token) == "3.00"
    await shop.ok(ADD_LINE, {"variantId": blue["id"], "quantity": 1}, token)  # 3.8 kg
    assert await by_weight_price(shop, token) == "9.00"

    # The shop team weighs the red one again: the cart is priced by the new weight at once.
    updated = await shop.ok(UPDATE_VARIANT, {"id": red["id"], "weightGrams": 2000}, shop.admin)
    assert updated["variant"]["weightGrams"] == 2000
    assert await by_weight_price(shop, token) == "none"  # 11 kg: no band covers it
    await shop.ok(UPDATE_VARIANT, {"id": red["id"], "weightGrams": 0}, shop.admin)  # a download, say
    assert await by_weight_price(shop, token) == "9.00"

    # A new variant with its weight; a product without variants weighs what it is given, else 500 g.
    added = await shop.ok(
        ADD_VARIANT,
        {
            "productId": product["id"],
            "sku": unique_sku("WG"),
            "options": [{"name": "Colour", "value": "Green"}],
            "price": "11.00",
            "weightGrams": 750,
        },
        shop.admin,
    )
    assert added["variant"]["weightGrams"] == 750
    plain = await shop.ok(
        CREATE, {"sku": unique_sku("WG"), "name": "Plain", "price": "1.00", "weightGrams": 50}, shop.admin
    )
    assert [v["weightGrams"] for v in plain["product"]["variants"]] == [50]
    unweighed = await shop.ok(CREATE, {"sku": unique_sku("WG"), "name": "Plain", "price": "1.00"}, shop.admin)
    assert [v["weightGrams"] for v in unweighed["product"]["variants"]] == [500]


@pytest.mark.parametrize("weight", [-1, 1_000_001])
async def test_a_bad_weight_is_refused_and_changes_nothing(shop: Shop, weight: int) -> None:
    product = await weighed_product(shop)
    red = product["variants"][0]
    refused = await shop.call(UPDATE_VARIANT, {"input": {"id": red["id"], "weightGrams": weight}}, shop.admin)
    assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [("INVALID", ["input", "weightGrams"])]
    sku = unique_sku("WG")
    created = await shop.call(
        CREATE, {"input": {"sku": sku, "name": "Bad", "price": "1.00", "weightGrams": weight}}, shop.admin
    )
    assert [e["field"] for e in created["userErrors"]] == [["input", "weightGrams"]]
    again = await shop.call(f'{{ productVariant(id: "{red["id"]}") {{ weightGrams }} }}')
    assert again == {"weightGrams": 200}
    assert await shop.call(f'{{ product(sku: "{sku}") {{ id }} }}') is None


async def test_the_demo_catalog_is_weighed_by_category_and_size(shop: Shop) -> None:
    found = await shop.call(
        '{ productSearch(query: "apparel", first: 20) { products { edges { node { sku category { slug } '
        "variants { weightGrams selectedOptions { name value } } } } } } }"
    )
    weighed = 0
    for edge in found["products"]["edges"]:
        assert edge["node"]["category"]["slug"] == "apparel"
        by_size: dict[str, set[int]] = {}
        for variant in edge["node"]["variants"]:
            # (a product other tests put in the category may have no sizes: nothing to compare)
            size = next((o["value"] for o in variant["selectedOptions"] if o["name"] == "Size"), None)
            if size is not None:
                by_size.setdefault(size, set()).add(variant["weightGrams"])
        if not by_size:
            continue
        order = ["XS", "S", "M", "L", "XL"]
        weights = [next(iter(by_size[s])) for s in order if s in by_size]
        assert all(len(w) == 1 for w in by_size.values())  # every colour of a size weighs the same
        assert weights == sorted(weights) and weights[0] >= 350
        weighed += 1
    assert weighed >= 3, found  # the seed's sized apparel was among them
