"""The outbox relay: committed outbox rows → a Redis Stream, in id order, at least once.

One relay publishes at a time: the leader holds a session advisory lock on its
own PostgreSQL connection (released by the server when that connection dies,
so a killed leader is replaced within a poll interval). The leader wakes on the
NOTIFY each outbox insert sends at commit, and polls anyway.

Each row becomes a stream entry whose id is ``<outbox id>-0``: a re-publish
after a crash between XADD and the UPDATE is refused by Redis as "equal or
smaller", which is how publishing stays idempotent. Each entry also carries
``prev``, the id of the event before it, so a reader can tell when the stream
has lost entries (Redis restarted empty, or trimmed) and take them from
PostgreSQL instead (see ``kit.streams``).

If Redis is down the rows simply stay unpublished and the relay retries with
backoff; if the relay dies anywhere, the next leader starts over from the
oldest unpublished row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from . import metrics
from .migrate import libpq_url
from .outbox import RELAY_LEADER_LOCK, notify_channel

log = logging.getLogger("shopgraph.relay")

_ALREADY_PUBLISHED = "equal or smaller"


@dataclass
class OutboxRelay:
    database_url: str
    schema: str
    redis_url: str
    stream: str
    table: str = "outbox"
    batch_size: int = 500
    poll_seconds: float = 1.0
    # Approximate cap on the stream's length: readers that fall further behind
    # than this are served from PostgreSQL.
    max_stream_length: int = 100_000
    max_backoff_seconds: float = 2.0

    async def run(self) -> None:
        """Publish until cancelled, reconnecting to PostgreSQL as needed."""
        backoff = 0.05
        while True:
            try:
                conn = await asyncpg.connect(
                    libpq_url(self.database_url),
                    server_settings={"search_path": self.schema, "application_name": f"{self.schema}-relay"},
                )
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("relay: cannot reach PostgreSQL (%s); retrying", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_seconds)
                continue
            backoff = 0.05
            try:
                await self._lead(conn)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("relay: lost PostgreSQL (%s); reconnecting", exc)
                await asyncio.sleep(backoff)
            except Exception:
                # Anything else is a bug, but a relay that stops publishing silently loses
                # every later event's delivery: log it loudly and start over.
                log.exception("relay: unexpected failure; restarting")
                await asyncio.sleep(self.max_backoff_seconds)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.close(), 2)
                if not conn.is_closed():
                    conn.terminate()

    async def _lead(self, conn: asyncpg.Connection) -> None:
        # Followers retry: the leader's lock goes when its connection does.
        while True:
            lock = "SELECT pg_try_advisory_lock($1, hashtext(current_schema() || '.' || $2))"
            if await conn.fetchval(lock, RELAY_LEADER_LOCK, self.table):
                break
            await asyncio.sleep(self.poll_seconds)
        log.info("relay: publishing %s.%s to %s", self.schema, self.table, self.stream)
        metrics.RELAY_LEADER.labels(self.stream).set(1)
        wake = asyncio.Event()
        await conn.add_listener(notify_channel(self.schema, self.table), lambda *_: wake.set())
        redis = aioredis.from_url(self.redis_url, socket_timeout=5, socket_connect_timeout=2)
        backoff = 0.05
        try:
            while True:
                wake.clear()
                try:
                    published = await self.publish_batch(conn, redis)
                    backoff = 0.05
                except RedisError as exc:
                    log.warning("relay: Redis unavailable (%s); retrying in %.2fs", exc, backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self.max_backoff_seconds)
                    continue
                if published >= self.batch_size:
                    continue  # more are waiting
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), self.poll_seconds)
        finally:
            metrics.RELAY_LEADER.labels(self.stream).set(0)
            await redis.aclose()

    async def publish_batch(self, conn: asyncpg.Connection, redis: aioredis.Redis) -> int:
        """Publish the oldest unpublished rows; return how many."""
        rows = await conn.fetch(
            f"SELECT id, event_type, aggregate_id, payload::text AS payload, created_at FROM {self.table}"
            " WHERE published_at IS NULL ORDER BY id LIMIT $1",
            self.batch_size,
        )
        if not rows:
            metrics.RELAY_BACKLOG.labels(self.stream).set(0)
            return 0
        prev = await conn.fetchval(f"SELECT coalesce(max(id), 0) FROM {self.table} WHERE id < $1", rows[0]["id"])
        pipe = redis.pipeline(transaction=False)
        for row in rows:
            fields: dict[bytes | bytearray | memoryview[int] | str | int | float, Any] = {
                "type": row["event_type"],
                "aggregate": str(row["aggregate_id"]),
                "payload": row["payload"],
                "created": row["created_at"].isoformat(),
                "prev": str(prev),
            }
            pipe.xadd(self.stream, fields, id=f"{row['id']}-0", maxlen=self.max_stream_length, approximate=True)
            prev = row["id"]
        for result in await pipe.execute(raise_on_error=False):
            if isinstance(result, ResponseError) and _ALREADY_PUBLISHED in str(result):
                continue  # published before a crash: at-least-once, and Redis kept it
            if isinstance(result, BaseException):
                raise result
        await conn.execute(
            f"UPDATE {self.table} SET published_at = now() WHERE id = ANY($1::bigint[])", [r["id"] for r in rows]
        )
        metrics.RELAY_PUBLISHED.labels(self.stream).inc(len(rows))
        # A short batch emptied the backlog; a full one may have left more (counted only then).
        backlog = (
            0
            if len(rows) < self.batch_size
            else await conn.fetchval(f"SELECT count(*) FROM {self.table} WHERE published_at IS NULL")
        )
        metrics.RELAY_BACKLOG.labels(self.stream).set(backlog)
        return len(rows)
