"""Plan shape: subgraph requests do not grow with list sizes; plans are cached."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from router.config import Settings
from router.http import create_app
from router.operation import build_operation
from router.plan import QueryPlan
from router.planner import Planner
from router.supergraph import Supergraph
from tests.router.router_harness import Counter, Stack, ThreadServer, compose, gql, make_stack

DEEP = """query($n: Int!) { topProducts(first: $n) { name inStock shippingEstimate
  reviews { id author { name username reviews { product { name inStock } } } } } }"""


@pytest.fixture(scope="module")
def uncapped_stack(
    subgraphs: ThreadServer, counter: Counter, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The shop stack with room for DEEP at 100 (cost 16,820): a supergraph without a manifest is
    capped at 10,000 (router.pipeline.FALLBACK_MAX_COST) and such an operation draws on the
    expensive-operation budget; this test is about plan shape, not demand control."""
    tmp = tmp_path_factory.mktemp("plans")
    yield from make_stack("shop", subgraphs, counter, tmp, gateway=False, max_cost=100_000, rate_limits=False)


async def _count(client: httpx.AsyncClient, stack: Stack, n: int) -> int:
    stack.counter.reset()
    body = await gql(client, stack.router_url, DEEP, {"n": n})
    assert "data" in body, body
    assert body["data"]["topProducts"] is not None or body.get("errors")
    assert len(body["data"]["topProducts"] or []) == n
    return stack.counter.total()


async def test_request_count_independent_of_list_size(client: httpx.AsyncClient, uncapped_stack: Stack) -> None:
    two = await _count(client, uncapped_stack, 2)
    hundred = await _count(client, uncapped_stack, 100)
    assert two == hundred
    assert two <= 8


def _plan(sdl: str, query: str) -> QueryPlan:
    from graphql import parse

    doc = parse(query)
    op = build_operation(doc.definitions[0], {})  # type: ignore[arg-type]
    return Planner(Supergraph(sdl)).plan(op)


def test_requires_from_third_subgraph_is_sequenced(edge_stack: Stack) -> None:
    plan = _plan(edge_stack.supergraph, "{ books { shippingCost } }")
    # catalog -> people (weight) -> shipping
    assert [[f.graph for f in stage] for stage in plan.stages] == [["CATALOG"], ["PEOPLE"], ["SHIPPING"]], plan


def test_shareable_field_stays_in_current_subgraph(edge_stack: Stack) -> None:
    plan = _plan(edge_stack.supergraph, "{ books { isbn title } }")
    assert len(plan.fetches) == 1, plan


def test_provides_avoids_a_fetch(shop_stack: Stack) -> None:
    plan = _plan(shop_stack.supergraph, "{ reviews { author { username } } }")
    assert len(plan.fetches) == 1, plan


async def test_representations_are_deduplicated(client: httpx.AsyncClient, shop_stack: Stack) -> None:
    # 8 reviews by 4 authors: one accounts request for 4 distinct users
    shop_stack.counter.reset()
    body = await gql(client, shop_stack.router_url, "{ reviews { author { name } } }")
    assert len(body["data"]["reviews"]) == 9
    assert shop_stack.counter.counts.get("shop/accounts") == 1


async def test_identical_inflight_requests_are_shared(
    client: httpx.AsyncClient, subgraphs: ThreadServer, counter: Counter
) -> None:
    settings = Settings(anonymous_only=True, subgraph_urls={"ACCOUNTS": subgraphs.url + "/slowish"})
    with ThreadServer(create_app(compose("shop", subgraphs.url), settings)) as router:
        counter.reset()
        bodies = await asyncio.gather(*(gql(client, router.url + "/graphql", "{ me { name } }") for _ in range(5)))
        assert all(b == {"data": {"me": {"name": "Slow"}}} for b in bodies)
        assert counter.counts == {"slowish": 1}
