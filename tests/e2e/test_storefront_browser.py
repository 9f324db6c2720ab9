"""The storefront and the admin dashboard in a real browser, against the real stack.

The app is built with Vite (frontend_contract/app) and served by the router at ``/``, as
``shopgraph dev`` serves it. Headless Chromium (Debian's, driven by playwright-core from
tests/e2e/browser/storefront_journey.mjs) plays a shopper and an administrator in two browser
contexts: the shopper signs up, searches, filters, adds to the cart, asks for more than is in
stock (the error shows beside that line), changes the quantity,
checks out, and watches the order turn PAID live when the administrator marks it paid from
the live orders feed; the admin's sales dashboard then counts the order and draws a new point.
Then the feed's WebSocket is dropped while the order ships: back online, the feed shows the
missed event once (it resubscribes after the last event id it showed). Each page on the way is
checked with axe-core against WCAG 2 A/AA (no serious or critical
violations).
This test asserts on what the pages showed (texts, counts, totals) and on the graph afterwards
(one order for a double click). Screenshots are left in tests/e2e/artifacts/.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from frontend_contract import build
from tests.e2e.storefront import ADDRESS, PASSWORD, Storefront

HERE = Path(__file__).resolve().parent
BROWSER = HERE / "browser"
ARTIFACTS = HERE / "artifacts"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
JOURNEY_TIMEOUT = 180.0  # seconds for the whole browser script (it gives up by itself at 150 s)


@pytest.fixture(scope="module")
def storefront_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Chromium, playwright-core, and a fresh build of the app that the router serves at ``/``."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's Chromium "
            "(apt-get install -y chromium; .ci/run does this).",
            pytrace=False,
        )
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        pytest.fail("Node.js and npm are required by the browser tests: install Node.js 20 or later")
    if not (BROWSER / "node_modules" / "playwright-core" / "package.json").is_file():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=BROWSER, check=True, capture_output=True)
    if not build.installed():
        build.npm_ci()
    dist = build.build(tmp_path_factory.mktemp("storefront") / "dist")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SHOPGRAPH_STOREFRONT_DIR", str(dist))  # router/storefront.py reads it per request
        yield dist


@contextlib.asynccontextmanager
async def _journey(config: dict[str, Any]) -> AsyncIterator[asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(
        "node",
        "storefront_journey.mjs",
        json.dumps(config),
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
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()


async def _steps(proc: asyncio.subprocess.Process) -> dict[str, dict[str, Any]]:
    """Every ``<step> <json>`` line of the script by step; fails with the script's account on ``error``."""
    assert proc.stdout is not None
    steps: dict[str, dict[str, Any]] = {}
    other: list[str] = []
    async with asyncio.timeout(JOURNEY_TIMEOUT):
        async for raw in proc.stdout:
            line = raw.decode().rstrip("\n")
            word, _, data = line.partition(" ")
            if word == "error":
                account = json.dumps(json.loads(data), indent=2)
                raise AssertionError(f"the browser journey failed after {list(steps)}: {account}")
            if data.startswith("{"):
                steps[word] = json.loads(data)
            else:
                other.append(line)
        await proc.wait()
    assert proc.returncode == 0, f"the browser script exited {proc.returncode}: {other}"
    return steps


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
    async with _journey(config) as proc:
        steps = await _steps(proc)

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
    assert ordered["status"] == "Pending" and ordered["total"] == "$73.50"
    assert ordered["path"] == f"/orders/{number}" and ordered["badge"] == "0"
    # The double click on "Place order" placed one order (one idempotency key per attempt).
    history = (await ours.data("OrderHistory", {"first": 5}, ordered["session"]))["me"]["orders"]
    assert history["totalCount"] == 1
    assert [(e["node"]["number"], e["node"]["status"]) for e in history["edges"]] == [(number, "SHIPPED")]

    paid = steps["paid"]
    assert paid["status"] == "Paid", "the order page followed the status live"
    assert "Paid" in paid["row"] and config["email"] in paid["row"]
    assert any(e.startswith("Created") for e in paid["events"]) and any(e.startswith("Paid") for e in paid["events"])

    before, after = steps["dashboard-before"], steps["dashboard-after"]
    assert int(after["orders"]) == int(before["orders"]) + 1
    assert _dollars(after["revenue"]) == _dollars(before["revenue"]) + Decimal("73.50")
    assert after["points"] > before["points"], "the chart drew the new figures"
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
        "the admin's click"
    )
