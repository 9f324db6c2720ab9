"""In ``dev`` (one process, one registry) each port's ``/metrics`` serves its own component's
series: scraped together, as a Prometheus would, every series is counted once."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from deploy.stack import Stack, compose_router
from tests.support.graphql import gql

Key = tuple[str, tuple[tuple[str, str], ...]]


def keys(text: str) -> set[Key]:
    return {
        (s.name, tuple(sorted(s.labels.items())))
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    async with Stack(fresh_database=True, seed=False, router=compose_router) as running:
        yield running


async def test_every_series_is_on_exactly_one_port(stack: Stack) -> None:
    # Work for the router, the catalog, users and the kit's shared metrics.
    await gql(stack.url("router"), '{ product(sku: "NO-SUCH-SKU") { name } }')
    await gql(stack.url("router"), "{ me { email } }")
    registry = keys(generate_latest(REGISTRY).decode())  # before the scrapes: they add no series
    scraped: dict[str, set[Key]] = {}
    async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
        for name in stack.urls:
            response = await client.get(stack.base_url(name) + "/metrics")
            assert response.status_code == 200, name
            scraped[name] = keys(response.text)

    for name, mine in scraped.items():
        for other, theirs in scraped.items():
            if other != name:
                assert not mine & theirs, (name, other, sorted(mine & theirs)[:5])
    missing = registry - set().union(*scraped.values())
    assert not missing, sorted(missing)[:10]

    def names(port: str) -> set[str]:
        return {name for name, _ in scraped[port]}

    def subgraph_labels(port: str) -> set[str]:
        return {dict(labels)["subgraph"] for name, labels in scraped[port] if "subgraph" in dict(labels)}

    assert "shopgraph_router_requests_total" in names("router")
    assert "process_cpu_seconds_total" in names("router")  # the process's own: once, on the router's port
    assert {"shopgraph_subgraph_operations_total", "shopgraph_db_pool_size"} <= names("catalog")
    for subgraph in stack.subgraphs:
        assert not any(n.startswith("shopgraph_router_") for n in names(subgraph)), subgraph
        assert subgraph_labels(subgraph) == {subgraph}, subgraph
        assert "process_cpu_seconds_total" not in names(subgraph)
    # The router's own series by subgraph (its fetches) stay on the router's port.
    assert "shopgraph_router_subgraph_fetch_duration_seconds_count" in names("router")
