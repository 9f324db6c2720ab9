"""Benchmark: our router vs Apollo Gateway over the same four subgraphs.

Both routers run side by side (one process each), over one subgraph stack (its
own process), and are loaded one after the other with the same requests by
autocannon. Two scenarios:

- ``storefront-home``: the storefront's home query for a signed-in shopper with
  a cart and orders: users -> (cart, orders) -> catalog, lists three levels deep.
- ``admin-varying-vars``: an admin dashboard query whose variables differ on
  every request (orders page size and status, product search, price filter,
  sort), fanning out over all four subgraphs.

Reported per router: requests/s, p50/p99 latency, the router process's CPU time
per request (psutil) and the subgraph stack's; with the ratios. Written to
tests/perf/results/latest.json and printed. Only correctness is asserted (the
routers answer identically, without errors); never timings.

SHOPGRAPH_BENCH_SECONDS (default 5) per router per scenario,
SHOPGRAPH_BENCH_WARMUP (default 2), SHOPGRAPH_BENCH_CONNECTIONS (default 16),
SHOPGRAPH_BENCH_MODES (default "live,replay"), SHOPGRAPH_BENCH_CASES (default every scenario, e.g.
"admin-varying-vars").

Two modes: ``live``, the routers over the real subgraphs (on a small machine the
Python subgraphs are the bottleneck for both routers, so requests/s mostly
measures how much subgraph work each router causes); ``replay``, the routers
over record-and-replay stand-ins for the subgraphs (replay.mjs: every distinct
subgraph request is forwarded once, then answered from memory), so requests/s
and latency measure the routers themselves.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.perf import bench

pytestmark = pytest.mark.perf

HOME = """query StorefrontHome {
  me {
    name email
    cart {
      totalQuantity subtotal { amount currencyCode }
      items { quantity product { name price { amount currencyCode } category { name } } }
    }
    orders(first: 10) {
      totalCount
      edges { node {
        number status total { amount currencyCode }
        items { quantity unitPrice { amount } product { name sku price { amount } } }
      } }
    }
  }
}"""

DASHBOARD = """query AdminDashboard($orders: Int!, $status: OrderStatus, $products: Int!,
    $search: String, $minPrice: Decimal, $sort: ProductSortKey, $reverse: Boolean!) {
  me { name cart { totalQuantity items { quantity product { name } } } }
  allOrders(first: $orders, status: $status) {
    totalCount
    edges { node {
      number status total { amount }
      user { email name }
      items { quantity product { name price { amount currencyCode } category { name } } }
    } }
  }
  products(first: $products, search: $search, filter: { minPrice: $minPrice },
           sortKey: $sort, reverse: $reverse) {
    totalCount
    edges { node { sku name price { amount } inStock category { name slug } } }
  }
}"""

VARIANTS = 100  # distinct variable sets in the varying-variables scenario
SEARCHES = [None, None, "headphones", "laptop", "knife", "speaker", "mixer", "keyboard", "lamp", "pro"]
SORTS = [None, "PRICE", "NAME", "NEWEST"]
ADDRESS = {
    "name": "Sam Shopper",
    "line1": "1 Demo Street",
    "city": "Springfield",
    "postalCode": "12345",
    "country": "US",
}


@dataclass
class Scenario:
    name: str
    description: str
    token: str
    bodies: list[bytes]


def _call(url: str, query: str, variables: dict[str, Any] | None = None, token: str | None = None) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    r = httpx.post(
        url, json={"query": query, "variables": variables or {}}, headers=headers, timeout=60, trust_env=False
    )
    payload: dict[str, Any] = r.json()
    assert not payload.get("errors"), payload
    return payload["data"]  # type: ignore[no-any-return]


def _login(urls: dict[str, str], email: str, password: str) -> str:
    d = _call(
        urls["users"],
        "mutation($i: LoginInput!) { login(input: $i) { accessToken userErrors { code message } } }",
        {"i": {"email": email, "password": password}},
    )
    assert not d["login"]["userErrors"], d
    return str(d["login"]["accessToken"])


def _fill_cart(urls: dict[str, str], token: str, variant_ids: list[str]) -> None:
    for vid in variant_ids:
        d = _call(
            urls["cart"],
            "mutation($i: AddToCartInput!) { addToCart(input: $i) { userErrors { code message } } }",
            {"i": {"variantId": vid, "quantity": 1}},
            token,
        )
        assert not d["addToCart"]["userErrors"], d


def seed(info: dict[str, Any]) -> tuple[str, str]:
    """Orders and a cart for the demo shopper, a cart for the admin; their access tokens."""
    urls: dict[str, str] = info["urls"]
    accounts = {role: (email, password) for role, email, password in info["accounts"]}
    shopper = _login(urls, *accounts["CUSTOMER"])
    admin = _login(urls, *accounts["ADMIN"])
    d = _call(urls["catalog"], "{ products(first: 100) { edges { node { variants { id stock } } } } }")
    # Variants, not products: a product in stock may have its default variant sold out. Enough
    # stock that the twelve orders below cannot sell one out.
    variants = [v for e in d["products"]["edges"] for v in e["node"]["variants"]]
    ids = [v["id"] for v in variants if v["stock"] >= 20]
    rng = random.Random(7)
    for _ in range(12):
        _fill_cart(urls, shopper, rng.sample(ids, 3))
        d = _call(
            urls["orders"],
            "mutation($i: CheckoutInput!) { checkout(input: $i) { order { id } userErrors { code message } } }",
            {"i": {"idempotencyKey": str(uuid.uuid4()), "shippingAddress": ADDRESS}},
            shopper,
        )
        assert not d["checkout"]["userErrors"], d
    _fill_cart(urls, shopper, rng.sample(ids, 6))
    _fill_cart(urls, admin, rng.sample(ids, 2))
    return shopper, admin


def scenarios(shopper: str, admin: str) -> list[Scenario]:
    rng = random.Random(11)
    bodies: list[bytes] = []
    seen: set[bytes] = set()
    while len(bodies) < VARIANTS:
        variables = {
            "orders": rng.randint(3, 12),
            "status": rng.choice([None, None, None, "PENDING_PAYMENT"]),
            "products": rng.randint(5, 20),
            "search": rng.choice(SEARCHES),
            "minPrice": rng.choice([None, str(rng.randint(0, 300))]),
            "sort": rng.choice(SORTS),
            "reverse": rng.random() < 0.5,
        }
        body = json.dumps({"query": DASHBOARD, "operationName": "AdminDashboard", "variables": variables}).encode()
        if body not in seen:
            seen.add(body)
            bodies.append(body)
    return [
        Scenario(
            "storefront-home",
            "storefront home query (shopper: cart of 6, 12 orders x 3 items), same request every time",
            shopper,
            [json.dumps({"query": HOME, "operationName": "StorefrontHome"}).encode()],
        ),
        Scenario(
            "admin-varying-vars",
            "admin dashboard query, different variables on every request (100 distinct bodies, round-robin)",
            admin,
            bodies,
        ),
    ]


def check_identical(urls: list[str], sc: Scenario, sample: int) -> None:
    """Every router gives the same JSON for the same request, with data and no errors."""
    step = max(1, len(sc.bodies) // sample)
    with httpx.Client(timeout=60, trust_env=False) as client:
        for body in sc.bodies[::step]:
            answers = []
            for url in urls:
                r = client.post(
                    url,
                    content=body,
                    headers={"content-type": "application/json", "authorization": f"Bearer {sc.token}"},
                )
                assert r.status_code == 200, r.text
                answers.append(r.json())
            assert not answers[0].get("errors"), answers[0]
            assert answers[0]["data"], answers[0]
            for other in answers[1:]:
                assert other == answers[0], (sc.name, body)


@pytest.fixture(scope="module")
def perf_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("perf")


@pytest.fixture(scope="module")
def subgraph_stack() -> Iterator[bench.Proc]:
    bench.npm_ci(bench.HERE, "autocannon")
    bench.npm_ci(bench.ORACLE, "@apollo/gateway")
    with bench.stack_process() as stack:
        yield stack


def run_mode(
    mode: str, subgraphs: bench.Proc, urls: dict[str, str], info: dict[str, Any], tmp: Path, shopper: str, admin: str
) -> list[dict[str, Any]]:
    """Both routers over ``urls`` (the live subgraphs or their replay), every scenario."""
    seconds = bench.env_float("SHOPGRAPH_BENCH_SECONDS", 5)
    warmup = bench.env_float("SHOPGRAPH_BENCH_WARMUP", 2)
    connections = bench.env_int("SHOPGRAPH_BENCH_CONNECTIONS", 16)
    supergraph = bench.supergraph_for(urls, tmp / f"supergraph-{mode}.graphql")
    jwks, secret = info["jwks_url"], info["service_secret"]
    results: list[dict[str, Any]] = []
    # Live mode adds our router with its entity cache on (warmed by the warm-up run), over the stack's Redis.
    redis = {"url": info["redis_url"], "prefix": info["redis_prefix"]}
    with contextlib.ExitStack() as running:
        ours = running.enter_context(bench.our_router(supergraph, jwks, secret))
        peer = running.enter_context(bench.apollo_gateway(supergraph, jwks, secret))
        routers = [ours, peer]
        if mode == "live":
            routers.append(
                running.enter_context(bench.our_router(supergraph, jwks, secret, redis=redis, name="shopgraph+cache"))
            )
        endpoints = [r.url for r in routers]
        cases = os.environ.get("SHOPGRAPH_BENCH_CASES", "")
        for sc in scenarios(shopper, admin):
            if cases and sc.name not in cases.split(","):
                continue
            check_identical(endpoints, sc, sample=20)
            headers = {"authorization": f"Bearer {sc.token}"}
            ms = [
                bench.measure(
                    r, subgraphs, headers, sc.bodies, seconds, warmup, connections, tmp, prime=mode == "replay"
                )
                for r in routers
            ]
            check_identical(endpoints, sc, sample=5)  # still identical after the load
            for m in ms:
                assert m.errors == 0 and m.bad == 0, (mode, sc.name, m.router, m.first_bad, m)
                assert m.requests > 0, (mode, sc.name, m)
            result = {
                "mode": mode,
                "name": sc.name,
                "description": sc.description,
                "measurements": [bench.as_dict(m) for m in ms],
                "ratios": bench.ratios(ms[0], ms[1]),
            }
            if len(ms) > 2:
                result["cache_ratios"] = bench.ratios(ms[2], ms[0])
            results.append(result)
    return results


def test_router_vs_apollo_gateway(subgraph_stack: bench.Proc, perf_tmp: Path) -> None:
    info = subgraph_stack.info
    shopper, admin = seed(info)
    modes = os.environ.get("SHOPGRAPH_BENCH_MODES", "live,replay").split(",")
    results: list[dict[str, Any]] = []
    if "live" in modes:
        results += run_mode("live", subgraph_stack, dict(info["urls"]), info, perf_tmp, shopper, admin)
    if "replay" in modes:
        with bench.replay_process(info["urls"]) as replay:
            results += run_mode("replay", replay, dict(replay.info["urls"]), info, perf_tmp, shopper, admin)

    payload = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpus": psutil.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average": os.getloadavg(),
        },
        "settings": {
            "seconds": bench.env_float("SHOPGRAPH_BENCH_SECONDS", 5),
            "warmup": bench.env_float("SHOPGRAPH_BENCH_WARMUP", 2),
            "connections": bench.env_int("SHOPGRAPH_BENCH_CONNECTIONS", 16),
        },
        "scenarios": results,
    }
    out = bench.write_results(payload)
    print(f"\n{bench.table(results)}\n(written to {out})")
