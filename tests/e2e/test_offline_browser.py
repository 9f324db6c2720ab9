"""Issue 20: installable and offline (tests/e2e/browser/offline_journey.mjs) over the real stack: the web app
manifest, the service worker taking the page, visited product and category pages opening offline
from what it kept under a clear notice, and the cart refusing a change offline at once."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.browser_steps import run_journey, storefront_served  # noqa: F401 (a fixture)
from tests.e2e.storefront import Storefront


async def test_visited_pages_work_offline_and_the_cart_queues_nothing(
    storefront_served: Path,  # noqa: F811
    router_url: str,
    ours: Storefront,
) -> None:
    categories = (await ours.data("CategoryNav"))["categories"]
    config = {"url": router_url.removesuffix("/graphql"), "category": categories[0]["slug"]}
    steps = await run_journey("offline_journey.mjs", config, "offline journey", within=120)

    assert steps["installed"]["manifest"] == {
        "name": "Shopgraph",
        "display": "standalone",
        "startUrl": "/",
        "icons": ["192x192", "512x512", "512x512"],
    }
    visited = steps["visited"]
    assert visited["cards"] > 0 and visited["path"].startswith("/p/")

    offline = steps["offline-product"]
    assert offline["product"] == visited["product"]
    assert offline["notice"].startswith("You are offline.")
    assert offline["addError"] == "You are offline: nothing was changed. Try again when you are back online."
    assert offline["adding"] == 0 and offline["added"] == 0 and offline["badge"] == "0"

    category = steps["offline-category"]
    assert category["cards"] == visited["cards"] and category["notice"] == 1
    # Served from what the worker kept, not from the network (which the context cut): the product page,
    # reached by a link (no page of its own was loaded), renders in the shell from the kept answer; the
    # category page, loaded as a page, shows as it was last served (its data in it).
    assert "ProductDetailBySku" in category["kept"], category
    assert steps["online"] == {"notice": 0}
    assert steps["done"]["console"] == [] or all(
        "net::ERR_INTERNET_DISCONNECTED" in line or "Failed to load resource" in line
        for line in steps["done"]["console"]
    ), steps["done"]
