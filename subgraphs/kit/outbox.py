"""The transactional outbox: events written in the same transaction as the change.

A subgraph that emits events has an ``outbox`` table (see its migrations);
``record_event`` is called on the connection of the business transaction, so
the event exists if and only if the change committed. Publishing the rows to
Redis Streams is the relay's job (``kit.relay``); fanning them out to
subscribers is ``kit.streams``'.

Ordering: ``record_event`` takes a transaction-scoped advisory lock just before
the insert, so outbox ids are handed out one committing transaction at a time
(the lock is released only after the commit is visible). Hence the committed
rows always form a prefix in id order: once id ``n`` is visible, every smaller
id is either visible too or will never exist (a rolled-back transaction). A
reader that has seen every row up to ``n`` can never be overtaken by an older
one, which is what makes "resume after id n" exact.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, MetaData, Row, Table, Text, func, insert, select, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncConnection

from .telemetry import with_trace_context

# First key of the two-int advisory locks; the second is the hash of "<schema>.<table>".
OUTBOX_ORDER_LOCK = 0x0B0C_0001
RELAY_LEADER_LOCK = 0x0B0C_0002


def outbox_table(metadata: MetaData) -> Table:
    return Table(
        "outbox",
        metadata,
        Column("id", BigInteger, primary_key=True),
        Column("event_type", Text, nullable=False),
        Column("aggregate_id", UUID(as_uuid=True), nullable=False),
        Column("payload", JSONB, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("published_at", DateTime(timezone=True)),
    )


def notify_channel(schema: str, table: str = "outbox") -> str:
    """The LISTEN/NOTIFY channel a committed event is announced on."""
    return f"{schema}_{table}"


@dataclass(frozen=True)
class OutboxEvent:
    id: int
    event_type: str
    aggregate_id: uuid.UUID
    payload: dict[str, Any]
    created_at: datetime

    @classmethod
    def from_row(cls, row: Row[Any]) -> OutboxEvent:
        return cls(row.id, row.event_type, row.aggregate_id, row.payload, row.created_at)


async def record_event(
    conn: AsyncConnection, table: Table, event_type: str, aggregate_id: uuid.UUID, payload: dict[str, Any]
) -> int:
    """Append an event inside the caller's transaction; returns its ordered id.

    Call it last in the transaction: the ordering lock is held until commit.
    """
    (event_id,) = await record_events(conn, table, [(event_type, aggregate_id, payload)])
    return event_id


async def record_events(
    conn: AsyncConnection, table: Table, events: Sequence[tuple[str, uuid.UUID, dict[str, Any]]]
) -> list[int]:
    """Append ``events`` (type, aggregate id, payload), in order, inside the caller's transaction:
    two statements however many there are. Returns their ordered ids; call it last, as ``record_event``."""
    if not events:
        return []
    await conn.execute(
        text(
            "SELECT pg_advisory_xact_lock(:lock, hashtext(current_schema() || '.' || :table)),"
            " pg_notify(current_schema() || '_' || :table, '')"
        ),
        {"lock": OUTBOX_ORDER_LOCK, "table": table.name},
    )
    rows = [
        {
            "event_type": event_type,
            "aggregate_id": aggregate_id,
            "payload": with_trace_context(payload),  # links the event's delivery to this trace
            "created_at": func.now(),
        }
        for event_type, aggregate_id, payload in events
    ]
    # One multi-row INSERT; ids come from the sequence in VALUES order, so sorting keeps the events' order.
    ids = (await conn.execute(insert(table).values(rows).returning(table.c.id))).scalars().all()
    return sorted(ids)


async def read_events(
    conn: AsyncConnection,
    table: Table,
    *,
    after: int,
    upto: int | None = None,
    limit: int = 500,
    published_only: bool = False,
) -> list[OutboxEvent]:
    """Committed events with ``after < id <= upto``, oldest first (a gap-free run, see above)."""
    query = select(table).where(table.c.id > after)
    if upto is not None:
        query = query.where(table.c.id <= upto)
    if published_only:
        query = query.where(table.c.published_at.is_not(None))
    rows = (await conn.execute(query.order_by(table.c.id).limit(limit))).all()
    return [OutboxEvent.from_row(r) for r in rows]


async def last_event_id(conn: AsyncConnection, table: Table, *, published_only: bool = True) -> int:
    query = select(func.coalesce(func.max(table.c.id), 0))
    if published_only:
        query = query.where(table.c.published_at.is_not(None))
    return int((await conn.execute(query)).scalar_one())
