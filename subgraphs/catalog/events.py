"""Catalog change events: what the routers' entity caches must forget.

Every write of a product or category records a ``ProductChanged`` /
``CategoryChanged`` event per row it changed (price, name, stock, active, ...)
in the catalog's outbox, in the same transaction as the change, so an event
exists exactly when the change committed. The relay (``kit.relay``) publishes
them to ``<prefix>catalog:events``; every router reads that stream and stops
serving what it cached of those entities (``router/entity_cache.py``). The
payload names the GraphQL type, which the router needs and the outbox row
alone does not say.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterable

from sqlalchemy.ext.asyncio import AsyncConnection

from subgraphs.kit.config import Settings
from subgraphs.kit.context import Runtime
from subgraphs.kit.outbox import record_event
from subgraphs.kit.periodic import stop_task
from subgraphs.kit.relay import OutboxRelay

from .models import outbox


async def changed(conn: AsyncConnection, typename: str, ids: Iterable[uuid.UUID]) -> None:
    """Record that these entities changed; call it last in the writing transaction."""
    for entity_id in ids:
        await record_event(conn, outbox, f"{typename}Changed", entity_id, {"typename": typename})


def stream_key(settings: Settings) -> str:
    return f"{settings.redis_prefix}catalog:events"


def relay(settings: Settings) -> OutboxRelay:
    return OutboxRelay(
        database_url=settings.database_url_for("catalog"),
        schema="catalog",
        redis_url=settings.redis_url,
        stream=stream_key(settings),
    )


@contextlib.asynccontextmanager
async def change_events(runtime: Runtime) -> AsyncIterator[None]:
    """The catalog's relay, in the app's process unless a standalone ``shopgraph relay`` runs it."""
    task = (
        asyncio.create_task(relay(runtime.settings).run(), name="catalog-relay")
        if runtime.settings.outbox_relay
        else None
    )
    try:
        yield
    finally:
        if task is not None:
            await stop_task(task)
