"""Order events: the orders outbox, relayed to a Redis Stream and fanned out per process.

``order_events`` runs in the orders app's lifespan: the event hub that feeds
the subscriptions, the sales-stats feeds, and (unless ``outbox_relay`` is off
because a standalone ``shopgraph relay`` does it) the relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select

from subgraphs.kit.config import Settings
from subgraphs.kit.context import Runtime
from subgraphs.kit.db import Database
from subgraphs.kit.outbox import OutboxEvent
from subgraphs.kit.periodic import stop_task
from subgraphs.kit.relay import OutboxRelay
from subgraphs.kit.streams import EventHub

from .loaders import items_of_orders
from .models import orders, outbox
from .stats import SalesFeeds

# Events after which an order never changes again.
FINAL_EVENTS = frozenset({"order.delivered", "order.cancelled"})


@dataclass(frozen=True)
class OrderEventRecord:
    """An outbox event with the order's rows, loaded once per batch for every subscriber."""

    id: int
    event_type: str
    order_id: uuid.UUID
    occurred_at: datetime
    payload: dict[str, Any]
    order: Row[Any] | None  # None if the order row is gone: the payload stands in
    items: tuple[Row[Any], ...]


def stream_key(settings: Settings) -> str:
    return f"{settings.redis_prefix}orders:events"


def relay(settings: Settings) -> OutboxRelay:
    return OutboxRelay(
        database_url=settings.database_url_for("orders"),
        schema="orders",
        redis_url=settings.redis_url,
        stream=stream_key(settings),
    )


async def enrich(db: Database, events: Sequence[OutboxEvent]) -> list[OrderEventRecord]:
    """Two queries per batch, however many events and subscribers."""
    ids = list({e.aggregate_id for e in events})
    async with db.read() as conn:
        rows = {r.id: r for r in (await conn.execute(select(orders).where(orders.c.id.in_(ids)))).all()}
        items = await items_of_orders(conn, ids)
    items_of = dict(zip(ids, items, strict=True))
    return [
        OrderEventRecord(
            id=e.id,
            event_type=e.event_type,
            order_id=e.aggregate_id,
            occurred_at=_occurred_at(e),
            payload=e.payload,
            order=rows.get(e.aggregate_id),
            items=tuple(items_of[e.aggregate_id]),
        )
        for e in events
    ]


def _occurred_at(event: OutboxEvent) -> datetime:
    stamp = event.payload.get("occurredAt")
    if isinstance(stamp, str):
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(stamp)
    return event.created_at


@dataclass
class OrderEvents:
    """The orders app's event machinery (``runtime.get(OrderEvents)``)."""

    hub: EventHub[OrderEventRecord]
    sales: SalesFeeds


@contextlib.asynccontextmanager
async def order_events(runtime: Runtime) -> AsyncIterator[None]:
    settings = runtime.settings

    async def enrich_batch(events: Sequence[OutboxEvent]) -> list[OrderEventRecord]:
        return await enrich(runtime.db, events)

    hub = EventHub(
        db=runtime.db,
        table=outbox,
        redis_url=settings.redis_url,
        stream=stream_key(settings),
        enrich=enrich_batch,
        key_of=lambda record: record.order_id,  # orderUpdated follows one order: indexed by it
    )
    await hub.start()
    sales = SalesFeeds(runtime.db, hub, settings.currency)
    runtime.provide(OrderEvents(hub, sales))
    relay_task = asyncio.create_task(relay(settings).run(), name="orders-relay") if settings.outbox_relay else None
    try:
        yield
    finally:
        if relay_task is not None:
            await stop_task(relay_task)
        await sales.stop()
        await hub.stop()
