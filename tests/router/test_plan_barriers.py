"""Issue 19 part 2: a plan runs without barriers between independent branches.

``{ me { name } topProducts { name shippingEstimate } }``: ``me`` (accounts) is one branch;
``topProducts`` (products) then ``shippingEstimate`` (inventory, an entity fetch that needs the
products' data) is another. Run level by level, the inventory fetch waited for the slowest
fetch of the level before it, accounts' too. Here accounts does not answer until the inventory
fetch has arrived: with a barrier the request could only end at accounts' deadline; without
one it completes. No clock decides the outcome: the order of arrivals does.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from router.config import Settings
from router.http import create_app
from router.plan import Parallel, Sequence
from router.planner import Planner
from tests.router.router_harness import Counter, ThreadServer, compose, subgraph_app

QUERY = "{ me { name } topProducts(first: 2) { name shippingEstimate } }"


def test_the_printed_plan_has_the_two_branches(subgraphs: ThreadServer) -> None:
    from graphql import parse

    from router.operation import build_operation
    from router.supergraph import Supergraph

    sdl = compose("shop", subgraphs.url)
    plan = Planner(Supergraph(sdl)).plan(build_operation(parse(QUERY).definitions[0], {}))  # type: ignore[arg-type]
    assert plan.node is not None
    (top,) = plan.node.nodes
    assert isinstance(top, Parallel), plan
    shapes = sorted(type(n).__name__ for n in top.nodes)
    assert shapes == ["Fetch", "Sequence"], plan
    chain = next(n for n in top.nodes if isinstance(n, Sequence))
    assert len(chain.nodes) == 2, plan
    assert "Parallel {" in str(plan) and "Sequence {" in str(plan)


async def test_a_slow_branch_holds_up_only_what_waits_for_it(counter: Counter) -> None:
    app = subgraph_app(counter)
    inventory_seen = asyncio.Event()  # set and awaited on the subgraphs' server loop
    order: list[str] = []

    async def gated(scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith("/shop/inventory"):
            order.append("inventory")
            inventory_seen.set()
        if scope["type"] == "http" and path.startswith("/shop/accounts"):
            order.append("accounts asked")
            # the slow branch: answers only once the other branch's second fetch has arrived
            await inventory_seen.wait()
            order.append("accounts answers")
        await app(scope, receive, send)

    with ThreadServer(gated) as subgraphs:
        sdl = compose("shop", subgraphs.url)
        settings = Settings(anonymous_only=True, rate_limits=False, request_timeout=20, subgraph_timeout=5)
        with ThreadServer(create_app(sdl, settings)) as router:
            async with httpx.AsyncClient(timeout=60) as client:
                r = await client.post(router.url + "/graphql", json={"query": QUERY})
    body = r.json()
    assert "errors" not in body, body  # with a barrier: accounts timed out (5 s) waiting for inventory
    assert [p["shippingEstimate"] for p in body["data"]["topProducts"]], body
    assert order.index("inventory") < order.index("accounts answers"), order
