"""Suite-wide fixtures: one running stack for the whole session, HTTP clients.

The stack uses DATABASE_URL / REDIS_URL when set, else embedded servers. Either
way it runs in a fresh ``shopgraph_test_<hex>`` database and under a unique
Redis key prefix, both removed when the session ends. It runs in a thread of
its own, so sync tests and async tests (any event loop) can call it.

Call GraphQL with ``tests.support.graphql.gql(url, query, variables, token)``.

The suite runs on pytest-xdist workers (``-n auto --dist loadfile`` in pyproject.toml: a
file's tests stay on one worker, so its module fixtures start once). Each worker is a
session of its own: its own stack, database, Redis prefix and embedded servers.
``pytest_xdist_auto_num_workers`` below decides how many workers ``auto`` means;
``PYTEST_XDIST_AUTO_NUM_WORKERS=N`` or ``-n N`` overrides it. See tests/README.md.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from deploy.bytecode import cache_bytecode_in

# Where PYTHONDONTWRITEBYTECODE is set (containers, this CI), every worker and every process a
# test starts (relays, routers, compose services) would compile SQLAlchemy, strawberry and our
# apps from source again: ~10 s of CPU each. Cache their bytecode outside the sources instead
# (before the heavy imports below; workers and child processes inherit it through the environment).
cache_bytecode_in(Path(tempfile.gettempdir()) / "shopgraph-tests")

# The Node tools the tests start (Apollo Gateway, its client, the query planner) carry
# OpenTelemetry's GCP resource detector: without this it asks the cloud metadata address and
# prints a warning where the tests read a tool's output (tests.support.apollo_gateway.NODE_ENV).
os.environ.setdefault("METADATA_SERVER_DETECTION", "none")
# Every anonymous operation draws its cost from its caller's budget (issue 18), and every test's client
# is 127.0.0.1: one anonymous caller for a whole session of the stacks' routers (as deploy/stack.py
# lifts the per-address connection cap). The budget itself is tested on routers with their own settings.
os.environ.setdefault("SHOPGRAPH_RATE_EXPENSIVE", "1000000/10000000")

import httpx  # noqa: E402
import pytest  # noqa: E402
from argon2 import PasswordHasher  # noqa: E402

from deploy.stack import Stack, ThreadedStack  # noqa: E402

if TYPE_CHECKING:
    from xdist.remote import Producer
    from xdist.scheduler.protocol import Scheduling

# Workers per core for a whole pass: the tests mostly wait on their servers (each worker's stack
# is in that worker's process), so a little more than one worker per core keeps the cores busy.
WORKERS_PER_CORE = 1.5


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """How many workers ``-n auto`` starts: none (in-process) for the benchmarks, which must
    run alone and one at a time, for ``-s`` and for a single test file; else per core."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # xdist's own hook reads it
    marks = str(config.option.markexpr or "")
    if ("perf" in marks and "not perf" not in marks) or config.option.capture == "no":
        return 0
    paths = [arg.split("::")[0] for arg in config.args]
    if len(paths) == 1 and Path(paths[0]).is_file():
        return 0
    return max(1, round((os.cpu_count() or 1) * WORKERS_PER_CORE))


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Producer) -> Scheduling | None:
    """``--dist loadfile`` with the longest files handed out first (tests/support/schedule.py)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from tests.support.schedule import HeavyFirst

    return HeavyFirst(config, log)


@pytest.fixture(scope="session", autouse=True)
def password_hashing_at_test_cost() -> Iterator[None]:
    """argon2id at a test cost in this worker's in-process stacks: one pass over 1 MiB instead of
    RFC 9106's three over 64 MiB (~0.1-0.3 s of CPU for every registration and sign-in, hundreds
    per pass). The same algorithm and code paths (hash, verify, rehash, the unknown-email dummy);
    services run as processes of their own (compose, ``dev --processes``) keep the real cost, and
    tests/unit/test_dummy_password_hash.py checks the real parameters."""
    from subgraphs.users import service

    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(service, "_hasher", cheap)
        # A real hash of a secret nobody knows: verified against for unknown emails, never matches.
        patch.setattr(service, "_DUMMY_HASH", cheap.hash(secrets.token_hex(16)))
        yield


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
