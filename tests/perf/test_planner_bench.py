"""Benchmark: our planner vs @apollo/query-planner on a large generated supergraph.

The supergraph (planner_gen.py: 50 subgraphs, 1,000 entity types each extended
by two other subgraphs, two keys, shared value types and fields) is composed by
@apollo/composition once and kept in the system's temp directory. Operations of
50, 100, 200 and 300 fields are planned by both planners, each built once (as a
router does at start) and keeping no plan cache, so every round plans afresh.

Reported: mean planning time per operation for both, the ratio (Apollo's time
over ours: above 1 means ours is faster) and the fetch count of each plan.
Written to tests/perf/results/planner.json and printed. Only that both plan
every operation is asserted, never timings.

SHOPGRAPH_BENCH_PLAN_ROUNDS (default 2) rounds per operation and planner.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from graphql import OperationDefinitionNode, parse, validate

from router.operation import build_operation
from router.planner import Planner
from router.supergraph import Supergraph
from tests.perf import planner_gen
from tests.router.router_harness import ORACLE, _npm_ready

pytestmark = pytest.mark.perf

SIZES = (50, 100, 200, 300)
RESULTS = Path(__file__).parent / "results"


def _supergraph() -> str:
    sdls = planner_gen.subgraphs()
    digest = hashlib.sha256(json.dumps(sdls, sort_keys=True).encode()).hexdigest()[:16]
    cached = Path(tempfile.gettempdir()) / f"shopgraph-planner-bench-{digest}.graphql"
    if cached.exists():
        return cached.read_text()
    _npm_ready()
    services = [{"name": n, "url": f"http://127.0.0.1:9/{n}", "sdl": s} for n, s in sdls.items()]
    r = subprocess.run(
        ["node", "compose.mjs"], cwd=ORACLE, input=json.dumps(services), capture_output=True, text=True, check=False
    )
    assert r.returncode == 0, r.stderr
    cached.write_text(r.stdout)
    return r.stdout


def test_planner_vs_apollo_query_planner(tmp_path: Path) -> None:
    rounds = int(os.environ.get("SHOPGRAPH_BENCH_PLAN_ROUNDS", "2"))
    sdl = _supergraph()
    sg_file = tmp_path / "supergraph.graphql"
    sg_file.write_text(sdl)
    t0 = time.perf_counter()
    sg = Supergraph(sdl)
    planner = Planner(sg)
    setup_ms = (time.perf_counter() - t0) * 1000

    ours: dict[int, dict[str, float]] = {}
    files: list[str] = []
    for n in SIZES:
        text = planner_gen.operation(sg, n, seed=n)
        doc = parse(text)
        assert not validate(sg.api_schema, doc)
        node = doc.definitions[0]
        assert isinstance(node, OperationDefinitionNode)
        op = build_operation(node, {})
        planner.plan(op)  # warm-up, as Apollo's JIT gets
        start = time.perf_counter()
        for _ in range(rounds):
            plan = planner.plan(op)
        ours[n] = {"ms": (time.perf_counter() - start) * 1000 / rounds, "fetches": len(plan.fetches)}
        op_file = tmp_path / f"op{n}.graphql"
        op_file.write_text(text)
        files.append(str(op_file))

    r = subprocess.run(
        ["node", "plan_bench.mjs", str(sg_file), str(rounds), *files],
        cwd=ORACLE,
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    apollo = json.loads(r.stdout)
    rows = []
    for n, f in zip(SIZES, files, strict=True):
        theirs = apollo["plans"][f]
        assert theirs["fetches"] > 0 and ours[n]["fetches"] > 0
        rows.append(
            {
                "fields": n,
                "ours_ms": round(ours[n]["ms"], 2),
                "apollo_ms": round(theirs["ms"], 2),
                "apollo_over_ours": round(theirs["ms"] / ours[n]["ms"], 1),
                "ours_fetches": ours[n]["fetches"],
                "apollo_fetches": theirs["fetches"],
            }
        )
    payload = {
        "rounds": rounds,
        "setup_ms": {"ours": round(setup_ms), "apollo": round(apollo["setupMs"])},
        "operations": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "planner.json").write_text(json.dumps(payload, indent=2) + "\n")
    print("\nplanner benchmark (mean ms per plan; ratio = Apollo / ours)")
    for row in rows:
        print(
            f"  {row['fields']:>3} fields: ours {row['ours_ms']:>9.2f}  apollo {row['apollo_ms']:>10.2f}"
            f"  ratio {row['apollo_over_ours']:>7.1f}  fetches {row['ours_fetches']}/{row['apollo_fetches']}"
        )
    print(f"  setup (parse supergraph, build planner): ours {setup_ms:.0f} ms, apollo {apollo['setupMs']:.0f} ms")
