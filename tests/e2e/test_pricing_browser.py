"""A signed-out shopper's priced cart in a real browser, against the real stack (issue 17's storefront).

The app is this run's Vite build served by the router at ``/`` (as in test_storefront_browser.py).
The shop team's rules are made through the graph as the demo admin, for a made-up country no other
test prices: a zone with two flat methods (Standard 5.00, 2-4 days; Express 15.00, next day), 20 %
tax added to prices, a 10 % code and a 50 % code with a minimum the cart does not meet. Headless
Chromium (tests/e2e/browser/pricing_journey.mjs), signed out, adds two of a 40.00 product (stock 3)
to a guest cart, sets the destination, picks Express, tries an unknown code, the too-small one and
the good one, then signs in from "Sign in to check out" as a shopper whose own cart already holds
two: the merge keeps the guest's destination, method and code, caps the quantity at the stock (the
notice is shown once), and the order is placed at the breakdown the checkout showed. The test
asserts on what the pages showed and on the order in the graph afterwards.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.browser_steps import run_journey, storefront_served
from tests.e2e.pricing_helpers import DISCOUNT, METHOD, TAX, ZONE, country
from tests.e2e.storefront import ADDRESS, PASSWORD, Storefront
from tests.support.graphql import gql

__all__ = ["storefront_served"]  # the fixture (tests/e2e/browser_steps.py), shared by the browser journeys

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
MINUS, EN_DASH, APOSTROPHE = "\u2212", "\u2013", "\u2019"  # as the pages write them


async def _admin(url: str, client: httpx.AsyncClient, token: str, query: str, input: dict[str, Any]) -> Any:
    result = await gql(url, query, {"input": input}, token, client=client)
    assert "errors" not in result, result
    (payload,) = result["data"].values()
    assert payload["userErrors"] == [], payload
    return payload


async def test_a_guest_cart_priced_then_signed_in_and_ordered(
    storefront_served: Path,
    router_url: str,
    ours: Storefront,
    demo_accounts: dict[str, tuple[str, str]],
) -> None:
    admin = (await ours.login(*demo_accounts["ADMIN"])).access_token
    tag = "Pr" + "".join(secrets.choice("bcdfghjkmnpqrstvwxz") for _ in range(8))
    where = country()
    async with httpx.AsyncClient(timeout=60) as client:

        async def rule(query: str, input: dict[str, Any]) -> Any:
            return await _admin(router_url, client, admin, query, input)

        zone = (await rule(ZONE, {"name": f"{tag} zone", "countries": [where]}))["zone"]["id"]
        flat = {"zoneId": zone, "rateType": "FLAT"}
        await rule(METHOD, {**flat, "name": "Standard", "flatRate": "5.00", "minDays": 2, "maxDays": 4})
        await rule(METHOD, {**flat, "name": "Express", "flatRate": "15.00", "minDays": 1, "maxDays": 1})
        await rule(TAX, {"country": where, "rate": "20"})
        good, too_small = f"{tag}-TEN".upper(), f"{tag}-HALF".upper()
        await rule(DISCOUNT, {"code": good, "title": "Ten off", "kind": "PERCENTAGE", "percentage": "10"})
        half = {"code": too_small, "title": "Half off", "kind": "PERCENTAGE", "percentage": "50"}
        await rule(DISCOUNT, {**half, "minSubtotal": "1000"})

    categories = (await ours.data("CategoryNav"))["categories"]
    product = {
        "sku": f"PR-{tag}",
        "name": f"{tag} Kettle",
        "description": "Boils.",
        "price": "40.00",
        "stock": 3,
        "categoryId": categories[0]["id"],
    }
    product_id = (await ours.data("AdminCreateProduct", {"input": product}, admin))["createProduct"]["product"]["id"]
    shopper = await ours.register("Gail Guest")
    # The account's own cart already holds two: with the guest's two, more than the stock of three.
    await ours.data("AddToCart", {"input": {"productId": product_id, "quantity": 2}}, shopper.access_token)

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "pricing_cart.png"
    shot.unlink(missing_ok=True)
    config = {
        "url": router_url.removesuffix("graphql"),
        "sku": product["sku"],
        "quantity": 2,
        "mergedQuantity": 3,
        "country": where,
        "express": "Express",
        "codes": {"unknown": f"{tag}-NOPE", "tooSmall": too_small, "good": good},
        "email": shopper.email,
        "password": PASSWORD,
        "address": ADDRESS,
        "shot": str(shot),
    }
    steps = await run_journey("pricing_journey.mjs", config, "pricing journey")

    added = steps["guest-added"]
    assert added == {"badge": "2", "hasToken": True, "signIn": 1}, "a signed-out shopper's cart, counted in the header"

    cart = steps["guest-cart"]
    assert cart["options"] == [f"Standard — $5.00 (2{EN_DASH}4 business days)", "Express — $15.00 (1 business day)"]
    assert cart["unknown"] == "There is no such code."
    assert cart["refused"] == f"Your cart is below this code{APOSTROPHE}s minimum spend."
    # One entered code at a time: the good one replaced the refused one.
    assert cart["codes"] == [f"{good} Ten off {MINUS}$8.00"]
    assert cart["lineDiscount"] == f"{MINUS}$8.00" and cart["lineTax"] == "tax $14.40"
    # 80.00 - 8.00 + 15.00 shipping + 20 % of 72.00
    assert cart["breakdown"] == {
        "subtotal": "$80.00",
        "discounts": f"{MINUS}$8.00",
        "shipping": "$15.00",
        "tax": "$14.40",
        "total": "$101.40",
    }

    checkout = steps["checkout"]
    assert checkout["path"] == "/checkout", "back where the guest was going after signing in"
    assert checkout["token"] is None, "the guest token is forgotten once merged"
    assert checkout["badge"] == "3"
    assert checkout["notices"] == [f"Only 3 of {product['name']} can be in the cart."]
    assert checkout["method"] == "Shipping: Express (1 business day)"
    assert checkout["discounts"] == [f"{good}: {MINUS}$12.00"]
    # The guest's destination, method and code came along: 120.00 - 12.00 + 15.00 + 20 % of 108.00
    placed_at = {
        "subtotal": "$120.00",
        "discounts": f"{MINUS}$12.00",
        "shipping": "$15.00",
        "tax": "$21.60",
        "total": "$144.60",
    }
    assert checkout["breakdown"] == placed_at

    ordered = steps["ordered"]
    assert ordered["breakdown"] == placed_at and ordered["orderTotal"] == "$144.60"
    assert ordered["method"].startswith("Shipping: Express")
    assert ordered["codes"] == f"Discounts: {good}"
    assert steps["reloaded"] == {"notices": 0, "badge": "0"}, "notices shown once; the cart was ordered"

    # The graph agrees: the order keeps the breakdown it was placed at.
    order = (await ours.data("OrderDetail", {"number": ordered["number"]}, shopper.access_token))["order"]
    assert {k: order["cost"][k]["amount"] for k in ("subtotal", "discounts", "shipping", "tax", "total")} == {
        "subtotal": "120.00",
        "discounts": "12.00",
        "shipping": "15.00",
        "tax": "21.60",
        "total": "144.60",
    }
    assert order["discountCodes"] == [good] and [i["quantity"] for i in order["items"]] == [3]

    done = steps["done"]
    assert {page: found for page, found in done["accessibility"].items() if found} == {}, "axe violations"
    problems = [line for line in done["console"] if line.startswith(("error:", "pageerror"))]
    assert problems == [], "the pages logged errors"
    assert shot.stat().st_size > 10_000
