"""The entity cache's versions against a real Redis: stamps, change events, lost events.

``EntityCache`` on its own (no router, no subgraph): what it serves after a
stamp, what a change event on the stream invalidates, and that a gap in the
stream's ``prev`` chain (events lost) drops everything. The events are written
as the outbox relay writes them (id ``<outbox id>-0``, ``prev``, JSON payload).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable

import orjson
import pytest
import redis.asyncio as aioredis

from deploy.stack import ThreadedStack
from router.entity_cache import EntityCache, Policy, note, now_ms, response_policy
from tests.support.wait import next_millisecond, until

PUBLIC = Policy(600, private=False)
QUERY = "query($representations: [_Any!]!) { _entities(representations: $representations) { ... on Product { name } } }"


@pytest.fixture
async def cache(stack: ThreadedStack) -> AsyncIterator[EntityCache]:
    client = aioredis.from_url(stack.settings.redis_url)
    # A timeout far above the router's 50 ms: these tests are about versions, and a busy machine
    # (parallel workers) must not turn a slow Redis reply into a bypass that answers None.
    yield EntityCache(client, f"{stack.settings.redis_prefix}test-ec-{secrets.token_hex(4)}:", timeout=5.0)
    await client.aclose()


def _rep(product: str) -> tuple[bytes, str | None]:
    rep = {"__typename": "Product", "id": product}
    return orjson.dumps(rep, option=orjson.OPT_SORT_KEYS), EntityCache.entity_tag(rep)


async def _cached(cache: EntityCache, *products: str) -> list[object]:
    reps = [_rep(p) for p in products]
    return list(await cache.lookup("catalog", QUERY, "pub", [r[0] for r in reps], [r[1] for r in reps]))


async def _stamp(cache: EntityCache, tag: str) -> int:
    """The time (ms) ``tag`` was last stamped."""
    raw = await cache.redis.get(cache.tag(tag))
    assert raw is not None, f"{tag} was never stamped"
    return int(raw)


async def _store(cache: EntityCache, *products: str) -> None:
    items = [(_rep(p)[0], {"name": p}) for p in products]
    await cache.store("catalog", QUERY, "pub", PUBLIC, now_ms() - 1, items)


async def test_stamps_invalidate_what_was_fetched_before(cache: EntityCache) -> None:
    await _store(cache, "p1", "p2")
    assert await _cached(cache, "p1", "p2", "p3") == [{"name": "p1"}, {"name": "p2"}, None]
    await cache.stamp("Product:p1")
    assert await _cached(cache, "p1", "p2") == [None, {"name": "p2"}]
    await cache.stamp("@write:catalog")  # a mutation through this router
    assert await _cached(cache, "p2") == [None]
    await next_millisecond(await _stamp(cache, "@write:catalog") + 1)
    await _store(cache, "p2")  # fetched again, after the stamp
    assert await _cached(cache, "p2") == [{"name": "p2"}]


async def test_change_events_and_lost_events(stack: ThreadedStack, cache: EntityCache) -> None:
    stream = f"{cache.prefix}catalog:events"
    redis = cache.redis

    async def publish(outbox_id: int, prev: int, product: str) -> None:
        fields = {"type": "ProductChanged", "aggregate": product, "payload": '{"typename": "Product"}', "prev": prev}
        await redis.xadd(stream, fields, id=f"{outbox_id}-0")  # type: ignore[arg-type]

    await publish(1, 0, "p0")
    follower = asyncio.create_task(cache.follow({stream: "catalog"}, block_ms=50))
    try:
        # The follower starts at the stream's end (event 1 predates it) and stamps everything then.
        await until(lambda: redis.exists(cache.tag("@all")), what="the follower's start stamp")
        await next_millisecond(await _stamp(cache, "@all") + 1)  # what is fetched now (at now - 1 ms) is newer
        await _store(cache, "p1", "p2", "p3")
        await publish(2, 1, "p1")
        await _until(lambda got: got[0] is None and got[1] == {"name": "p2"}, cache)
        # Event 5 names 4 as the one before it: 3 and 4 never arrived (lost), so nothing cached is trusted.
        await next_millisecond(await _stamp(cache, "Product:p1") + 1)  # p1 fetched after its stamp
        await _store(cache, "p1")
        assert await _cached(cache, "p1") == [{"name": "p1"}]  # trusted until the lost events show
        await publish(5, 4, "p9")
        await _until(lambda got: got == [None, None, None], cache)
    finally:
        follower.cancel()
    # The position read is kept in Redis for the next start.
    assert await redis.hget(f"{cache.prefix}cursor", stream) == b"5-0"


async def _until(check: Callable[[list[object]], bool], cache: EntityCache) -> None:
    async def holds() -> bool:
        return check(await _cached(cache, "p1", "p2", "p3"))

    await until(holds, within=5, what="the cache's answer")


def test_response_policy_is_the_most_restrictive() -> None:
    with response_policy() as policy:
        note(Policy(600, private=False))
        note(Policy(60, private=True))
    assert policy() == Policy(60, private=True)
    with response_policy() as policy:
        note(Policy(600, private=False))
        note(None)
    assert policy() is None
    assert Policy.parse("max-age=600, public") == Policy(600, private=False)
    assert Policy.parse("private, max-age=30") == Policy(30, private=True)
    assert Policy.parse("no-store") is None
    assert Policy.parse("max-age=0, public") is None
    assert Policy.parse(None) is None
