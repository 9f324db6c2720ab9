"""The cart subgraph dies mid-journey: the shop stays open and kind (issue 20).

A router process serves the storefront over the session's stack, except that its cart subgraph is
a ``shopgraph serve cart`` process of the test's own. A signed-out shopper on a 390 px phone
(tests/e2e/browser/cart_outage.mjs) fills a guest cart and opens it; the test kills the cart
process (SIGKILL). Opened again, the cart page says "Cart is unavailable right now — try again."
where the cart would be, the header names no count (never "Cart 0"), and no raw error text (the
router's "HTTP fetch failed from 'cart'", GraphQL's "Cannot return null for non-nullable field")
reaches the page; a category, a product and the home page still work, and "Add to cart" says the
cart is unavailable.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.stack import ThreadedStack, serve_environment
from tests.e2e.browser_steps import journey, read_steps, storefront_served  # noqa: F401 (a fixture)
from tests.e2e.router_process import start
from tests.e2e.storefront import Storefront
from tests.router.router_harness import free_port

ROOT = Path(__file__).resolve().parents[2]
KIND = "Cart is unavailable right now — try again."
RAW = ("HTTP fetch failed", "Cannot return null", "non-nullable", "Connection refused", "'cart'", "went wrong:")


@pytest.fixture
def cart_process(stack: ThreadedStack) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """The cart subgraph in a process of its own, configured like the stack's, on a port of its own."""
    port = free_port()
    command = [sys.executable, "-m", "deploy.cli", "serve", "cart", "--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, **serve_environment(stack.settings)}
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, "the cart subgraph exited during start-up"
            try:
                if httpx.get(base + "/health", trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the cart subgraph did not start"
            time.sleep(0.1)
        yield proc, base + "/graphql"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


async def _step(script: asyncio.subprocess.Process, word: str, within: float = 120) -> dict[str, Any]:
    """Read the script's output up to its ``word`` step (fails on its ``error``)."""
    assert script.stdout is not None
    async with asyncio.timeout(within):
        async for raw in script.stdout:
            got, _, data = raw.decode().rstrip("\n").partition(" ")
            if got == "error":
                raise AssertionError(f"the cart outage journey failed before {word}: {data}")
            if got == word:
                found: dict[str, Any] = json.loads(data)
                return found
    raise AssertionError(f"the cart outage journey ended before {word}")


def _raw_text(body: str) -> list[str]:
    return [raw for raw in RAW if raw in body]


async def test_a_dead_cart_subgraph_leaves_the_shop_open_and_kind(
    storefront_served: Path,  # noqa: F811
    stack: ThreadedStack,
    ours: Storefront,
    demo_accounts: dict[str, tuple[str, str]],
    cart_process: tuple[subprocess.Popen[bytes], str],
    tmp_path: Path,
) -> None:
    admin = await ours.login(*demo_accounts["ADMIN"])
    categories = (await ours.data("CategoryNav"))["categories"]
    tag = "Co" + secrets.token_hex(4)
    product = {
        "sku": f"CO-{tag}",
        "name": f"{tag} Umbrella",
        "description": "For when things fail.",
        "price": "15.00",
        "stock": 10,
        "categoryId": categories[0]["id"],
    }
    await ours.data("AdminCreateProduct", {"input": product}, admin.access_token)
    cart, cart_url = cart_process
    killed = tmp_path / "cart-killed"
    # Pages rendered by the session's renderer (its data from the stack's router: a product page has
    # no cart in it); in the browser every query goes to this router, whose cart is the one killed.
    env = {name: os.environ[name] for name in ("SHOPGRAPH_STOREFRONT_DIR", "SHOPGRAPH_STOREFRONT_SSR_URL")}
    for router in start(stack, tmp_path, {}, env, urls={"cart": cart_url}):
        config = {"url": router.url, "sku": product["sku"], "killed": str(killed)}
        async with journey("cart_outage.mjs", config) as script:
            carted = await _step(script, "carted")
            cart.kill()  # SIGKILL: no goodbye to the router
            cart.wait()
            killed.touch()
            steps = await read_steps(script, "cart outage journey")

    assert carted == {"lines": 1, "badge": "1"}
    down = steps["cart-down"]
    assert KIND in down["body"] and down["retry"] is True
    assert down["badges"] == 0 and down["cartLink"] == "Cart (unavailable)", "no made-up count in the header"
    browsed, product_page, home = steps["browsed"], steps["product"], steps["home"]
    assert browsed["cards"] >= 1 and browsed["path"] == "/products"
    assert product_page["price"] == "$15.00" and KIND in product_page["body"]
    assert home["path"] == "/"
    for name in ("cart-down", "browsed", "product", "home"):
        assert _raw_text(steps[name]["body"]) == [], f"raw error text on the {name} page"
        assert "Cart 0" not in steps[name]["cartLink"].replace("(unavailable)", "")
    assert [line for line in steps["done"]["console"] if "pageerror" in line] == []
