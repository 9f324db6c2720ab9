"""Fan-out of an outbox's events to in-process subscribers: one Redis reader per process.

The hub reads the relay's stream (XREAD BLOCK) and hands each event, in id
order, to every subscriber's bounded queue. PostgreSQL stays the source of
truth, so nothing Redis forgets is lost:

- each stream entry names the event before it (``prev``); when that is newer
  than the last event the hub delivered, the stream lost entries (Redis
  restarted empty, or trimmed past a slow reader) and the hub takes the missing
  range from the outbox table before going on;
- after any Redis error, and whenever a read times out idle, the hub checks the
  outbox for published events it has not delivered;
- a subscriber that resumes ``after`` an id replays from the outbox up to the
  hub's position, then continues live: no gap and no duplicate, because
  committed outbox ids form a prefix (see ``kit.outbox``) and the hand-over
  happens in one step of the event loop.

A subscriber may follow one key only (e.g. one order): the hub keeps those
subscribers indexed by key and hands each event only to its key's
subscribers, so filtering costs once per event, not once per subscriber.

A subscriber whose queue fills up is dropped with ``SubscriberTooSlow`` (it can
resume from its last id) rather than letting memory grow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

import orjson
import redis.asyncio as aioredis
from sqlalchemy import Table

from .db import Database
from .outbox import OutboxEvent, last_event_id, read_events
from .periodic import stop_task
from .telemetry import event_arrived

log = logging.getLogger("shopgraph.streams")


class HasId(Protocol):
    @property
    def id(self) -> int: ...


E = TypeVar("E", bound=HasId)
Enrich = Callable[[Sequence[OutboxEvent]], Awaitable[Sequence[E]]]


class SubscriberTooSlow(Exception):
    """The subscriber fell too far behind; resume with ``after`` its last id."""

    def __init__(self, last_id: int | None) -> None:
        super().__init__(f"Too slow to keep up with the events; resubscribe with after: {last_id or 0}.")
        self.last_id = last_id


class HubClosed(Exception):
    """The process is shutting down."""


class _Queue(Generic[E]):
    __slots__ = ("closed", "items", "limit", "overflowed", "ready")

    def __init__(self, limit: int) -> None:
        self.items: deque[E] = deque()
        self.limit = limit
        self.ready = asyncio.Event()
        self.overflowed = False
        self.closed = False

    def push(self, events: Sequence[E]) -> bool:
        if len(self.items) + len(events) > self.limit:
            self.overflowed = True
            self.items.clear()
        else:
            self.items.extend(events)
        self.ready.set()
        return not self.overflowed


def decode_entry(event_id: int, fields: dict[bytes, bytes]) -> OutboxEvent:
    return OutboxEvent(
        id=event_id,
        event_type=fields[b"type"].decode(),
        aggregate_id=uuid.UUID(fields[b"aggregate"].decode()),
        payload=orjson.loads(fields[b"payload"]),
        created_at=datetime.fromisoformat(fields[b"created"].decode()),
    )


class Subscription(Generic[E]):
    """One subscriber's place in the hub: events after ``head`` arrive in its queue."""

    def __init__(self, hub: EventHub[E], queue: _Queue[E], head: int, key: Hashable | None = None) -> None:
        self.hub = hub
        self.queue = queue
        self.head = head
        self.key = key  # None: every event; else only the events ``hub.key_of`` maps to it

    async def events(self, after: int | None) -> AsyncIterator[E]:
        """Events after ``after`` (None: after ``head``): those up to ``head`` from PostgreSQL, then live."""
        cursor = after
        while cursor is not None and cursor < self.head:
            page = await self.hub.replay(cursor, upto=self.head)
            if not page:
                break
            for event in page:
                cursor = event.id
                yield event
        queue = self.queue
        while True:
            if queue.overflowed:
                raise SubscriberTooSlow(cursor)
            if not queue.items:
                if queue.closed:
                    raise HubClosed("The server is shutting down; resubscribe.")
                queue.ready.clear()
                await queue.ready.wait()
                continue
            event = queue.items.popleft()
            if cursor is None or event.id > cursor:
                cursor = event.id
                yield event

    def close(self) -> None:
        self.hub.unsubscribe(self)


