"""Every page, shopper and admin, at 360, 390, 768 and 1280 px in a real browser: none is wider than
the viewport (``document.documentElement.scrollWidth <= innerWidth``), with real content on it (a
cart with a line, an order history, the admin's orders, sales charts and products). On phones a
category page shows products on its first screen, two to a row, with its filters in a drawer that
opens over the page and closes again; from 768 px the filters are a sidebar.

tests/e2e/browser/viewports.mjs drives Debian's Chromium; screenshots of the category page at each
phone width (and its open drawer) are left in tests/e2e/artifacts/.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from tests.e2e.browser_steps import run_journey, storefront_served  # noqa: F401 (a fixture)
from tests.e2e.storefront import ADDRESS, PASSWORD, Storefront

WIDTHS = (360, 390, 768, 1280)
PHONES = (360, 390)
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CARD = "[data-testid=product-card]"


async def _shop(ours: Storefront, admin_token: str) -> dict[str, Any]:
    """A product with a long name, a shopper with an order of it and a line in the cart."""
    categories = (await ours.data("CategoryNav"))["categories"]
    tag = "Vp" + "".join(secrets.choice("bcdfghjkmnpqrstvwxz") for _ in range(8))
    product = {
        "sku": f"VP-{tag}",
        # A long name without spaces: a card or a table cell must wrap it, not widen the page.
        "name": f"{tag} Extraordinarilylongunbreakableproductname",
        "description": "Fits any screen.",
        "price": "1234.50",
        "stock": 50,
        "categoryId": categories[0]["id"],
    }
    created = (await ours.data("AdminCreateProduct", {"input": product}, admin_token))["createProduct"]["product"]
    shopper = await ours.register("Vic Viewport")
    line = {"productId": created["id"], "quantity": 2}
    await ours.data("AddToCart", {"input": line}, shopper.access_token)
    checkout = {"idempotencyKey": secrets.token_hex(8), "shippingAddress": ADDRESS}
    order = (await ours.data("Checkout", {"input": checkout}, shopper.access_token))["checkout"]["order"]
    await ours.data("AddToCart", {"input": line}, shopper.access_token)
    return {
        "tag": tag,
        "sku": product["sku"],
        "email": shopper.email,
        "order": order["number"],
        "categories": categories,
    }


async def test_no_page_is_wider_than_a_phone(
    storefront_served: Path,  # noqa: F811
    router_url: str,
    ours: Storefront,
    demo_accounts: dict[str, tuple[str, str]],
) -> None:
    admin_email, admin_password = demo_accounts["ADMIN"]
    admin = await ours.login(admin_email, admin_password)
    shop = await _shop(ours, admin.access_token)
    category = f"/products?category={shop['categories'][0]['slug']}"
    pages = {
        # No two pages in a row of the same component (the script waits for fresh content).
        "anonymous": [
            {"path": "/", "ready": CARD},
            {"path": f"/products?q={shop['tag']}", "ready": CARD},
            {"path": f"/p/{shop['sku']}", "ready": "[data-testid=product-price]"},
            {"path": category, "ready": CARD},
            {"path": "/cart", "ready": "main h1"},
            {"path": "/signin", "ready": "main form"},
            {"path": "/signup", "ready": "main form"},
            {"path": "/forgot-password", "ready": "main form"},
            {"path": "/reset-password?token=not-a-token", "ready": "main h1"},
            {"path": "/checkout/guest", "ready": "main h1"},
            {"path": "/order-status", "ready": "main h1"},
            {"path": "/no-such-page", "ready": "main a[href='/']"},
        ],
        "shopper": [
            {"path": "/cart", "ready": "[data-testid=cart-line]"},
            {"path": "/checkout", "ready": "main form button.primary"},
            {"path": "/orders", "ready": "table.orders tbody tr"},
            {"path": f"/orders/{shop['order']}", "ready": "[data-testid=order-status]"},
            {"path": "/account", "ready": "main form"},
        ],
        "admin": [
            {"path": "/admin", "ready": "[data-testid=admin-orders] tbody tr"},
            {"path": "/admin/sales", "ready": "[data-testid=chart-timeline] svg"},
            {"path": "/admin/products", "ready": "table.products-admin tbody tr"},
        ],
    }
    ARTIFACTS.mkdir(exist_ok=True)
    shots: dict[int, dict[str, str]] = {
        width: {kind: str(ARTIFACTS / f"viewport_{width}_{kind}.png") for kind in ("category", "drawer")}
        for width in PHONES
    }
    # The pages whose tables became cards or scroll, and the charts, as a phone shows them.
    for who, path, name in (
        ("shopper", "/orders", "orders"),
        ("admin", "/admin", "admin_orders"),
        ("admin", "/admin/sales", "admin_sales"),
        ("admin", "/admin/products", "admin_products"),
    ):
        shots[360][f"{who} {path}"] = str(ARTIFACTS / f"viewport_360_{name}.png")
    config = {
        "url": router_url.removesuffix("graphql"),
        "widths": WIDTHS,
        "shopper": {"email": shop["email"], "password": PASSWORD},
        "admin": {"email": admin_email, "password": admin_password},
        "pages": pages,
        "category": category,
        "shots": shots,
    }
    steps = await run_journey("viewports.mjs", config, "viewport journey", within=300)

    every = sum(len(p) for p in pages.values())
    for width in WIDTHS:
        measured = steps[f"width-{width}"]
        assert len(measured) == every, sorted(measured)
        too_wide = {page: m for page, m in measured.items() if m["scrollWidth"] > m["innerWidth"]}
        assert too_wide == {}, f"pages wider than {width} px"
        assert all(m["innerWidth"] == width for m in measured.values())

        listing = steps[f"category-{width}"]
        if width in PHONES:
            assert listing["columns"] == 2, listing
            assert listing["cardsOnFirstScreen"] >= 2, "the first screen shows products"
            assert listing["filtersShown"] is False, "the filters wait in their drawer"
            drawer = listing["drawer"]
            assert drawer["opened"] and drawer["expanded"] == "true" and drawer["sortInside"], drawer
            assert drawer["scrollWidth"] <= drawer["innerWidth"], drawer
            assert drawer["closed"], drawer
        else:
            assert listing["filtersShown"] is True and "drawer" not in listing, listing
            assert listing["columns"] >= (3 if width >= 1280 else 2), listing  # beside the sidebar
    errors = [line for line in steps["done"]["console"] if "pageerror" in line]
    assert errors == [], errors
