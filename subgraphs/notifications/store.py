"""The worker's SQL (asyncpg, schema ``notifications``): cursors, deliveries, dead letters."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from subgraphs.kit.outbox import OutboxEvent

from .plans import Planned


@dataclass(frozen=True)
class Delivery:
    id: int
    idempotency_key: str
    event_type: str
    template: str
    transactional: bool
    user_id: Any
    recipient: str | None
    context: dict[str, Any]
    traceparent: str | None
    message_id: str
    event_created_at: datetime
    attempts: int

    @classmethod
    def from_record(cls, row: asyncpg.Record) -> Delivery:
        return cls(
            id=row["id"],
            idempotency_key=row["idempotency_key"],
            event_type=row["event_type"],
            template=row["template"],
            transactional=row["transactional"],
            user_id=row["user_id"],
            recipient=row["recipient"],
            context=json.loads(row["context"]),
            traceparent=row["traceparent"],
            message_id=row["message_id"],
            event_created_at=row["event_created_at"],
            attempts=row["attempts"],
        )


async def lock_cursor(conn: asyncpg.Connection, stream: str) -> tuple[int, bool]:
    """The stream's position, locked for this transaction; ``True`` if it was just created (first start)."""
    created = await conn.fetchval(
        "INSERT INTO stream_cursors (stream, last_id) VALUES ($1, 0) ON CONFLICT DO NOTHING RETURNING true", stream
    )
    last_id = await conn.fetchval("SELECT last_id FROM stream_cursors WHERE stream = $1 FOR UPDATE", stream)
    return int(last_id), bool(created)


async def read_cursor(conn: asyncpg.Connection, stream: str) -> int:
    value = await conn.fetchval("SELECT last_id FROM stream_cursors WHERE stream = $1", stream)
    return int(value or 0)


async def advance_cursor(conn: asyncpg.Connection, stream: str, last_id: int) -> None:
    await conn.execute(
        "UPDATE stream_cursors SET last_id = $2, updated_at = now() WHERE stream = $1 AND last_id < $2", stream, last_id
    )


async def add_delivery(
    conn: asyncpg.Connection,
    stream: str,
    event: OutboxEvent,
    planned: Planned,
    *,
    status: str = "pending",
    error: str | None = None,
) -> bool:
    """Record a message to send; False if its idempotency key is already known (a redelivery)."""
    inserted = await conn.fetchval(
        """
        INSERT INTO deliveries (idempotency_key, stream, event_id, event_type, template, transactional, user_id,
                                recipient, context, traceparent, message_id, event_created_at, status, last_error)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12, $13, $14)
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING id
        """,
        planned.idempotency_key,
        stream,
        event.id,
        event.event_type,
        planned.template.name,
        planned.template.transactional,
        planned.user_id,
        planned.recipient,
        json.dumps(planned.context),
        planned.traceparent,
        planned.message_id,
        event.created_at,
        status,
        error,
    )
    if inserted is not None and status == "dead":
        await conn.execute(
            "INSERT INTO dead_letters (delivery_id, idempotency_key, template, recipient, attempts, last_error)"
            " VALUES ($1, $2, $3, $4, 0, $5)",
            inserted,
            planned.idempotency_key,
            planned.template.name,
            planned.recipient,
            error or "",
        )
    return inserted is not None


async def claim(pool: asyncpg.Pool, limit: int, lease_seconds: float) -> list[Delivery]:
    """Due messages no other sender holds, leased to this one (SKIP LOCKED: replicas share the work)."""
    rows = await pool.fetch(
        """
        UPDATE deliveries SET lease_until = now() + make_interval(secs => $2)
        WHERE id IN (
            SELECT id FROM deliveries
            WHERE status = 'pending' AND next_attempt_at <= now() AND (lease_until IS NULL OR lease_until < now())
            ORDER BY next_attempt_at, id
            LIMIT $1
            FOR UPDATE SKIP LOCKED
        )
        RETURNING *
        """,
        limit,
        lease_seconds,
    )
    return [Delivery.from_record(r) for r in rows]


async def next_due(pool: asyncpg.Pool) -> tuple[float | None, int]:
    """Seconds until the next pending message is due (None: none pending), and how many are pending."""
    row = await pool.fetchrow(
        "SELECT extract(epoch FROM min(greatest(next_attempt_at, coalesce(lease_until, next_attempt_at))) - now())"
        " AS wait, count(*) AS pending FROM deliveries WHERE status = 'pending'"
    )
    assert row is not None
    return (None if row["wait"] is None else float(row["wait"])), int(row["pending"])


async def mark_sent(pool: asyncpg.Pool, delivery_id: int, recipient: str) -> None:
    await pool.execute(
        "UPDATE deliveries SET status = 'sent', sent_at = now(), attempts = attempts + 1, last_attempt_at = now(),"
        " recipient = $2, lease_until = NULL, last_error = NULL WHERE id = $1 AND status = 'pending'",
        delivery_id,
        recipient,
    )


async def mark_not_sent(pool: asyncpg.Pool, delivery_id: int, status: str, reason: str) -> None:
    await pool.execute(
        "UPDATE deliveries SET status = $2, last_error = $3, lease_until = NULL WHERE id = $1 AND status = 'pending'",
        delivery_id,
        status,
        reason,
    )


async def mark_retry(pool: asyncpg.Pool, delivery_id: int, delay_seconds: float, error: str) -> None:
    await pool.execute(
        "UPDATE deliveries SET attempts = attempts + 1, last_attempt_at = now(),"
        " next_attempt_at = now() + make_interval(secs => $2), lease_until = NULL, last_error = $3"
        " WHERE id = $1 AND status = 'pending'",
        delivery_id,
        delay_seconds,
        error,
    )


async def mark_dead(pool: asyncpg.Pool, delivery: Delivery, recipient: str | None, error: str) -> bool:
    """Give up on a message: its row says dead and a dead letter names it; False if it was not pending."""
    async with pool.acquire() as conn, conn.transaction():
        attempts = await conn.fetchval(
            "UPDATE deliveries SET status = 'dead', attempts = attempts + 1, last_attempt_at = now(),"
            " lease_until = NULL, last_error = $2, recipient = coalesce(recipient, $3)"
            " WHERE id = $1 AND status = 'pending' RETURNING attempts",
            delivery.id,
            error,
            recipient,
        )
        if attempts is None:
            return False
        await conn.execute(
            "INSERT INTO dead_letters (delivery_id, idempotency_key, template, recipient, attempts, last_error)"
            " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (delivery_id) DO NOTHING",
            delivery.id,
            delivery.idempotency_key,
            delivery.template,
            recipient or delivery.recipient,
            attempts,
            error,
        )
        return True
