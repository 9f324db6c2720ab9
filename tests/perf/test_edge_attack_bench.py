"""Benchmark: a storefront shopper's latency while one anonymous client attacks the router
(issue 18, findings 1, 2 and 5 at once).

One subgraph stack (its own process), one ``shopgraph router`` (its own process, default
settings except a signed-in user's request budget, raised for the load), Redis for the
rate limits. The victim is autocannon (node) sending the storefront's home query and
product lists as a signed-in shopper; its p99 is measured alone, then while the attacker
(asyncio clients in this process, all from 127.0.0.1, anonymous: one caller) sends, back
to back:

- finding 1: ``{ ...F0 … ...F199 }`` (valid, quadratic to validate), 2 connections;
- finding 2: distinct 30 KB documents, valid and invalid, 2 connections;
- finding 5: the issue's 48,020-cost query with ``minPrice`` varied, and queries just
  under the cost cap (4,040: 20 categories x 100 products), 2 connections.

Reported: the victim's p50/p99 alone and under attack and the p99 ratio (the goal: under
2), the router's loop lag (``/health`` every 5 ms: longest answer) in both phases, its
peak RSS, and what the attacker got (by error code). Only correctness is asserted (the
victim's answers have no errors; the attacks are refused as they should be), never
timings. Written to tests/perf/results/edge_attack.json and printed.

SHOPGRAPH_BENCH_SECONDS (default 10) per phase, SHOPGRAPH_BENCH_CONNECTIONS (default 4).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import platform
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.perf import bench
from tests.perf.test_router_bench import HOME, seed
from tests.router.pipeline_attacks import (
    LoopLag,
    cpu_seconds,
    document_workers,
    padded,
    spread_bomb,
    standalone_router,
)

pytestmark = pytest.mark.perf

PRODUCTS = (
    "query ProductList($first: Int!, $sortKey: ProductSortKey) { products(first: $first, sortKey: $sortKey) "
    "{ totalCount edges { node { id name imageUrl inStock price { amount currencyCode } category { name } } } } }"
)
HEAVY = (
    "query Heavy($p: Decimal) { categories { products(first: 100, filter: { minPrice: $p }) "
    "{ edges { node { id name category { products(first: 10) { edges { node { id name } } } } } } } } }"
)
# 20 categories x 100 products x (edges + node): 4,040, under the cap (9,404); an expensive operation.
_PAGE = "products(first: 100, filter: { minPrice: $p }) { edges { node { id } } }"
UNDER_CAP = "query UnderCap($p: Decimal) { categories { " + _PAGE + " } }"


def _victim_bodies() -> list[bytes]:
    bodies = [json.dumps({"query": HOME, "operationName": "StorefrontHome"}).encode()]
    for first, sort in ((8, "NEWEST"), (24, None), (24, "PRICE")):
        variables = {"first": first, "sortKey": sort}
        bodies.append(json.dumps({"query": PRODUCTS, "operationName": "ProductList", "variables": variables}).encode())
    return bodies


class Attacker:
    """Findings 1, 2 and 5 from one anonymous client, in a thread with its own event loop."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.codes: collections.Counter[str] = collections.Counter()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _send(self, client: httpx.AsyncClient, body: dict[str, Any]) -> None:
        try:
            r = await client.post(self.url, json=body)
            errors = r.json().get("errors")
            ext = errors[0]["extensions"] if errors else {}
            self.codes[ext.get("limit") or ext.get("code") or "served"] += 1
        except httpx.HTTPError as e:
            self.codes[type(e).__name__] += 1

    async def _worker(self, make: Any) -> None:
        async with httpx.AsyncClient(timeout=60, trust_env=False) as client:
            n = 0
            while not self.stop.is_set():
                await self._send(client, make(n))
                n += 1

    async def _main(self) -> None:
        tag = uuid.uuid4().hex[:6]
        bomb = {"query": spread_bomb(200, "products { edges { node { id } } }")}

        def big(n: int) -> dict[str, Any]:
            base = "{ categories { name } }" if n % 2 else "{ nope }"
            return {"query": padded(base, 30_000, salt=f"{tag}{n}")}

        def costly(n: int) -> dict[str, Any]:
            return {"query": HEAVY if n % 2 else UNDER_CAP, "variables": {"p": str(n % 500)}}

        await asyncio.gather(
            *(self._worker(lambda n: bomb) for _ in range(2)),
            *(self._worker(big) for _ in range(2)),
            *(self._worker(costly) for _ in range(2)),
        )

    def __enter__(self) -> Attacker:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(60)


