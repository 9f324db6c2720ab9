"""A durable reader of a Redis Stream another subgraph's relay fills: each entry takes effect once.

The reader keeps its position (the last entry id it processed) in its own
subgraph's schema, in a ``stream_positions`` table, and advances it in the
same transaction as the entry's effects. A crash before the commit replays
the entry; a crash after it does not; a duplicate delivery (the relay
re-publishing, a second replica reading the same entry) finds the position
already past it and changes nothing. Replicas serialise on the position row
(``FOR UPDATE``), so an entry is handled by one of them at a time.

A handler may return work to run after the commit (a call to another
subgraph): that work must be idempotent and repaired by a sweeper if it does
not get done, because a crash between the commit and it skips it.

Stream entry ids are ``<outbox id>-0`` (see ``kit.relay``), so positions
compare as integers. Entries trimmed from the stream before this reader saw
them are lost to it: the participants' reconcilers repair what that leaves
stuck.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

import orjson
import redis.asyncio as aioredis
from opentelemetry import trace
from prometheus_client import Counter
from redis.exceptions import RedisError
from sqlalchemy import Column, DateTime, MetaData, Table, Text, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from .db import Database
from .periodic import stop_task
from .telemetry import links_to_writer, tracer

log = logging.getLogger("shopgraph.consumer")

CONSUMED = Counter(
    "shopgraph_stream_consumed",
    "Stream entries a durable consumer handled, by consumer, stream and outcome (applied, duplicate, failed).",
    ["consumer", "stream", "outcome"],
)

AfterCommit = Callable[[], Awaitable[None]]


def positions_table(metadata: MetaData) -> Table:
    return Table(
        "stream_positions",
        metadata,
        Column("stream", Text, primary_key=True),
        Column("last_id", Text, nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
    )


@dataclass(frozen=True)
class StreamEntry:
    id: str
    event_type: str
    aggregate_id: uuid.UUID
    payload: dict[str, Any]

    @property
    def seq(self) -> int:
        return int(self.id.split("-", 1)[0])


Handler = Callable[[AsyncConnection, StreamEntry], Awaitable[AfterCommit | None]]


def _sequence(entry_id: str) -> int:
    return int(entry_id.split("-", 1)[0])


@dataclass
class StreamConsumer:
    name: str
    db: Database
    positions: Table
    redis_url: str
    stream: str
    handle: Handler
    block_ms: int = 500
    batch: int = 100
    max_backoff_seconds: float = 2.0

    async def position(self) -> str:
        async with self.db.read() as conn:
            last: str | None = (
                await conn.execute(select(self.positions.c.last_id).where(self.positions.c.stream == self.stream))
            ).scalar_one_or_none()
        return last or "0-0"

    async def apply(self, entry: StreamEntry) -> bool:
        """Handle one entry in its own transaction unless the position is past it; True if it took effect."""
        after: AfterCommit | None = None
        # A trace of its own (one per entry), linked to the one that wrote the event: the checkout's
        # trace leads to the saga steps it caused in other subgraphs.
        with tracer.start_as_current_span(
            f"consume {entry.event_type}",
            kind=trace.SpanKind.CONSUMER,
            links=links_to_writer(entry.payload),
        ) as span:
            span.set_attribute("shopgraph.consumer", self.name)
            span.set_attribute("shopgraph.stream_entry", entry.id)
            async with self.db.transaction() as conn:
                await conn.execute(
                    pg_insert(self.positions)
                    .values(stream=self.stream, last_id="0-0", updated_at=func.now())
                    .on_conflict_do_nothing()
                )
                last = (
                    await conn.execute(
                        select(self.positions.c.last_id).where(self.positions.c.stream == self.stream).with_for_update()
                    )
                ).scalar_one()
                if _sequence(last) >= entry.seq:
                    CONSUMED.labels(self.name, self.stream, "duplicate").inc()
                    return False
                after = await self.handle(conn, entry)
                await conn.execute(
                    self.positions.update()
                    .where(self.positions.c.stream == self.stream)
                    .values(last_id=entry.id, updated_at=func.now())
                )
        CONSUMED.labels(self.name, self.stream, "applied").inc()
        if after is not None:
            try:
                await after()
            except Exception:
                log.warning(
                    "%s: follow-up of %s %s failed; its sweeper repairs it",
                    self.name,
                    entry.event_type,
                    entry.id,
                    exc_info=True,
                )
        return True

    async def run(self) -> None:
        """Read and apply until cancelled; Redis or PostgreSQL outages only delay it."""
        redis = aioredis.from_url(self.redis_url, socket_timeout=self.block_ms / 1000 + 5, socket_connect_timeout=2)
        backoff = 0.05
        # The position is read from PostgreSQL at the start and after a failure only: past an entry
        # (applied, or a duplicate another replica applied) it is at least that entry. An idle consumer
        # then polls Redis alone, not the database every ``block_ms``.
        last: str | None = None
        try:
            while True:
                try:
                    if last is None:
                        last = await self.position()
                    answer = cast(
                        "list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]",
                        await redis.xread({self.stream: last}, count=self.batch, block=self.block_ms),
                    )
                    for _stream, entries in answer or []:
                        for entry_id, fields in entries:
                            entry = _entry(entry_id, fields)
                            await self.apply(entry)
                            last = entry.id
                    backoff = 0.05
                except asyncio.CancelledError:
                    raise
                except (RedisError, OSError) as exc:
                    last = None
                    log.warning("%s: cannot read %s (%s); retrying", self.name, self.stream, exc)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self.max_backoff_seconds)
                except Exception:
                    last = None
                    CONSUMED.labels(self.name, self.stream, "failed").inc()
                    log.exception("%s: an entry of %s failed; retrying it", self.name, self.stream)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self.max_backoff_seconds)
        finally:
            await redis.aclose()


def _entry(entry_id: bytes | str, fields: dict[bytes, bytes]) -> StreamEntry:
    def text(key: str) -> str:
        value = fields.get(key.encode()) or b""
        return value.decode()

    return StreamEntry(
        id=entry_id.decode() if isinstance(entry_id, bytes) else entry_id,
        event_type=text("type"),
        aggregate_id=uuid.UUID(text("aggregate")),
        payload=orjson.loads(text("payload") or "{}"),
    )


@contextlib.asynccontextmanager
async def consuming(consumer: StreamConsumer) -> AsyncIterator[None]:
    """Run ``consumer`` as a task while the context is open."""
    task = asyncio.create_task(consumer.run(), name=f"consumer-{consumer.name}")
    try:
        yield
    finally:
        await stop_task(task)
