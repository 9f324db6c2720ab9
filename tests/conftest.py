"""Suite-wide fixtures: one running stack for the whole session, HTTP clients.

The stack uses DATABASE_URL / REDIS_URL when set, else embedded servers. Either
way it runs in a fresh ``shopgraph_test_<hex>`` database and under a unique
Redis key prefix, both removed when the session ends. It runs in a thread of
its own, so sync tests and async tests (any event loop) can call it.

Call GraphQL with ``tests.support.graphql.gql(url, query, variables, token)``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from deploy.stack import Stack, ThreadedStack


@pytest.fixture(scope="session")
def stack() -> Iterator[ThreadedStack]:
    """All subgraphs, migrated and seeded (demo accounts + catalog), on free ports.

    ``stack.url("users")`` is a GraphQL endpoint, ``stack.apps["orders"]`` its
    Starlette app, ``stack.settings`` the shared Settings, ``stack.seeded`` the
    demo data, ``stack.run(coro)`` runs a coroutine in the servers' loop.
    """
    with Stack(fresh_database=True, seed=True).start_in_thread() as running:
        yield running


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as http:
        yield http


@pytest.fixture
def sync_client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as http:
        yield http


@pytest.fixture(scope="session")
def demo_accounts(stack: ThreadedStack) -> dict[str, tuple[str, str]]:
    """Role -> (email, password) of the seeded demo accounts, e.g. ``demo_accounts["ADMIN"]``."""
    return {role: (email, password) for role, email, password in stack.seeded.accounts}
