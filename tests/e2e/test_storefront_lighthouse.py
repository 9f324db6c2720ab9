"""Lighthouse (npm, Debian's Chromium, mobile profile) on the server-rendered storefront.

Accessibility, best practices and SEO are asserted (≥ 90) on a product page and the cart: they do
not depend on how busy the machine is. Performance does (it is measured under simulated throttling
from what this machine did), so it is measured by hand and recorded in frontend_contract/README.md,
never asserted here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from pathlib import Path

from tests.e2e.browser_steps import BROWSER, CHROMIUM, storefront_served
from tests.e2e.storefront import Storefront

__all__ = ["storefront_served"]

STABLE = ("accessibility", "best-practices", "seo")
TIMEOUT = 240.0  # seconds for one page's audit on a loaded machine


async def _lighthouse(url: str) -> dict[str, float]:
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(BROWSER / "node_modules" / "lighthouse" / "cli" / "index.js"),
        url,
        f"--chrome-path={CHROMIUM}",
        "--chrome-flags=--headless=new --no-sandbox",
        f"--only-categories={','.join(STABLE)}",
        "--form-factor=mobile",
        "--output=json",
        "--output-path=stdout",
        "--quiet",
        cwd=BROWSER,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # Chromium goes with it on a timeout
    )
    try:
        async with asyncio.timeout(TIMEOUT):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
    assert proc.returncode == 0, f"lighthouse exited {proc.returncode}: {err.decode()[-2000:]}"
    report = json.loads(out)
    assert not report.get("runtimeError"), report["runtimeError"]
    failing = [
        (audit["id"], audit.get("displayValue", ""))
        for audit in report["audits"].values()
        if audit.get("score") is not None and audit["score"] < 1 and audit["scoreDisplayMode"] == "binary"
    ]
    scores = {name: float(category["score"]) for name, category in report["categories"].items()}
    print(f"lighthouse {url}: {scores}; not passed: {failing}")
    return scores


async def test_product_and_cart_pages_score_at_least_90_where_scores_are_stable(
    storefront_served: Path, router_url: str, ours: Storefront
) -> None:
    base = router_url.removesuffix("graphql")
    sku = (await ours.data("ProductList", {"first": 1, "filter": {"inStock": True}}))["products"]["edges"][0]["node"][
        "sku"
    ]
    for path in (f"p/{sku}", "cart"):
        scores = await _lighthouse(base + path)
        assert set(scores) == set(STABLE)
        for name, score in scores.items():
            assert score >= 0.9, (path, name, scores)
