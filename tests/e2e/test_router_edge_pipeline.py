"""Issue 18 findings 4 and 5 against routers on the real subgraphs and Redis: the default cost
cap comes from the storefront's manifest, the expensive budget counts cost (in Redis), the
APQ store has a total cap (in Redis)."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
from graphql import FragmentDefinitionNode, NamedTypeNode, NonNullTypeNode, OperationDefinitionNode, parse

from deploy.stack import ThreadedStack
from router.config import Bucket, Settings
from router.cost import CostEstimator, CostModel
from router.http import create_app
from router.supergraph import Supergraph
from tests.e2e.conftest import SUPERGRAPH, supergraph_for
from tests.router.router_harness import ThreadServer

# The query: 48,020 under the old 50,000 cap; 1.5 s of catalog CPU each, minPrice varied.
HEAVY = (
    "query Heavy($p: Decimal) { categories { products(first: 100, filter: { minPrice: $p }) "
    "{ edges { node { id name category { products(first: 10) { edges { node { id name } } } } } } } } }"
)
# 20 categories (no @listSize) x 100 products x (edges + node): 4,040.
FOUR_THOUSAND = "{ categories { products(first: 100) { edges { node { id } } } } }"


def _settings(stack: ThreadedStack, **kw: Any) -> Settings:
    return Settings(
        anonymous_only=True,
        redis_url=stack.settings.redis_url,
        redis_prefix=f"shopgraph_test_{uuid.uuid4().hex}:",
        **kw,
    )


def _sdl(stack: ThreadedStack) -> str:
    return supergraph_for({n: stack.urls[n] for n in stack.subgraphs})


MANIFEST = Path(__file__).resolve().parents[2] / "frontend_contract" / "manifest.json"


def _is_int(t: Any) -> bool:
    t = t.type if isinstance(t, NonNullTypeNode) else t
    return isinstance(t, NamedTypeNode) and t.name.value == "Int"


def _storefront_heaviest() -> float:
    """The estimated cost of the storefront's heaviest manifest operation, every ``Int`` variable
    at the largest page the subgraphs serve (100)."""
    sdl = SUPERGRAPH.read_text()
    est = CostEstimator(Supergraph(sdl).api_schema, CostModel.from_supergraph(sdl), Settings().default_list_size)
    costs = []
    for entry in json.loads(MANIFEST.read_text())["operations"]:
        doc = parse(entry["body"])
        frags = {d.name.value: d for d in doc.definitions if isinstance(d, FragmentDefinitionNode)}
        for op in doc.definitions:
            if isinstance(op, OperationDefinitionNode):
                ints = {v.variable.name.value: 100 for v in op.variable_definitions or () if _is_int(v.type)}
                costs.append(est.estimate(op, frags, ints))
    assert len(costs) > 10, costs
    return max(costs)


async def test_the_default_cost_cap_is_twice_the_storefronts_heaviest_operation(router_url: str) -> None:
    cap = 2 * _storefront_heaviest()  # AdminAllOrders at 100 a page: 2 x 4,702 = 9,404 now
    async with httpx.AsyncClient(timeout=60, trust_env=False) as client:
        # The storefront's own product list at the largest page the catalog serves is served (first: each
        # over-cap query below empties this caller's cost budget).
        r = await client.post(
            router_url,
            json={"query": "{ products(first: 100) { edges { node { id name price { amount } } } } }"},
        )
        assert "errors" not in r.json() and len(r.json()["data"]["products"]["edges"]) > 10, r.text[:300]
        for price in ("1", "2", "3"):
            r = await client.post(router_url, json={"query": HEAVY, "variables": {"p": price}})
            err = r.json()["errors"][0]
            assert err["extensions"]["code"] == "COST_ESTIMATED_TOO_EXPENSIVE", r.text
            assert err["extensions"]["cost"]["max"] == cap
            assert err["extensions"]["cost"]["estimated"] > 5 * cap


async def test_the_expensive_budget_counts_cost_in_redis(stack: ThreadedStack) -> None:
    settings = _settings(stack, expensive_cost=1_000, rate_expensive=Bucket(1, 9_000))
    with ThreadServer(create_app(_sdl(stack), settings)) as s:
        url = s.url + "/graphql"
        async with httpx.AsyncClient(timeout=60, trust_env=False) as client:
            for _ in range(2):  # 8,080 of the 9,000
                r = await client.post(url, json={"query": FOUR_THOUSAND})
                assert "errors" not in r.json(), r.text[:300]
            r = await client.post(url, json={"query": FOUR_THOUSAND})
            assert r.status_code == 429
            ext = r.json()["errors"][0]["extensions"]
            assert ext["code"] == "RATE_LIMITED" and ext["limit"] == "EXPENSIVE_COST"
            assert int(r.headers["retry-after"]) >= 3000  # (4,040 - 920) units at 1 a second
            r = await client.post(url, json={"query": "{ categories { name } }"})  # cheap ones still run
            assert "errors" not in r.json(), r.text


def _pq(query: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(query.encode()).hexdigest()}}


async def test_the_apq_store_in_redis_has_a_total_cap(stack: ThreadedStack) -> None:
    queries = [f"query Capped{i:02d} {{ categories {{ slug }} }}" for i in range(10)]
    fit = 200 // len(queries[0])  # 5 of 38 bytes
    settings = _settings(stack, apq_max_total_bytes=200)  # one Redis prefix: two replicas
    with ThreadServer(create_app(_sdl(stack), settings)) as a, ThreadServer(create_app(_sdl(stack), settings)) as b:
        async with httpx.AsyncClient(timeout=60, trust_env=False) as client:
            for q in queries:  # all served
                r = await client.post(a.url + "/graphql", json={"query": q, "extensions": _pq(q)})
                assert "errors" not in r.json(), r.text
            # Another replica (no local copy) finds only what fit under the cap.
            found = []
            for q in queries:
                r = await client.post(b.url + "/graphql", json={"extensions": _pq(q)})
                found.append("errors" not in r.json())
                if not found[-1]:
                    assert r.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    assert found == [True] * fit + [False] * (10 - fit), found
