"""kit.revocation's in-process copy of account states: used only while its subscription to changes is live."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from deploy.stack import ThreadedStack
from subgraphs.kit.auth import Identity, InvalidToken
from subgraphs.kit.config import Settings
from subgraphs.kit.revocation import AccountStates, changes_channel, check, following_changes, publish, state_key

USER_ID = uuid.uuid4()


async def _until(condition: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"not within {within}s"
        await asyncio.sleep(0.01)


@pytest.fixture
def settings(stack: ThreadedStack) -> Settings:
    """The stack's Redis under a prefix (and so a changes channel) of this test's own."""
    assert stack.settings is not None
    return dataclasses.replace(stack.settings, redis_prefix=f"shopgraph_test_{secrets.token_hex(6)}:")


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(settings.redis_url)
    try:
        yield client
    finally:
        keys = [k async for k in client.scan_iter(match=settings.redis_prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


class Lookups:
    """The users table's answers, counted."""

    def __init__(self, valid_after: float | None) -> None:
        self.valid_after = valid_after
        self.calls = 0

    async def __call__(self, user_id: uuid.UUID) -> float | None:
        self.calls += 1
        return self.valid_after


def _caller(issued_at: float) -> Identity:
    return Identity(user_id=USER_ID, role="CUSTOMER", service="router", issued_at=issued_at)


async def test_a_state_is_read_once_while_followed_and_a_change_reaches_the_next_check(
    settings: Settings, redis: aioredis.Redis
) -> None:
    states = AccountStates()
    lookups = Lookups(100.0)
    async with following_changes(states, settings):
        await _until(lambda: states.live)
        await publish(redis, settings, USER_ID, 100.0)
        await check(redis, settings, _caller(200.0), lookups, states)
        assert states.get(USER_ID) == (True, 100.0)
        # From memory now: Redis forgetting the key (no change announced) is not even noticed.
        await redis.delete(state_key(settings, USER_ID))
        await check(redis, settings, _caller(200.0), lookups, states)
        assert lookups.calls == 0

        await publish(redis, settings, USER_ID, 300.0)  # signed out everywhere
        await _until(lambda: not states.get(USER_ID)[0])
        with pytest.raises(InvalidToken, match="signed out"):
            await check(redis, settings, _caller(200.0), lookups, states)
        assert states.get(USER_ID) == (True, 300.0)

        await publish(redis, settings, USER_ID, None)  # deleted
        await _until(lambda: states.get(USER_ID) != (True, 300.0))
        for _ in range(2):  # read from Redis, then from memory
            with pytest.raises(InvalidToken, match="no longer exists"):
                await check(redis, settings, _caller(400.0), lookups, states)
        assert states.get(USER_ID) == (True, None)
    assert not states.live and states.get(USER_ID) == (False, None)


async def test_nothing_is_kept_or_used_without_a_live_subscription(settings: Settings, redis: aioredis.Redis) -> None:
    states = AccountStates()  # never subscribed
    lookups = Lookups(100.0)
    await publish(redis, settings, USER_ID, 100.0)
    await check(redis, settings, _caller(200.0), lookups, states)
    assert states.get(USER_ID) == (False, None)
    await redis.delete(state_key(settings, USER_ID))
    await check(redis, settings, _caller(200.0), lookups, states)
    assert lookups.calls == 1  # Redis, then the users table: as without the copy

    unreachable = dataclasses.replace(settings, redis_url="redis://127.0.0.1:1/0")
    async with following_changes(states, unreachable):
        await _until(lambda: states.generation > 0)  # the subscription was tried, and lost
        await check(redis, settings, _caller(200.0), lookups, states)
        assert not states.live and states.get(USER_ID) == (False, None)


async def test_a_lost_subscription_empties_the_copy_until_it_is_back(settings: Settings, redis: aioredis.Redis) -> None:
    states = AccountStates(heartbeat=0.1, max_silence=0.5)
    lookups = Lookups(100.0)
    async with following_changes(states, settings):
        await _until(lambda: states.live)
        await check(redis, settings, _caller(200.0), lookups, states)
        assert states.get(USER_ID) == (True, 100.0)
        subscribers = [c for c in await redis.client_list() if c["name"] == changes_channel(settings)]
        assert len(subscribers) == 1
        generation = states.generation
        await redis.client_kill_filter(_id=subscribers[0]["id"])
        await _until(lambda: states.generation != generation)
        assert states.get(USER_ID) == (False, None)
        await _until(lambda: states.live)  # subscribed again, starting empty
        assert states.get(USER_ID) == (False, None)


async def test_a_state_read_across_a_change_is_not_kept(settings: Settings) -> None:
    states = AccountStates()
    async with following_changes(states, settings):
        await _until(lambda: states.live)
        generation = states.generation
        states.changed(uuid.uuid4())  # any account's change while this one's state was being read
        states.put(USER_ID, 100.0, generation)
        assert states.get(USER_ID) == (False, None)
        states.put(USER_ID, 100.0, states.generation)
        assert states.get(USER_ID) == (True, 100.0)