class EventHub(Generic[E]):
    def __init__(
        self,
        *,
        db: Database,
        table: Table,
        redis_url: str,
        stream: str,
        enrich: Enrich[E],
        key_of: Callable[[E], Hashable] | None = None,
        queue_limit: int = 2000,
        page_size: int = 500,
        block_ms: int = 2000,
    ) -> None:
        self.db = db
        self.table = table
        self.redis_url = redis_url
        self.stream = stream
        self.enrich = enrich
        self.key_of = key_of  # what keyed subscribers follow (see ``subscribe``)
        self.queue_limit = queue_limit
        self.page_size = page_size
        self.block_ms = block_ms
        self.last_id = 0  # the newest event handed to subscribers
        self._queues: set[_Queue[E]] = set()
        self._keyed: dict[Hashable, set[_Queue[E]]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        async with self.db.read() as conn:
            self.last_id = await last_event_id(conn, self.table)
        self._task = asyncio.create_task(self._run(), name=f"event-hub:{self.stream}")

    async def stop(self) -> None:
        if self._task is not None:
            await stop_task(self._task)
        for queue in [*self._queues, *(q for qs in self._keyed.values() for q in qs)]:
            queue.closed = True
            queue.ready.set()

    # -- subscribers -------------------------------------------------------------------------

    def subscribe(self, key: Hashable | None = None) -> Subscription[E]:
        """Register now: the subscription gets every event after ``head`` (the hub's position now).

        With a ``key`` (the hub needs ``key_of``), only the events whose ``key_of`` is that key.
        """
        subscription = Subscription(self, _Queue(self.queue_limit), self.last_id, key)
        # Same loop step as reading ``head``: the hand-over point.
        if key is None:
            self._queues.add(subscription.queue)
        else:
            assert self.key_of is not None, "keyed subscriptions need the hub's key_of"
            self._keyed.setdefault(key, set()).add(subscription.queue)
        return subscription

    def unsubscribe(self, subscription: Subscription[E]) -> None:
        if subscription.key is None:
            self._queues.discard(subscription.queue)
        else:
            self._unkey(subscription.key, subscription.queue)

    def _unkey(self, key: Hashable, queue: _Queue[E]) -> None:
        queues = self._keyed.get(key)
        if queues is not None:
            queues.discard(queue)
            if not queues:
                del self._keyed[key]

    @property
    def subscribers(self) -> int:
        return len(self._queues) + sum(len(qs) for qs in self._keyed.values())

    async def events(self, after: int | None = None) -> AsyncIterator[E]:
        """Every event after ``after`` (None: from now on), in id order, each once."""
        cursor = after
        if cursor is not None:
            # Catch up from PostgreSQL first, without a queue filling up meanwhile.
            while True:
                page = await self.replay(cursor, published_only=True)
                for event in page:
                    cursor = event.id
                    yield event
                if len(page) < self.page_size:
                    break
        subscription = self.subscribe()
        try:
            async for event in subscription.events(cursor):
                yield event
        finally:
            subscription.close()

    async def replay(self, after: int, *, upto: int | None = None, published_only: bool = False) -> Sequence[E]:
        async with self.db.read() as conn:
            found = await read_events(
                conn, self.table, after=after, upto=upto, limit=self.page_size, published_only=published_only
            )
        return await self.enrich(found) if found else []

    def _deliver(self, events: Sequence[E]) -> None:
        if not events:
            return
        self.last_id = events[-1].id
        for queue in list(self._queues):
            if not queue.push(events):
                self._queues.discard(queue)
        if not self._keyed:
            return
        assert self.key_of is not None
        by_key: dict[Hashable, list[E]] = {}
        for event in events:
            key = self.key_of(event)
            if key in self._keyed:
                by_key.setdefault(key, []).append(event)
        for key, mine in by_key.items():
            for queue in list(self._keyed[key]):
                if not queue.push(mine):
                    self._unkey(key, queue)

    # -- the reader --------------------------------------------------------------------------

    async def _run(self) -> None:
        redis: aioredis.Redis | None = None
        backoff = 0.05
        try:
            while True:
                try:
                    if redis is None:
                        redis = aioredis.from_url(
                            self.redis_url, socket_timeout=self.block_ms / 1000 + 5, socket_connect_timeout=2
                        )
                        await redis.ping()
                        await self._catch_up()  # what the stream may have lost while we were away
                    reply: Any = await redis.xread(
                        {self.stream: f"{self.last_id}-0"}, count=self.page_size, block=self.block_ms
                    )
                    if reply:
                        await self._take(reply[0][1])
                    else:
                        await self._catch_up()
                    backoff = 0.05
                except Exception as exc:
                    log.warning("event hub %s: %s; retrying in %.2fs", self.stream, exc, backoff)
                    if redis is not None:
                        with contextlib.suppress(Exception):
                            await redis.aclose()
                        redis = None
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)
        finally:
            if redis is not None:
                with contextlib.suppress(Exception):
                    await redis.aclose()

    async def _take(self, entries: Sequence[tuple[bytes, dict[bytes, bytes]]]) -> None:
        batch: list[OutboxEvent] = []
        cursor = self.last_id
        for entry_id, fields in entries:
            event_id = int(entry_id.split(b"-", 1)[0])
            if event_id <= cursor:
                continue
            prev = int(fields.get(b"prev", b"0"))
            if prev > cursor:
                # The stream lost (cursor, prev]: deliver what we have, then those, from PostgreSQL.
                if batch:
                    self._deliver(await self.enrich(batch))
                    batch = []
                await self._deliver_range(cursor, prev)
            batch.append(decode_entry(event_id, fields))
            event_arrived(self.stream, batch[-1])
            cursor = event_id
        if batch:
            self._deliver(await self.enrich(batch))

    async def _catch_up(self) -> None:
        async with self.db.read() as conn:
            newest = await last_event_id(conn, self.table)
        if newest > self.last_id:
            await self._deliver_range(self.last_id, newest)

    async def _deliver_range(self, after: int, upto: int) -> None:
        while after < upto:
            page = await self.replay(after, upto=upto)
            if not page:
                return
            self._deliver(page)
            after = page[-1].id
