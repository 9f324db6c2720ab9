"""The storefront rendered on the server: what a crawler, a link preview or a browser without
JavaScript gets, through the real router and the build's real page renderer (node).

The pages' HTML already holds the product (name, price) and its schema.org JSON-LD before any
script runs; unknown products and paths answer 404 with a search box; sitemap.xml and robots.txt
come from the catalog; in Chromium with JavaScript off a shopper browses home → category →
product → search, and with it on the pages hydrate from the server's data without asking the
graph again and without a hydration error (tests/e2e/browser/ssr_journey.mjs).
"""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.browser_steps import run_journey, storefront_served
from tests.e2e.storefront import Storefront

__all__ = ["storefront_served"]

HTML = {"accept": "text/html"}


@pytest.fixture(scope="module")
async def listed(ours: Storefront, demo_accounts: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """A product of our own, with a known name, price and description, in the first category."""
    admin = await ours.login(*demo_accounts["ADMIN"])
    category = (await ours.data("CategoryNav"))["categories"][0]
    tag = "Ssr" + "".join(secrets.choice("bcdfghjkmnpqrstvwxz") for _ in range(8))
    product = {
        "sku": f"SSR-{tag.upper()}",  # the catalog keeps SKUs upper-case
        "name": f"{tag} Kettle",
        "description": "Boils water <quickly> & quietly.",
        "price": "24.50",
        "stock": 7,
        "categoryId": category["id"],
    }
    await ours.data("AdminCreateProduct", {"input": product}, admin.access_token)
    return {**product, "tag": tag, "category": category}


def _scripts(html: str) -> list[str]:
    return re.findall(r"<script\b[^>]*>", html)


def _json_ld(html: str) -> Any:
    found = re.findall(r'<script type="application/ld\+json"[^>]*>(.*?)</script>', html, re.S)
    assert len(found) == 1, found
    return json.loads(found[0])


def _meta(html: str, attribute: str, name: str) -> str:
    found = re.search(rf'<meta {attribute}="{re.escape(name)}" content="([^"]*)"', html)
    assert found, f"no meta {name}"
    return found[1]


async def test_the_product_page_is_in_the_html_before_any_script(
    storefront_served: Path, router_url: str, listed: dict[str, Any]
) -> None:
    base = router_url.removesuffix("graphql")
    async with httpx.AsyncClient(timeout=60) as client:
        page = await client.get(f"{base}p/{listed['sku']}", headers=HTML)
    assert page.status_code == 200
    html = page.text
    body = html.split("<body>", 1)[1]
    assert f'<h1 tabindex="-1">{listed["name"]}</h1>' in body
    assert 'data-testid="product-price"><span class="money">$24.50</span>' in body
    assert "Boils water &lt;quickly&gt; &amp; quietly." in body
    head = html.split("</head>", 1)[0]
    assert f"<title>{listed['name']} · Shopgraph</title>" in head
    assert _meta(head, "name", "description") == "Boils water &lt;quickly&gt; &amp; quietly."
    assert _meta(head, "property", "og:title") == listed["name"]
    assert _meta(head, "property", "og:type") == "product"
    assert f'<link rel="canonical" href="{base}p/{listed["sku"]}"' in head
    product = _json_ld(head)
    assert product["@type"] == "Product" and product["name"] == listed["name"] and product["sku"] == listed["sku"]
    assert product["description"] == "Boils water <quickly> & quietly."  # "<" escaped as \\u003c in the page
    assert product["offers"] == {
        "@type": "Offer",
        "sku": listed["sku"],
        "price": "24.50",
        "priceCurrency": "USD",
        "availability": "https://schema.org/InStock",
    }
    # No inline script runs (the Content-Security-Policy allows none): data blocks and the app's module only.
    for tag in _scripts(html):
        assert 'type="application/' in tag or re.search(r'type="module"[^>]*src="/assets/', tag), tag
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "private, no-cache"  # no shared cache keeps a page


async def test_unknown_products_and_paths_answer_404_with_a_search_box(
    storefront_served: Path, router_url: str
) -> None:
    base = router_url.removesuffix("graphql")
    async with httpx.AsyncClient(timeout=60) as client:
        for path in ("p/NO-SUCH-PRODUCT-0", "no/such/page", "products?category=no-such-category"):
            page = await client.get(base + path, headers=HTML)
            assert page.status_code == 404, path
            assert "content-security-policy" in page.headers
            if path != "products?category=no-such-category":
                form = re.search(r'<form role="search"[^>]*>.*?</form>', page.text.split('id="main"', 1)[1], re.S)
                assert form and 'action="/products"' in form[0] and 'method="get"' in form[0], path
                assert re.search(r'<input id="not-found-search" type="search" name="q"', form[0]), path
                assert '<meta name="robots" content="noindex"' in page.text, path
        product = await client.get(base + "p/NO-SUCH-PRODUCT-0", headers=HTML)
    assert "There is no product NO-SUCH-PRODUCT-0." in product.text


async def test_sitemap_and_robots_come_from_the_catalog(
    storefront_served: Path, router_url: str, listed: dict[str, Any]
) -> None:
    base = router_url.removesuffix("graphql")
    async with httpx.AsyncClient(timeout=120) as client:
        sitemap = await client.get(base + "sitemap.xml")
        robots = await client.get(base + "robots.txt")
    assert sitemap.status_code == 200 and sitemap.headers["content-type"].startswith("application/xml")
    locs = re.findall(r"<loc>([^<]*)</loc>", sitemap.text)
    assert locs[:2] == [base, f"{base}products"]
    assert f"{base}products?category={listed['category']['slug']}" in locs
    assert f"{base}p/{listed['sku']}" in locs
    assert len(locs) == len(set(locs))
    assert robots.status_code == 200
    lines = robots.text.splitlines()
    assert lines[0] == "User-agent: *"
    assert {"Disallow: /checkout", "Disallow: /account", "Disallow: /graphql"} <= set(lines)
    assert f"Sitemap: {base}sitemap.xml" in lines


async def test_browsing_without_javascript_and_hydrating_with_it(
    storefront_served: Path, router_url: str, listed: dict[str, Any]
) -> None:
    category = listed["category"]
    config = {
        "url": router_url.removesuffix("/graphql"),
        "category": category["name"],
        "categorySlug": category["slug"],
        "search": listed["tag"],
        "product": f"/p/{listed['sku']}",
    }
    steps = await run_journey("ssr_journey.mjs", config, "server-rendered journey")
    assert steps["home"]["status"] == 200 and steps["home"]["heading"] == "Welcome to Shopgraph"
    assert steps["home"]["cards"] > 0 and steps["home"]["title"] == "Shopgraph"
    assert steps["category"]["heading"] == category["name"] and steps["category"]["cards"] > 0
    assert steps["category"]["count"].endswith(("product", "products"))
    product = steps["product"]
    assert product["heading"] == product["listed"] and product["title"] == f"{product['listed']} · Shopgraph"
    assert product["price"].startswith("$")
    assert steps["search"] == {"heading": f"Search: {listed['tag']}", "count": "1 product", "cards": 1}
    for path in (config["product"], f"/products?category={category['slug']}", "/"):
        hydrated = steps[f"hydrated:{path}"]
        assert hydrated["requests"] == [], f"{path} asked the graph again while hydrating: {hydrated}"
        assert hydrated["errors"] == [], hydrated
    assert steps["hydrated:" + config["product"]]["heading"] == listed["name"]
    navigated = steps["navigated"]
    assert "ProductList" in navigated["requests"], "after hydration the app reads the graph itself"
    assert navigated["heading"] == category["name"] and navigated["title"] == f"{category['name']} · Shopgraph"
    assert steps["done"]["console"] == []
