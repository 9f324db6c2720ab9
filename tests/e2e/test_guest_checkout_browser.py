"""A guest's checkout in a real browser, against the real stack (issue 17's storefront).

Headless Chromium (tests/e2e/browser/guest_checkout_journey.mjs), signed out: on a category's page
an option value's facet narrows the listing to the count it showed (kept in the URL); on the product page
the variant picker shows the chosen variant's own price and stock; the shopper adds it, checks out
as a guest from the cart with an e-mail address (a malformed one is refused beside the field),
sees the order on its lookup page, pays for it there (still signed out) and sees it turn Paid,
creates an account with that address from there, and finds the
order in the account's order history; the lookup link opens nothing afterwards. Every page on the
way is checked with axe-core. The test asserts on what the pages showed and on the graph afterwards.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx

from tests.e2e.browser_steps import run_journey, storefront_served
from tests.e2e.pricing_helpers import country
from tests.e2e.storefront import ADDRESS, PASSWORD, Storefront
from tests.integration.shop_helpers import CARD_OK
from tests.support.graphql import gql

__all__ = ["storefront_served"]  # the fixture (tests/e2e/browser_steps.py), shared by the browser journeys

CREATE = """
mutation($input: CreateProductInput!) { createProduct(input: $input) { product { id } userErrors { code message } } }
"""
TIMES = "\u00d7"  # as the page writes it
ORDERS = "{ orders(first: 5) { edges { node { number status guestEmail items { quantity sku } } } } }"


async def test_a_guest_checks_out_with_an_email_then_signs_up_and_finds_the_order(
    storefront_served: Path,
    router_url: str,
    ours: Storefront,
    demo_accounts: dict[str, tuple[str, str]],
) -> None:
    admin = (await ours.login(*demo_accounts["ADMIN"])).access_token
    tag = "Gc" + "".join(secrets.choice("bcdfghjkmnpqrstvwxz") for _ in range(8))
    sku = f"GC-{tag}".upper()
    product = {
        "sku": sku,
        "name": f"{tag} Scarf",
        "description": "Warm.",
        "price": "20.00",
        "options": [{"name": "Colour", "values": ["Rust", "Teal"]}],
        "variants": [
            {"sku": f"{sku}-RUS", "options": [{"name": "Colour", "value": "Rust"}], "stock": 9},
            {"sku": f"{sku}-TEA", "options": [{"name": "Colour", "value": "Teal"}], "price": "26.50", "stock": 4},
        ],
    }
    async with httpx.AsyncClient(timeout=60) as client:
        created = await gql(router_url, CREATE, {"input": product}, admin, client=client)
    assert created["data"]["createProduct"]["userErrors"] == [], created
    email = f"guest-{secrets.token_hex(6)}@example.com"
    config = {
        "url": router_url.removesuffix("graphql"),
        "sku": sku,
        "variant": {"value": "Teal"},
        "facet": {"category": "apparel", "option": "Colour"},
        "email": email,
        "password": PASSWORD,
        "address": ADDRESS,
        "country": country(),  # no shipping or tax rule prices it: the order costs its line
        "card": CARD_OK,
    }
    steps = await run_journey("guest_checkout_journey.mjs", config, "guest checkout journey")

    facets = steps["facets"]
    assert facets["narrowed"] == f"{facets['counted']} products", facets
    assert f"opt=Colour:{facets['value']}" in facets["url"] and int(facets["all"].split()[0]) > facets["counted"]

    variant = steps["variant"]
    assert variant == {"before": "$20.00", "price": "$26.50", "stock": "In stock (4 available)"}

    ordered = steps["ordered"]
    assert ordered["emailError"] == "Enter a valid e-mail address."
    assert ordered["path"] == "/order-status" and ordered["number"].startswith("SG-")
    assert ordered["email"] == f"Placed as a guest with {email}."
    assert ordered["items"] == [f"1 {TIMES} {product['name']} — Teal $26.50"]
    assert ordered["total"] == "Total $26.50"
    assert ordered["kept"] == 1 and ordered["badge"] == "0"
    assert ordered["sawEmptyCart"] is False, "the page showed 'Your cart is empty' before the order"

    assert steps["paid"] == {"path": "/order-status", "status": "Paid", "payNow": 0}

    claimed = steps["claimed"]
    assert claimed["path"] == "/orders" and claimed["prefilled"] == email
    assert any(row.startswith(ordered["number"]) for row in claimed["rows"]), claimed["rows"]
    assert claimed["kept"] == 0, "a claimed order's token is forgotten"

    done = steps["done"]
    assert {page: found for page, found in done["accessibility"].items() if found} == {}, "axe violations"
    problems = [line for line in done["console"] if line.startswith(("error:", "pageerror"))]
    assert problems == [], problems

    # The graph agrees: the account (signed in anew) owns the order placed as a guest.
    account = await ours.login(email, PASSWORD)
    async with httpx.AsyncClient(timeout=60) as client:
        mine = await gql(router_url, ORDERS, None, account.access_token, client=client)
    (node,) = [e["node"] for e in mine["data"]["orders"]["edges"]]
    assert node == {
        "number": ordered["number"],
        "status": "PAID",
        "guestEmail": email,
        "items": [{"quantity": 1, "sku": f"{sku}-TEA"}],
    }
