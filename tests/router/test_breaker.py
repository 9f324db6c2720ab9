"""Issue 19 part 4: resilient subgraph calls (router/breaker.py), black box over HTTP.

A fixture subgraph that can be switched to answering 503 (paused behind a proxy that is
overloaded), killed (connection refused) or slow; the router configured with retries and a
breaker for it. Subgraph calls are counted where they arrive.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from router.config import ConfigError, Resilience, Settings, load
from router.http import create_app
from tests.router.router_harness import Counter, ThreadServer, compose, free_port, subgraph_app

QUERY = "{ topProducts(first: 2) { name shippingEstimate } }"
RENAME = 'mutation { renameProduct(upc: "1", name: "Table") { name } }'
POLICY = Resilience(retries=2, retry_backoff=0.01, breaker_failures=3, breaker_open_seconds=0.5)


class Switchable:
    """The fixture subgraphs, with ``/shop/<name>`` answering 503 while ``name`` is in ``failing``."""

    def __init__(self) -> None:
        self.app = subgraph_app(Counter({}))
        self.failing: set[str] = set()
        self.calls: dict[str, int] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/shop/"):
            name = scope["path"].split("/")[2]
            self.calls[name] = self.calls.get(name, 0) + 1
            if name in self.failing:
                await send({"type": "http.response.start", "status": 503, "headers": []})
                await send({"type": "http.response.body", "body": b"overloaded"})
                return
        await self.app(scope, receive, send)


@pytest.fixture
def shop() -> Iterator[tuple[Switchable, ThreadServer]]:
    subgraphs = Switchable()
    with ThreadServer(subgraphs) as server:
        yield subgraphs, server


def _router(sdl: str, **policies: Resilience) -> ThreadServer:
    settings = Settings(anonymous_only=True, rate_limits=False, subgraph_resilience=policies, request_timeout=20)
    return ThreadServer(create_app(sdl, settings))


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def _ask(client: httpx.AsyncClient, url: str, query: str = QUERY) -> dict[str, Any]:
    r = await client.post(url, json={"query": query})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_queries_retry_then_the_circuit_opens_then_a_probe_closes_it(
    shop: tuple[Switchable, ThreadServer],
) -> None:
    subgraphs, server = shop
    sdl = compose("shop", server.url)
    opened_before = _sample("shopgraph_router_breaker_transitions_total", subgraph="inventory", state="open")
    with _router(sdl, inventory=POLICY) as router:
        url = router.url + "/graphql"
        async with httpx.AsyncClient(timeout=30) as client:
            assert "errors" not in await _ask(client, url)
            subgraphs.failing.add("inventory")
            subgraphs.calls.clear()
            for _ in range(3):  # each: one call and two retries, all 503
                body = await _ask(client, url)
                assert [p["name"] for p in body["data"]["topProducts"]] == ["Product 1", "Product 2"], body
                assert body["errors"][0]["extensions"]["code"] == "SUBREQUEST_HTTP_ERROR", body
            assert subgraphs.calls["inventory"] == 9, subgraphs.calls
            assert _sample("shopgraph_router_breaker_state", subgraph="inventory") == 1
            assert _sample("shopgraph_router_breaker_transitions_total", subgraph="inventory", state="open") == (
                opened_before + 1
            )

            # Open: answered at once with the products and an error, no request to inventory.
            body = await _ask(client, url)
            assert "circuit open" in body["errors"][0]["message"] and body["data"]["topProducts"], body
            assert subgraphs.calls["inventory"] == 9, subgraphs.calls

            # Healed: after the open period, one call goes through (half-open) and closes it.
            subgraphs.failing.clear()
            deadline = time.monotonic() + 10
            while "errors" in (body := await _ask(client, url)):
                assert time.monotonic() < deadline, body
                await asyncio.sleep(0.1)
            assert body["data"]["topProducts"][0]["shippingEstimate"] is not None, body
            assert _sample("shopgraph_router_breaker_state", subgraph="inventory") == 0
            assert "errors" not in await _ask(client, url)


async def test_a_half_open_call_that_fails_opens_the_circuit_again(shop: tuple[Switchable, ThreadServer]) -> None:
    subgraphs, server = shop
    sdl = compose("shop", server.url)
    with _router(sdl, inventory=Resilience(breaker_failures=1, breaker_open_seconds=0.3)) as router:
        url = router.url + "/graphql"
        async with httpx.AsyncClient(timeout=30) as client:
            subgraphs.failing.add("inventory")
            await _ask(client, url)  # one failure: open
            subgraphs.calls.clear()
            await asyncio.sleep(0.4)  # the open period passes
            await _ask(client, url)  # the half-open call: fails, open again
            body = await _ask(client, url)
            assert "circuit open" in body["errors"][0]["message"], body
            assert subgraphs.calls == {"products": 2, "inventory": 1}, subgraphs.calls


async def test_mutations_are_never_retried(shop: tuple[Switchable, ThreadServer]) -> None:
    subgraphs, server = shop
    sdl = compose("shop", server.url)
    with _router(sdl, default=POLICY) as router:
        async with httpx.AsyncClient(timeout=30) as client:
            subgraphs.failing.add("products")
            subgraphs.calls.clear()
            body = await _ask(client, router.url + "/graphql", RENAME)
    assert body["errors"][0]["extensions"]["code"] == "SUBREQUEST_HTTP_ERROR", body
    assert subgraphs.calls == {"products": 1}, subgraphs.calls  # a lost answer may hide an applied change


async def test_a_killed_subgraph_is_retried_then_refused_at_once(shop: tuple[Switchable, ThreadServer]) -> None:
    _, server = shop
    dead = f"http://127.0.0.1:{free_port()}/shop/inventory/"  # nothing listens: connection refused
    sdl = compose("shop", server.url, {"inventory": dead})
    retried_before = _sample("shopgraph_router_subgraph_retries_total", subgraph="inventory")
    refused_before = _sample("shopgraph_router_breaker_refused_total", subgraph="inventory")
    with _router(sdl, inventory=POLICY) as router:
        async with httpx.AsyncClient(timeout=30) as client:
            for _ in range(4):
                body = await _ask(client, router.url + "/graphql")
                assert body["data"]["topProducts"] and body["errors"], body
    assert _sample("shopgraph_router_subgraph_retries_total", subgraph="inventory") - retried_before == 6
    assert _sample("shopgraph_router_breaker_refused_total", subgraph="inventory") - refused_before == 1


async def test_a_slow_subgraph_times_out_once_not_three_times(shop: tuple[Switchable, ThreadServer]) -> None:
    subgraphs, server = shop
    sdl = compose("shop", server.url)
    calls = 0

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        nonlocal calls
        if scope["type"] == "http" and scope["path"].startswith("/shop/inventory"):
            calls += 1
            await asyncio.sleep(2)
        await subgraphs(scope, receive, send)

    with ThreadServer(slow) as slow_server:
        sdl = compose("shop", server.url, {"inventory": slow_server.url + "/shop/inventory/"})
        settings = Settings(
            anonymous_only=True, rate_limits=False, subgraph_timeout=0.5, subgraph_resilience={"inventory": POLICY}
        )
        with ThreadServer(create_app(sdl, settings)) as router:
            async with httpx.AsyncClient(timeout=30) as client:
                body = await _ask(client, router.url + "/graphql")
    assert body["errors"][0]["extensions"]["code"] == "SUBREQUEST_TIMEOUT", body
    assert calls == 1  # a timeout already took the whole per-request time: not retried


def test_the_policy_is_configuration(tmp_path: Any) -> None:
    config = tmp_path / "router.yaml"
    config.write_text(
        "subgraphs:\n  resilience:\n    default: {retries: 1}\n"
        "    orders: {retries: 0, breaker_failures: 5, breaker_open_seconds: 10}\n"
    )
    settings = load(config, env={})
    assert settings.subgraph_resilience == {
        "default": Resilience(retries=1),
        "orders": Resilience(retries=0, breaker_failures=5, breaker_open_seconds=10),
    }
    config.write_text("subgraphs:\n  resilience:\n    orders: {retries: -1}\n")
    with pytest.raises(ConfigError, match="retries"):
        load(config, env={})