class Probe:
    """A loop-lag probe and an RSS sampler (the router, and its document workers) in a thread of
    their own for one phase; the CPU time each side spent in it."""

    def __init__(self, url: str, proc: psutil.Process) -> None:
        self.url = url
        self.proc = proc
        self.rss = 0
        self.workers_rss = 0
        self.workers = document_workers(proc)
        self.cpu = (cpu_seconds([proc]), cpu_seconds(self.workers))
        self.router_cpu = self.workers_cpu = 0.0
        self.load = os.getloadavg()[0]
        self.lag: LoopLag | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        async with LoopLag(self.url) as lag:
            self.lag = lag
            while not self.stop.is_set():
                self.rss = max(self.rss, self.proc.memory_info().rss)
                rss = 0
                for w in document_workers(self.proc):
                    with contextlib.suppress(psutil.Error):
                        rss += w.memory_info().rss
                self.workers_rss = max(self.workers_rss, rss)
                await asyncio.sleep(0.1)

    def __enter__(self) -> Probe:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(60)
        self.router_cpu = cpu_seconds([self.proc]) - self.cpu[0]
        self.workers_cpu = cpu_seconds(self.workers) - self.cpu[1]


@pytest.fixture(scope="module")
def stack() -> Iterator[bench.Proc]:
    bench.npm_ci(bench.HERE, "autocannon")
    with bench.stack_process() as s:
        yield s


def test_a_shoppers_p99_while_one_client_attacks(stack: bench.Proc, tmp_path: Path) -> None:
    info = stack.info
    shopper, _ = seed(info)
    seconds = bench.env_float("SHOPGRAPH_BENCH_SECONDS", 10)
    connections = bench.env_int("SHOPGRAPH_BENCH_CONNECTIONS", 4)
    supergraph = bench.supergraph_for(info["urls"], tmp_path / "supergraph.graphql").read_text()
    config = {
        "auth": {"jwks_urls": [info["jwks_url"]]},
        "subgraphs": {"service_secret": info["service_secret"]},
        "redis": {"url": info["redis_url"], "prefix": f"shopgraph_bench_{uuid.uuid4().hex}:"},
        "rate_limits": {"users": {"rate": 1_000_000, "burst": 1_000_000}},  # the victim's load; anonymous: default
        "cache": {"entities": False},
        # SHOPGRAPH_BENCH_DOCUMENT_WORKERS=0: documents prepared in a thread of the router (before worker processes)
        "limits": {
            "document_workers": bench.env_int("SHOPGRAPH_BENCH_DOCUMENT_WORKERS", 2),
            "document_worker_nice": bench.env_int("SHOPGRAPH_BENCH_DOCUMENT_WORKER_NICE", 0),
        },
    }
    bodies = _victim_bodies()
    headers = {"authorization": f"Bearer {shopper}"}
    with standalone_router(supergraph, tmp_path / "router", config) as (url, proc):
        bench.load(url, headers, bodies, 3, connections, tmp_path)  # warm-up: plans, connections
        phases: dict[str, dict[str, Any]] = {}
        attacker_codes: dict[str, int] = {}
        for phase in ("alone", "attacked"):
            with Probe(url, proc) as probe:
                if phase == "attacked":
                    with Attacker(url) as attacker:
                        time.sleep(1)  # the attack under way
                        r = bench.load(url, headers, bodies, seconds, connections, tmp_path)
                    attacker_codes = dict(attacker.codes)
                else:
                    r = bench.load(url, headers, bodies, seconds, connections, tmp_path)
            assert probe.lag is not None
            assert int(r["bad"]) + int(r["non2xx"]) == 0 and int(r["errors"]) + int(r["timeouts"]) == 0, r
            phases[phase] = {
                "requests": int(r["requests"]),
                "rps": float(r["rps"]),
                "p50_ms": float(r["p50"]),
                "p99_ms": float(r["p99"]),
                "loop_lag_max_ms": round(probe.lag.max * 1000, 1),
                "loop_lag_median_ms": round(probe.lag.median * 1000, 1),
                "router_rss_max_mb": round(probe.rss / 2**20, 1),
                "workers_rss_max_mb": round(probe.workers_rss / 2**20, 1),
                "router_cpu_s": round(probe.router_cpu, 2),
                "workers_cpu_s": round(probe.workers_cpu, 2),
                "load_average_1m_at_start": round(probe.load, 1),
            }
    # The attacks were refused as they should be (none of the bombs or over-cap queries served).
    assert attacker_codes.get("MAX_OVERLAP_PAIRS", 0) + attacker_codes.get("RATE_LIMITED", 0) > 0, attacker_codes
    assert "served" not in attacker_codes or attacker_codes.get("COST_ESTIMATED_TOO_EXPENSIVE", 0) > 0, attacker_codes
    ratio = round(phases["attacked"]["p99_ms"] / max(phases["alone"]["p99_ms"], 0.001), 2)
    payload = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": psutil.cpu_count(), "platform": platform.platform(), "load_average": os.getloadavg()},
        "settings": {
            "seconds": seconds,
            "connections": connections,
            **config["limits"],
        },
        "phases": phases,
        "p99_ratio": ratio,
        "attacker": attacker_codes,
    }
    out = bench.RESULTS / "edge_attack.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\n{json.dumps(payload, indent=2)}\nvictim p99 attacked/alone: {ratio} (written to {out})")
