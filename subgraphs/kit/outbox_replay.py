"""A producer's outbox, read back for a consumer that lost stream entries (the notifications worker).

Stream entries name the outbox id before them (``prev``), so a consumer knows exactly which ids it
missed; it cannot read another subgraph's schema, so the producer answers an internal field built on
``events_between`` (orders' ``orderEventsBetween``, users' ``accountEventsBetween``), callable by the
named consumer only. Each subgraph declares its own (inaccessible) result type with ``ReplayedEvent``'s
fields, since federation composes types by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TypeVar

import orjson
from sqlalchemy import Table

from .db import Database
from .errors import bad_input
from .outbox import read_events

T = TypeVar("T")

REPLAY_PAGE = 500  # events per answer at most; the consumer pages through a longer gap


@dataclass(frozen=True)
class ReplayedEvent:
    id: str  # the outbox id (= the stream entry's id), a decimal string: ids outgrow GraphQL's Int
    type: str
    aggregate: str
    payload: str  # the JSON payload, as published
    created: str  # ISO 8601, as published


async def events_between(db: Database, table: Table, after: str, upto: str) -> list[ReplayedEvent]:
    """Committed events with ``after < id <= upto``, oldest first, at most ``REPLAY_PAGE``."""
    if not (after.isdigit() and upto.isdigit()):
        raise bad_input("`after` and `upto` are outbox ids.")
    async with db.read() as conn:
        events = await read_events(conn, table, after=int(after), upto=int(upto), limit=REPLAY_PAGE)
    return [
        ReplayedEvent(
            id=str(e.id),
            type=e.event_type,
            aggregate=str(e.aggregate_id),
            payload=orjson.dumps(e.payload).decode(),
            created=e.created_at.isoformat(),
        )
        for e in events
    ]


async def replayed_as(make: Callable[..., T], db: Database, table: Table, after: str, upto: str) -> list[T]:
    """``events_between``, each event made into the subgraph's own result type (``ReplayedEvent``'s fields)."""
    return [make(**asdict(e)) for e in await events_between(db, table, after, upto)]
