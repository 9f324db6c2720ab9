"""Issue 19 part 2, measured: one branch slow (200 ms), an independent branch of two dependent
20 ms fetches. Without barriers the request takes ~200 ms, with them ~240 ms. Our router and
Apollo Gateway over the same delayed fixture subgraphs, side by side; figures printed (the
assertions are about the answers, not the clock).

    uv run pytest -m perf tests/perf/test_plan_barriers_bench.py -s -n 0
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from router.config import Settings
from router.http import create_app
from tests.router.router_harness import Counter, Gateway, ThreadServer, compose, subgraph_app

pytestmark = pytest.mark.perf

QUERY = "{ me { name } topProducts(first: 2) { name shippingEstimate } }"
SLOW_ALONE = "{ me { name } }"  # the 200 ms branch by itself: the floor
DELAYS = {"/shop/accounts": 0.2, "/shop/products": 0.02, "/shop/inventory": 0.02}


async def _median_ms(client: httpx.AsyncClient, url: str, query: str, rounds: int = 21) -> float:
    took = []
    for _ in range(rounds):
        t = time.perf_counter()
        body = (await client.post(url, json={"query": query})).json()
        took.append((time.perf_counter() - t) * 1000)
        assert "errors" not in body and body["data"]["me"]["name"], body
    return statistics.median(took)


async def _over_floor(client: httpx.AsyncClient, url: str) -> tuple[float, float]:
    """(median of the query, its median minus the slow branch's alone): ~0 without barriers, ~40 with."""
    whole, floor = await _median_ms(client, url, QUERY), await _median_ms(client, url, SLOW_ALONE)
    return whole, whole - floor


async def test_barrier_free_plan_time(tmp_path: Path) -> None:
    app = subgraph_app(Counter({}))

    async def delayed(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            for prefix, delay in DELAYS.items():
                if scope["path"].startswith(prefix):
                    await asyncio.sleep(delay)
        await app(scope, receive, send)

    with ThreadServer(delayed) as subgraphs:
        sdl = compose("shop", subgraphs.url)
        with (
            ThreadServer(create_app(sdl, Settings(anonymous_only=True, rate_limits=False))) as router,
            Gateway(sdl, tmp_path) as gateway,
        ):
            async with httpx.AsyncClient(timeout=30) as client:
                ours = await _over_floor(client, router.url + "/graphql")
                apollo = await _over_floor(client, gateway.url)
    print(
        "\nbarrier fixture (a 200 ms branch beside 20 ms + 20 ms; median, and over the 200 ms branch alone):"
        f" ours {ours[0]:.0f} ms (+{ours[1]:.0f}), Apollo Gateway {apollo[0]:.0f} ms (+{apollo[1]:.0f})"
    )
