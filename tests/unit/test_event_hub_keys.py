"""The event hub's key index: a keyed subscriber (``orderUpdated(id:)``) is handed
only its key's events, where they enter the process, not every event to filter."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from sqlalchemy import Column, Integer, MetaData, Table

from subgraphs.kit.db import Database
from subgraphs.kit.streams import EventHub

TABLE = Table("outbox", MetaData(), Column("id", Integer, primary_key=True))


@dataclass(frozen=True)
class Ev:
    id: int
    order: str


def hub() -> EventHub[Ev]:
    # Never started: events are handed in as the reader would (``_deliver``); nothing touches PG or Redis.
    db = Database("postgresql://unused@127.0.0.1:1/unused", "unused")

    async def enrich(events: Sequence[object]) -> list[Ev]:
        raise AssertionError("not used")

    return EventHub(
        db=db, table=TABLE, redis_url="redis://127.0.0.1:1/0", stream="s", enrich=enrich, key_of=lambda e: e.order
    )


async def take(events: AsyncIterator[Ev], n: int) -> list[Ev]:
    return [await asyncio.wait_for(anext(events), 5) for _ in range(n)]


async def test_keyed_subscribers_get_only_their_keys_events_and_the_index_empties() -> None:
    h = hub()
    a, b, every = h.subscribe("A"), h.subscribe("B"), h.subscribe()
    h._deliver([Ev(1, "A"), Ev(2, "B"), Ev(3, "C"), Ev(4, "A")])
    assert list(a.queue.items) == [Ev(1, "A"), Ev(4, "A")]  # filtered before queueing: B's and C's never reach it
    assert list(b.queue.items) == [Ev(2, "B")]
    assert [e.id for e in await take(every.events(None), 4)] == [1, 2, 3, 4]
    assert [e.id for e in await take(a.events(None), 2)] == [1, 4]
    assert h.subscribers == 3
    for s in (a, b, every):
        s.close()
    assert h.subscribers == 0
    assert h._keyed == {}
    await h.db.engine.dispose()
