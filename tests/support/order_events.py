"""Order events as the orders subgraph writes them, from a test: a change and its outbox row in one transaction.

``OrderChanges.of(db, order_id)`` takes a real order (one placed by checkout:
its ``order.created`` payload is the template); ``commit_event()`` touches the
order row and records an ``order.paid`` event with ``record_event`` in the same
transaction, and returns the event id with the wall-clock time taken right
after COMMIT returned (what latency benchmarks measure from).

``newest_event_id(database_url)`` is the id of the last order event written: an
``orderEvents(after: <it>)`` subscription gets every event committed after it,
however long the subscription takes to reach the orders subgraph (no sleep needed).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from sqlalchemy import func, select, text

from subgraphs.kit.db import Database
from subgraphs.kit.outbox import record_event
from subgraphs.orders.models import outbox


class OrderChanges:
    def __init__(self, db: Database, order_id: uuid.UUID, payload: dict[str, Any]) -> None:
        self.db = db
        self.order_id = order_id
        self.payload = payload

    @classmethod
    async def of(cls, db: Database, order_id: uuid.UUID) -> OrderChanges:
        async with db.read() as conn:
            row = (
                await conn.execute(
                    text("SELECT payload FROM outbox WHERE aggregate_id = :id ORDER BY id LIMIT 1"), {"id": order_id}
                )
            ).one()
        return cls(db, order_id, dict(row.payload))

    async def commit_event(self) -> tuple[int, float]:
        """One change committed: (its event id, ``time.time()`` right after COMMIT)."""
        payload = {**self.payload, "type": "order.paid", "status": "PAID", "occurredAt": None}
        async with self.db.transaction() as conn:
            await conn.execute(text("UPDATE orders SET updated_at = now() WHERE id = :id"), {"id": self.order_id})
            event_id = await record_event(conn, outbox, "order.paid", self.order_id, payload)
        return event_id, time.time()


async def newest_event_id(database_url: str) -> int:
    """The id of the newest event in the orders outbox at ``database_url`` (0 if none)."""
    db = Database(database_url, "orders", pool_size=1)
    try:
        async with db.read() as conn:
            return int((await conn.execute(select(func.coalesce(func.max(outbox.c.id), 0)))).scalar_one())
    finally:
        await db.dispose()
