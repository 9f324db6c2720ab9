"""The transactional outbox: events written in the same transaction as the change.

A subgraph that emits events has an ``outbox`` table (see its migrations);
``record_event`` is called on the connection of the business transaction, so
the event exists if and only if the change committed. Publishing the rows to
Redis Streams is the relay's job.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, MetaData, Table, Text, insert
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncConnection


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


async def record_event(
    conn: AsyncConnection, table: Table, event_type: str, aggregate_id: uuid.UUID, payload: dict[str, Any]
) -> int:
    """Append an event inside the caller's transaction; returns its ordered id."""
    event_id: int = (
        await conn.execute(
            insert(table)
            .values(event_type=event_type, aggregate_id=aggregate_id, payload=payload)
            .returning(table.c.id)
        )
    ).scalar_one()
    return event_id
