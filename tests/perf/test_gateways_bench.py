"""Benchmark: our router vs Apollo Gateway on the graphql-gateways-benchmark's workload.

The public benchmark (graphql-hive/graphql-gateways-benchmark) loads gateways with one deep
``TestQuery`` over four subgraphs (accounts, inventory, products, reviews), answering ~87 KB.
Here the same query over the same graph (``gateways_main.py``), the subgraphs behind
record-and-replay stand-ins (``replay.mjs``) so only the routers' work is left, and both routers
side by side (one process each), loaded one after the other by autocannon, several times in
turn. Reported: each router's CPU time per request (psutil) and the ratio in each repeat, with
the spread. Only correctness is asserted (identical answers, no errors); never timings.

    uv run pytest -m perf tests/perf/test_gateways_bench.py -s -n 0

SHOPGRAPH_BENCH_SECONDS (default 5) per router per repeat, SHOPGRAPH_BENCH_WARMUP (default 2),
SHOPGRAPH_BENCH_CONNECTIONS (default 16), SHOPGRAPH_BENCH_REPEATS (default 3).
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from router.compose import SubgraphSource, compose
from tests.perf import bench

pytestmark = pytest.mark.perf

TEST_QUERY = """
fragment User on User { id username name }
fragment Review on Review { id body }
fragment Product on Product { inStock name price shippingEstimate upc weight }

query TestQuery {
  users {
    ...User
    reviews {
      ...Review
      product {
        ...Product
        reviews { ...Review author { ...User reviews { ...Review product { ...Product } } } }
      }
    }
  }
  topProducts {
    ...Product
    reviews { ...Review author { ...User reviews { ...Review product { ...Product } } } }
  }
}
"""
SECRET = "gateways-bench-service-secret-0123456789"
LIMITS = {
    "SHOPGRAPH_RATE_ANONYMOUS": "1000000/1000000",
    "SHOPGRAPH_MAX_COST": "1000000",
    "SHOPGRAPH_RATE_EXPENSIVE": "1000000000000/1000000000000",
}


def test_gateways_benchmark_workload(tmp_path: Path) -> None:
    bench.npm_ci(bench.HERE, "autocannon")
    bench.npm_ci(bench.ORACLE, "@apollo/gateway")
    seconds = bench.env_float("SHOPGRAPH_BENCH_SECONDS", 5)
    warmup = bench.env_float("SHOPGRAPH_BENCH_WARMUP", 2)
    connections = bench.env_int("SHOPGRAPH_BENCH_CONNECTIONS", 16)
    repeats = bench.env_int("SHOPGRAPH_BENCH_REPEATS", 3)
    body = json.dumps({"query": TEST_QUERY, "operationName": "TestQuery"}).encode()
    with contextlib.ExitStack() as running:
        stack = running.enter_context(bench.stack_process(script="gateways_main.py"))
        replay = running.enter_context(bench.replay_process(stack.info["urls"]))
        urls: dict[str, str] = replay.info["urls"]
        supergraph = tmp_path / "supergraph.graphql"
        supergraph.write_text(
            compose([SubgraphSource(name, urls[name], sdl) for name, sdl in stack.info["sdls"].items()])
        )
        jwks = stack.info["jwks_url"]
        # Every request is anonymous: its rate and cost budgets raised for one caller at hundreds a second
        # (the list sizes unknown to demand control, the deep query is estimated at ~350,000).
        ours = running.enter_context(bench.our_router(supergraph, jwks, SECRET, env=LIMITS))
        peer = running.enter_context(bench.apollo_gateway(supergraph, jwks, SECRET))
        answers = [httpx.post(r.url, content=body, headers={"content-type": "application/json"}) for r in (ours, peer)]
        for a in answers:
            assert a.status_code == 200 and "errors" not in a.json(), a.text[:500]
        assert answers[0].json() == answers[1].json()
        size = len(answers[1].content)
        rows: list[dict[str, Any]] = []
        for i in range(repeats):
            ms = [
                bench.measure(r, replay, {}, [body], seconds, warmup, connections, tmp_path, prime=i == 0)
                for r in (ours, peer)
            ]
            for m in ms:
                assert m.errors == 0 and m.bad == 0, (m.router, m.first_bad, m)
                assert m.requests > 0, m
            rows.append({"measurements": [bench.as_dict(m) for m in ms], "ratios": bench.ratios(ms[0], ms[1])})
        assert (
            httpx.post(ours.url, content=body, headers={"content-type": "application/json"}).json() == answers[1].json()
        )

    cpu = [r["ratios"]["cpu_per_request"] for r in rows]
    lines = [f"TestQuery ({size / 1000:.1f} KB answers), {repeats} repeats of {seconds:g} s per router:"]
    for n, r in enumerate(rows, 1):
        o, p = r["measurements"]
        lines.append(
            f"  #{n}: ours {o['cpu_ms_per_request']:.2f} ms CPU/req ({o['rps']:.0f} req/s), Apollo Gateway "
            f"{p['cpu_ms_per_request']:.2f} ms ({p['rps']:.0f} req/s): {r['ratios']['cpu_per_request']:.1f}x less"
        )
    lines.append(
        f"  CPU per request, Apollo / ours: median {statistics.median(cpu):.1f}x (range {min(cpu)}-{max(cpu)})"
    )
    payload = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "load_average": os.getloadavg(),
        "cpus": psutil.cpu_count(),
        "answer_bytes": size,
        "repeats": rows,
    }
    bench.RESULTS.mkdir(exist_ok=True)
    (bench.RESULTS / "gateways.json").write_text(json.dumps(payload, indent=2) + "\n")
    print("\n" + "\n".join(lines))
