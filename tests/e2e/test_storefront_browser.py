"""The storefront and the admin dashboard in a real browser, against the real stack.

The app is built with Vite (frontend_contract/app) and served by the router at ``/``, as
``shopgraph dev`` serves it. Headless Chromium (Debian's, driven by playwright-core from
tests/e2e/browser/storefront_journey.mjs) plays a shopper and an administrator in two browser
contexts: the shopper signs up, searches, filters, adds to the cart, asks for more than is in
stock (the error shows beside that line), changes the quantity,
checks out, pays on the test provider's page in a tab of its own (card 4242 4242 4242 4242) and
watches the order page, left open, turn PAID live while the administrator watches the live orders
feed; the admin's sales dashboard then counts the order and draws a new point. A second order paid
with the declined card (4000 0000 0000 0002) shows the decline plainly and the order cancelled.
Then the feed's WebSocket is dropped while the order ships: back online, the feed shows the
missed event once (it resubscribes after the last event id it showed). Each page on the way is
checked with axe-core against WCAG 2 A/AA (no serious or critical
violations).
This test asserts on what the pages showed (texts, counts, totals) and on the graph afterwards
(one order for a double click). Screenshots are left in tests/e2e/artifacts/.
"""

from __future__ import annotations

import secrets
from decimal import Decimal
from pathlib import Path

from tests.e2e.browser_steps import run_journey, storefront_served
from tests.e2e.storefront import ADDRESS, PASSWORD, Storefront

__all__ = ["storefront_served"]  # the fixture (tests/e2e/browser_steps.py), shared by the browser journeys

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def _fresh_screenshot_paths(*names: str) -> dict[str, str]:
    ARTIFACTS.mkdir(exist_ok=True)
    shots = {name: ARTIFACTS / f"storefront_{name}.png" for name in names}
    for shot in shots.values():
        shot.unlink(missing_ok=True)
    return {name: str(shot) for name, shot in shots.items()}


def _sizes(files: dict[str, str]) -> dict[str, int]:
    return {name: Path(file).stat().st_size for name, file in files.items()}


def _dollars(text: str) -> Decimal:
    assert text.startswith("$"), text
    return Decimal(text[1:].replace(",", ""))


