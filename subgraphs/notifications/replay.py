"""Gap recovery: stream entries the worker never got, asked of the stream's producer.

Each stream entry names the outbox id before it (``prev``); an entry whose ``prev`` is beyond the
worker's position shows the stream lost ``(position, prev]`` (Redis restarted empty, or trimmed
past a stopped worker). The events are still in the producer's outbox, but the worker reads no
other schema: it asks the producer through its internal field (``orderEventsBetween`` on orders),
as it asks users for recipients (users: ``accountEventsBetween``; an expired reset link recovered
late is skipped as stale). Streams without a producer here are reported lost as before.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import orjson
from gql import gql

from subgraphs.kit.outbox import OutboxEvent
from subgraphs.kit.service_client import ServiceClient

ORDER_EVENTS = gql(
    "query OrderEventsBetween($after: String!, $upto: String!) {"
    " orderEventsBetween(after: $after, upto: $upto) { id type aggregate payload created } }"
)
ACCOUNT_EVENTS = gql(
    "query AccountEventsBetween($after: String!, $upto: String!) {"
    " accountEventsBetween(after: $after, upto: $upto) { id type aggregate payload created } }"
)
# stream -> (producer subgraph, query, field)
PRODUCERS = {
    "orders": ("orders", ORDER_EVENTS, "orderEventsBetween"),
    "users": ("users", ACCOUNT_EVENTS, "accountEventsBetween"),
}


async def missing_events(client: ServiceClient, stream: str, after: int, upto: int) -> list[OutboxEvent]:
    """Every event with ``after < id <= upto`` from the producer of ``stream``, oldest first (paged)."""
    _, query, name = PRODUCERS[stream]
    found: list[OutboxEvent] = []
    while after < upto:
        page = (await client.execute(query, {"after": str(after), "upto": str(upto)}))[name]
        if not page:
            break  # nothing more committed in the range (ids a rolled-back transaction never used)
        found.extend(
            OutboxEvent(
                id=int(e["id"]),
                event_type=e["type"],
                aggregate_id=uuid.UUID(e["aggregate"]),
                payload=orjson.loads(e["payload"]),
                created_at=datetime.fromisoformat(e["created"]),
            )
            for e in page
        )
        after = found[-1].id
    return found
