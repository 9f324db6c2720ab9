"""Benchmark: subscription event-to-client latency and router memory per subscription.

The router runs in its own process (``router.http.serve``) over the "live"
fixture subgraphs (tests/router/fixtures/live.py, in this process), whose
``emit`` mutation stamps each event with its emit time. N subscribers (1, 100,
1,000) are opened over WebSocket, 100 subscriptions per client connection; events
are emitted at a steady pace for SHOPGRAPH_BENCH_SECONDS (default 3) per N,
and every delivery's latency (receive time - emit time) is recorded. Memory
per open subscription = (router RSS with N open - RSS before) / N (meaningful
for N = 1,000). The clients and the feed subgraph share one Python process, so
at 1,000 subscribers the client side's JSON decoding is part of the latency.

Figures go to tests/perf/results/subscriptions.json and are printed; nothing
is asserted about timings, only that every subscriber got every event in order.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "router"))  # the router tests' fixture subgraphs
from websockets.asyncio.client import ClientConnection, connect

from tests.router.fixtures.shop import SERVICE_SECRET
from tests.router.router_harness import (
    Counter,
    ThreadServer,
    compose,
    free_port,
    subgraph_app,
)
from tests.router.subs_support import Keys

pytestmark = pytest.mark.perf
RESULTS = Path(__file__).parent / "results" / "subscriptions.json"
QUERY = "subscription { orderEvents { id emittedAt order { number user { email } } } }"
PER_CONNECTION = 100


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


class Router:
    def __init__(self, sdl: str, tmp: Path, jwks_url: str) -> None:
        self.file = tmp / "supergraph.graphql"
        self.file.write_text(sdl)
        self.port = free_port()
        env = {**os.environ, "SHOPGRAPH_JWKS_URL": jwks_url, "SHOPGRAPH_SERVICE_SECRET": SERVICE_SECRET}
        code = f"from router.http import serve; serve({str(self.file)!r}, port={self.port})"
        self.proc = subprocess.Popen([sys.executable, "-c", code], env=env)
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("router did not start") from None
                time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Router, str, Keys]]:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    keys = Keys()

    async def jwks(_: Request) -> JSONResponse:
        return JSONResponse(keys.jwks())

    with (
        ThreadServer(subgraph_app(Counter({}))) as subgraphs,
        ThreadServer(Starlette(routes=[Route("/jwks", jwks)])) as js,
    ):
        router = Router(compose("live", subgraphs.url), tmp_path_factory.mktemp("subs"), js.url + "/jwks")
        try:
            yield router, subgraphs.url + "/live/feed/", keys
        finally:
            router.stop()


async def _open(url: str, token: str, ids: range) -> ClientConnection:
    ws = await connect(url, subprotocols=["graphql-transport-ws"], max_size=None)  # type: ignore[list-item]
    await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    for i in ids:
        await ws.send(json.dumps({"id": str(i), "type": "subscribe", "payload": {"query": QUERY}}))
    return ws


async def _read(ws: ClientConnection, seen: dict[str, list[int]], lat: list[float]) -> None:
    async for raw in ws:
        now = time.time()
        msg = json.loads(raw)
        ev = msg["payload"]["data"]["orderEvents"]
        lat.append(now - ev["emittedAt"])
        seen.setdefault(msg["id"], []).append(int(ev["id"]))


async def _subscribers(feed: str, n: int) -> None:
    async with httpx.AsyncClient() as http:
        deadline = time.monotonic() + 120
        while True:
            r = await http.post(feed, json={"query": "{ subscribers }"})
            if r.json()["data"]["subscribers"] == n:
                return
            assert time.monotonic() < deadline, "subscribers did not arrive"
            await asyncio.sleep(0.1)


def _pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(p * len(s)))] * 1000


async def _run(router: Router, feed: str, token: str, n: int, seconds: float) -> dict[str, Any]:
    url = f"ws://127.0.0.1:{router.port}/graphql"
    await asyncio.sleep(1.0)
    before = rss(router.proc.pid)
    conns = [await _open(url, token, range(i, min(n, i + PER_CONNECTION))) for i in range(0, n, PER_CONNECTION)]
    await _subscribers(feed, n)
    await asyncio.sleep(0.5)
    mem = (rss(router.proc.pid) - before) / n
    seen: dict[str, list[int]] = {}
    lat: list[float] = []
    readers = [asyncio.create_task(_read(ws, seen, lat)) for ws in conns]
    interval = 0.02 if n <= 100 else 0.1
    emitted: list[int] = []
    async with httpx.AsyncClient() as http:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            r = await http.post(feed, json={"query": "mutation { emit(count: 1) }"})
            emitted.append(int(r.json()["data"]["emit"]))
            await asyncio.sleep(interval)
    for _ in range(1200):  # up to 60 s for the last deliveries
        if len(lat) >= n * len(emitted):
            break
        await asyncio.sleep(0.05)
    for ws in conns:
        await ws.close()
    for t in readers:
        t.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    assert len(seen) == n and all(v == emitted for v in seen.values()), "lost or reordered events"
    await _subscribers(feed, 0)
    return {
        "subscribers": n,
        "events": len(emitted),
        "deliveries": len(lat),
        "p50_ms": round(_pct(lat, 0.5), 2),
        "p99_ms": round(_pct(lat, 0.99), 2),
        "router_rss_per_subscription_kib": round(mem / 1024, 1),
    }


async def test_subscription_latency_and_memory(setup: tuple[Router, str, Keys]) -> None:
    router, feed, keys = setup
    seconds = float(os.environ.get("SHOPGRAPH_BENCH_SECONDS", "3"))
    token = keys.token(ttl=3600)
    await _run(router, feed, token, 1, 0.5)  # warm-up: plan cache, upstream connection, allocator pools
    rows = [await _run(router, feed, token, n, seconds) for n in (1, 100, 1000)]
    report = {
        "what": "event emitted by the subgraph -> delivered to a WebSocket client through the router, "
        "enriched from a second subgraph (user.email)",
        "seconds_per_case": seconds,
        "results": rows,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(f"{'subscribers':>11} {'events':>6} {'p50 ms':>8} {'p99 ms':>8} {'KiB/sub':>8}")
    for r in rows:
        print(
            f"{r['subscribers']:>11} {r['events']:>6} {r['p50_ms']:>8} {r['p99_ms']:>8} "
            f"{r['router_rss_per_subscription_kib']:>8}"
        )