async def test_a_shopper_orders_and_the_admin_sees_it_live(
    storefront_served: Path,
    router_url: str,
    ours: Storefront,
    demo_accounts: dict[str, tuple[str, str]],
) -> None:
    admin = await ours.login(*demo_accounts["ADMIN"])
    categories = (await ours.data("CategoryNav"))["categories"]
    tag = "Sf" + "".join(secrets.choice("bcdfghjkmnpqrstvwxz") for _ in range(8))
    lantern, deluxe = f"{tag} Lantern", f"{tag} Lantern Deluxe"
    for name, price, stock in ((lantern, "24.50", 20), (deluxe, "99.00", 0)):
        product = {
            "sku": f"SF-{tag}-{stock}",
            "name": name,
            "description": "Lights the way.",
            "price": price,
            "stock": stock,
            "categoryId": categories[0]["id"],
        }
        await ours.data("AdminCreateProduct", {"input": product}, admin.access_token)

    shots = _fresh_screenshot_paths("listing", "search", "order", "feed", "dashboard")
    admin_email, admin_password = demo_accounts["ADMIN"]
    config = {
        "url": router_url.removesuffix("graphql"),
        "tag": tag,
        "email": f"browser-{tag.lower()}@example.com",
        "password": PASSWORD,
        "admin": {"email": admin_email, "password": admin_password},
        "category": categories[1]["slug"],
        "address": ADDRESS,
        "shots": shots,
    }
    steps = await run_journey("storefront_journey.mjs", config, "browser journey")

    listing = steps["listing"]
    assert listing["cards"] == 24, listing  # a full first page of the category
    assert listing["count"].endswith(" products"), listing
    assert steps["signed-up"] == {"name": "Sam Browser", "path": "/"}
    assert steps["searched"]["count"] == "2 products"
    assert sorted(steps["searched"]["names"]) == [lantern, deluxe]
    assert steps["searched"]["heading"] == f"Search: {tag}"
    filtered = steps["filtered"]
    assert filtered["count"] == "1 product" and filtered["names"] == [lantern]
    assert f"q={tag}" in filtered["query"] and "inStock=1" in filtered["query"], "filters live in the URL"
    assert steps["added"] == {"name": lantern, "price": "$24.50"}
    cart = steps["cart"]
    assert cart.pop("stockError") == {
        "message": f"Only 20 of {lantern} in stock.",
        "describes": True,  # the quantity field's aria-describedby points at the message
        "invalid": "true",
        "quantity": "1",  # nothing changed
    }
    assert cart == {"lines": 1, "quantity": "3", "lineTotal": "$73.50", "subtotal": "$73.50", "badge": "3"}

    ordered = steps["ordered"]
    number = ordered["number"]
    assert number.startswith("SG-")
    # "Pending payment": the Status component's label of PENDING_PAYMENT.
    assert ordered["status"] == "Pending payment" and ordered["total"] == "$73.50"
    assert ordered["path"] == f"/orders/{number}" and ordered["badge"] == "0"
    assert ordered["sawEmptyCart"] is False, "the page showed 'Your cart is empty' before the order"
    # The double click on "Place order" placed one order (one idempotency key per attempt).
    # (And the second order, paid with the declined card, was cancelled.)
    declined = steps["declined"]
    shopper = await ours.login(str(config["email"]), PASSWORD)  # the page keeps its tokens from scripts
    history = (await ours.data("OrderHistory", {"first": 5}, shopper.access_token))["me"]["orders"]
    assert history["totalCount"] == 2
    assert [(e["node"]["number"], e["node"]["status"]) for e in history["edges"]] == [
        (declined["number"], "CANCELLED"),
        (number, "SHIPPED"),
    ]
    assert declined["status"] == "Cancelled", "the order page showed the cancel live"
    assert declined["alert"].startswith("Your card was declined (card declined)"), declined
    assert "Nothing was charged and the order was cancelled" in declined["alert"]

    paid = steps["paid"]
    assert paid["status"] == "Paid", "the order page followed the status live"
    assert "Paid" in paid["row"] and config["email"] in paid["row"]
    assert any(e.startswith("Created") for e in paid["events"]) and any(e.startswith("Paid") for e in paid["events"])

    before, after = steps["dashboard-before"], steps["dashboard-after"]
    assert int(after["orders"]) == int(before["orders"]) + 1
    assert _dollars(after["revenue"]) == _dollars(before["revenue"]) + Decimal("73.50")
    assert before["points"] == after["points"] == 24, "the last day in hourly buckets, from the first paint"
    assert after["seriesOrders"] > before["seriesOrders"], "the history chart counted the paid order live"
    legends = {chart: sorted(entries) for chart, entries in after["legends"].items()}
    assert legends == {"timeline": ["Paid orders", "Revenue (USD)"], "top": ["Revenue (USD)"]}, "legends with units"
    assert after["bars"] == len(after["top"]) == after["svgBars"] >= 1
    # The feed lost its connection, the order shipped meanwhile, and the feed showed that event once.
    assert steps["resumed"] == {
        "whileDown": {"state": "connecting", "events": ["Paid", "Created"]},
        "events": ["Shipped", "Paid", "Created"],
    }
    audited = steps["accessibility"]
    assert len(audited) == 10, sorted(audited)
    assert {page: found for page, found in audited.items() if found} == {}, "serious or critical axe violations"
    refused = "ws://127.0.0.1:9/"  # the feed's reconnects while the test kept it offline
    console = [line for line in steps["done"]["console"] if refused not in line]
    problems = [line for line in console if " error: " in line or "pageerror" in line]
    assert problems == [], "the pages logged errors"
    for name, size in _sizes(shots).items():
        assert size > 10_000, f"the {name} screenshot is (nearly) empty"
    print(
        f"listing interactive after {listing['ms']} ms (cold, warm); from the click on 'Place order': "
        f"order page {ordered['orderPageMs']} ms, event in the admin feed {paid['seenInFeedMs']} ms, "
        f"dashboard updated {after['updatedMs']} ms; PAID on the shopper's page {paid['liveMs']} ms after "
        "the card was submitted on the provider's page"
    )
