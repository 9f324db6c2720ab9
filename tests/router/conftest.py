"""Session fixtures for the router tests (servers started once per session)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.router.router_harness import Counter, Stack, ThreadServer, make_stack, subgraph_app


@pytest.fixture(scope="session")
def counter() -> Counter:
    return Counter({})


@pytest.fixture(scope="session")
def subgraphs(counter: Counter) -> Iterator[ThreadServer]:
    with ThreadServer(subgraph_app(counter)) as s:
        yield s


@pytest.fixture(scope="session")
def shop_stack(subgraphs: ThreadServer, counter: Counter, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from make_stack("shop", subgraphs, counter, tmp_path_factory.mktemp("shop"))


@pytest.fixture(scope="session")
def edge_stack(subgraphs: ThreadServer, counter: Counter, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from make_stack("edge", subgraphs, counter, tmp_path_factory.mktemp("edge"))


@pytest.fixture(scope="session")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30, trust_env=False) as c:
        yield c
