"""GraphiQL's subscription tab against the router, in a real browser.

Headless Chromium (Debian's ``/usr/bin/chromium``, driven by playwright-core from
tests/e2e/browser/) opens the router's GraphiQL, which loads its assets from the router
itself (there is no internet here). The demo ADMIN's token goes into GraphiQL's *Headers*
tab, ``orderEvents`` is run in it, a shopper checks out through the router over HTTP, and
the event shows up in GraphiQL's result pane enriched with the product's name.
A screenshot is left in tests/e2e/artifacts/.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette

from deploy.stack import ThreadedStack
from router import graphiql
from router.subscriptions import SubscriptionService
from tests.e2e.storefront import ADDRESS, Storefront
from tests.support.npm import npm_ci_once
from tests.support.order_events import newest_event_id

HERE = Path(__file__).resolve().parent
BROWSER = HERE / "browser"
ARTIFACTS = HERE / "artifacts"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
# ``after`` the newest event (filled in): every later one arrives, however long the router's
# subscription takes to reach the orders subgraph.
EVENTS = 'subscription { orderEvents(after: "%s") { id type order { number items { product { name } } } } }'
STEP_TIMEOUT = 30.0  # seconds for any one step of the browser script


def _npm_ci(where: Path, marker: Path) -> None:
    """``npm ci`` in ``where`` unless ``marker`` exists (its package-lock.json is committed)."""
    assert shutil.which("npm") is not None, "npm is needed for the browser tests (it ships with Node.js)"
    npm_ci_once(where, marker, timeout=300)


@pytest.fixture(scope="module")
def browser_ready() -> None:
    """Chromium from Debian, playwright-core and the GraphiQL assets; installs only the npm packages."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's Chromium. Install it with\n"
            "    apt-get update && apt-get install -y chromium\n(.ci/run does this before the tests.)",
            pytrace=False,
        )
    assert shutil.which("node"), "node is needed for the browser tests"
    _npm_ci(BROWSER, BROWSER / "node_modules" / "playwright-core" / "package.json")
    _npm_ci(graphiql.ASSETS_DIR, graphiql.ASSETS["graphiql.min.js"].file)
    assert graphiql.assets_installed()


@contextlib.asynccontextmanager
async def _browser(*args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """The browser script, in a process group of its own; killed (browser and all) on the way out."""
    proc = await asyncio.create_subprocess_exec(
        "node",
        "graphiql_subscription.mjs",
        *args,
        cwd=BROWSER,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "CHROMIUM": str(CHROMIUM)},
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()


async def _step(proc: asyncio.subprocess.Process, want: str, within: float = STEP_TIMEOUT) -> dict[str, Any]:
    """Read the script's lines until ``want`` (its JSON data); fail on ``error`` or silence."""
    assert proc.stdout is not None
    seen: list[str] = []
    async with asyncio.timeout(within):
        while True:
            raw = await proc.stdout.readline()
            if not raw:
                raise AssertionError(f"the browser script ended before {want!r}: {''.join(seen)}")
            line = raw.decode()
            word, _, data = line.rstrip("\n").partition(" ")
            if word == want:
                parsed: dict[str, Any] = json.loads(data) if data else {}
                return parsed
            if word == "error":
                raise AssertionError(f"the browser script failed: {json.dumps(json.loads(data), indent=2)}")
            seen.append(line)


def _subscriptions(stack: ThreadedStack) -> SubscriptionService:
    """The router's subscription service (it counts open client subscriptions)."""
    app = stack.stack.router_app
    assert isinstance(app, Starlette), app
    service = app.state.subscriptions
    assert isinstance(service, SubscriptionService)
    return service


async def _subscriptions_open(stack: ThreadedStack, more_than: int, within: float = 10.0) -> None:
    """Wait until the router has more than ``more_than`` open client subscriptions."""
    service = _subscriptions(stack)
    for _ in range(int(within / 0.02)):
        if service.active > more_than:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the router never had more than {more_than} open subscriptions")


async def test_graphiql_shows_a_checkout_live_on_order_events(
    browser_ready: None,
    stack: ThreadedStack,
    router_url: str,
    ours: Storefront,
    demo_accounts: dict[str, tuple[str, str]],
) -> None:
    admin = await ours.login(*demo_accounts["ADMIN"])
    category = (await ours.data("CategoryNav"))["categories"][0]
    tag = "Gq" + secrets.token_hex(4)
    name = f"{tag} Teapot"
    product_input = {
        "sku": f"GQL-{tag}",
        "name": name,
        "description": "Pours.",
        "price": "31.00",
        "stock": 50,
        "imageUrl": f"https://img.example/{tag}.jpg",
        "categoryId": category["id"],
    }
    product = (await ours.data("AdminCreateProduct", {"input": product_input}, admin.access_token))["createProduct"]
    shopper = await ours.register("Gil Graphiql")
    await ours.data(
        "AddToCart", {"input": {"productId": product["product"]["id"], "quantity": 1}}, shopper.access_token
    )

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "graphiql_order_events.png"
    shot.unlink(missing_ok=True)
    headers = json.dumps({"Authorization": f"Bearer {admin.access_token}"})
    before = _subscriptions(stack).active
    events = EVENTS % await newest_event_id(stack.settings.database_url_for("orders"))
    async with _browser(router_url, headers, events, name, str(shot), "15000") as proc:
        await _step(proc, "running")
        await _subscriptions_open(stack, before)
        checkout = {"idempotencyKey": secrets.token_hex(8), "shippingAddress": ADDRESS}
        sent = time.time()
        order = (await ours.data("Checkout", {"input": checkout}, shopper.access_token))["checkout"]["order"]
        answered = time.time()
        seen = await _step(proc, "seen")
        done = await _step(proc, "done")
        assert await asyncio.wait_for(proc.wait(), 15) == 0

    event = json.loads(seen["text"])["data"]["orderEvents"]
    assert event["type"] == "CREATED"
    assert event["order"]["number"] == order["number"]
    assert event["order"]["items"] == [{"product": {"name": name}}]
    latency = seen["at"] - sent  # from sending the checkout to its event in GraphiQL's result pane
    assert latency < 5.0, f"the event took {latency:.2f}s to show up in GraphiQL"
    assert done["offsite"] == [], f"GraphiQL loaded something from off the router: {done['offsite']}"
    assert shot.stat().st_size > 10_000, "the screenshot is (nearly) empty"
    print(f"checkout sent -> answered {(answered - sent) * 1000:.0f} ms, -> in GraphiQL {latency * 1000:.0f} ms")
