"""Benchmark: how soon a price change reaches a second router replica through the entity cache.

The subgraph stack (its own process, with PostgreSQL and the catalog relay) and
two ``shopgraph router`` replicas with the entity cache on, sharing the stack's
Redis. Both have the shopper's order history cached. Then, repeatedly: an admin
changes the price of a product in that history through replica A (A's answer is
right at once: the mutation fences its own cache, checked after B); from the moment A's response
arrives (the change has committed), replica B is asked again and again until it
shows the new price. That time is the invalidation latency across replicas:
catalog's outbox NOTIFY -> relay -> Redis Stream -> B's reader stamps the
product -> B's next lookup misses. Each sample includes one request's latency
(the granularity of the polling).

Only correctness is asserted (B always ends up with the new price, A at once);
the p50/p99 go to tests/perf/results/cache_invalidation.json and are printed.
SHOPGRAPH_BENCH_INVALIDATIONS (default 50) changes.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.perf import bench
from tests.perf.test_router_bench import seed

pytestmark = pytest.mark.perf

HISTORY = "{ me { orders(first: 10) { edges { node { items { product { id price { amount } } } } } } } }"
UPDATE = "mutation($i: UpdateProductInput!) { updateProduct(input: $i) { userErrors { code message } } }"


def _ask(client: httpx.Client, url: str, query: str, variables: dict[str, Any], token: str) -> dict[str, Any]:
    r = client.post(url, json={"query": query, "variables": variables}, headers={"authorization": f"Bearer {token}"})
    payload: dict[str, Any] = r.json()
    assert r.status_code == 200 and not payload.get("errors"), payload
    return payload["data"]  # type: ignore[no-any-return]


def _price(data: dict[str, Any], product_id: str) -> str:
    for edge in data["me"]["orders"]["edges"]:
        for item in edge["node"]["items"]:
            if item["product"]["id"] == product_id:
                return str(item["product"]["price"]["amount"])
    raise AssertionError(f"{product_id} is not in the history")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def test_invalidation_latency_across_replicas(tmp_path: Path) -> None:
    changes = bench.env_int("SHOPGRAPH_BENCH_INVALIDATIONS", 50)
    with bench.stack_process() as stack:
        info = stack.info
        shopper, admin = seed(info)
        supergraph = bench.supergraph_for(info["urls"], tmp_path / "supergraph.graphql")
        redis = {"url": info["redis_url"], "prefix": info["redis_prefix"]}
        jwks, secret = info["jwks_url"], info["service_secret"]
        with (
            bench.our_router(supergraph, jwks, secret, redis=redis, name="replica-a") as a,
            bench.our_router(supergraph, jwks, secret, redis=redis, name="replica-b") as b,
            httpx.Client(timeout=30, trust_env=False) as client,
        ):
            history = _ask(client, a.url, HISTORY, {}, shopper)
            product = history["me"]["orders"]["edges"][0]["node"]["items"][0]["product"]["id"]
            base = float(_price(history, product))
            seconds: list[float] = []
            for n in range(changes):
                for url in (a.url, b.url):
                    _ask(client, url, HISTORY, {}, shopper)  # cached by both
                price = f"{base + (n % 2) + 0.5:.2f}"
                done = _ask(client, a.url, UPDATE, {"i": {"id": product, "price": price}}, admin)
                assert done["updateProduct"]["userErrors"] == [], done
                committed = time.perf_counter()
                # B first: once A has answered again, B could find A's fresh entry in the shared Redis.
                while _price(_ask(client, b.url, HISTORY, {}, shopper), product) != price:
                    assert time.perf_counter() - committed < 10, "replica B kept the old price for 10 s"
                seconds.append(time.perf_counter() - committed)
                assert _price(_ask(client, a.url, HISTORY, {}, shopper), product) == price
    ms = [s * 1000 for s in seconds]
    figures = {
        "changes": len(ms),
        "p50_ms": round(statistics.median(ms), 2),
        "p90_ms": round(_percentile(ms, 0.9), 2),
        "p99_ms": round(_percentile(ms, 0.99), 2),
        "max_ms": round(max(ms), 2),
    }
    bench.RESULTS.mkdir(exist_ok=True)
    out = bench.RESULTS / "cache_invalidation.json"
    payload = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": psutil.cpu_count(), "platform": platform.platform(), "load_average": psutil.getloadavg()},
        "figures": figures,
    }
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\ninvalidation latency, commit -> replica B serves the new price: {figures}\n(written to {out})")
