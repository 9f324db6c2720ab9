"""Prometheus metrics of the subgraphs, the event hub and the outbox relay (``/metrics``).

Every subgraph of a process shares the one registry, so each series is labelled
with its subgraph (the dev stack and the tests run all four in one process).
Operation names come from the router (or, in dev, from clients) and are bounded
like the router's: the first ``MAX_OPERATION_NAMES`` distinct ones, then ``other``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from prometheus_client import Counter, Gauge, Histogram

MAX_OPERATION_NAMES = 500
_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]{0,99}$")
_seen: set[str] = set()

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

OPERATIONS = Counter(
    "shopgraph_subgraph_operations",
    "GraphQL operations executed, by subgraph, operation name, kind and outcome (ok, error, internal_error).",
    ["subgraph", "operation", "kind", "outcome"],
)
OPERATION_SECONDS = Histogram(
    "shopgraph_subgraph_operation_duration_seconds",
    "Time to execute a GraphQL operation (subscriptions: their set-up), by subgraph and operation name.",
    ["subgraph", "operation"],
    buckets=LATENCY_BUCKETS,
)
DB_POOL_CHECKED_OUT = Gauge(
    "shopgraph_db_pool_checked_out", "Database connections in use now, by subgraph.", ["subgraph"]
)
DB_POOL_SIZE = Gauge("shopgraph_db_pool_size", "Database connections the pool keeps open, by subgraph.", ["subgraph"])
DB_POOL_OVERFLOW = Gauge(
    "shopgraph_db_pool_overflow", "Connections opened beyond the pool size now (negative: unused slots).", ["subgraph"]
)
SQL_STATEMENTS = Counter(
    "shopgraph_db_statements",
    "SQL statements run, by subgraph (divided by its operations: statements per request).",
    ["subgraph"],
)
EVENT_LAG_SECONDS = Histogram(
    "shopgraph_event_lag_seconds",
    "From an event's outbox insert (its transaction's time) to its arrival at this process's event hub, by stream.",
    ["stream"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0),
)
EVENTS_DELIVERED = Counter(
    "shopgraph_events_delivered", "Events the hub handed to its subscribers, by stream.", ["stream"]
)
RELAY_PUBLISHED = Counter("shopgraph_relay_published", "Outbox rows published to Redis, by stream.", ["stream"])
RELAY_BACKLOG = Gauge(
    "shopgraph_relay_backlog", "Outbox rows not yet published, as of the leader's last batch, by stream.", ["stream"]
)
RELAY_LEADER = Gauge("shopgraph_relay_leader", "1 while this process is the publishing relay, by stream.", ["stream"])


def operation_label(name: str | None) -> str:
    if not name:
        return "anonymous"
    if name in _seen:
        return name
    if len(_seen) >= MAX_OPERATION_NAMES or not _NAME.match(name):
        return "other"
    _seen.add(name)
    return name


def observe_arrival(stream: str, created_at: datetime) -> None:
    """An event reached this process's hub: its lag since the outbox insert."""
    EVENTS_DELIVERED.labels(stream).inc()
    EVENT_LAG_SECONDS.labels(stream).observe(max(0.0, (datetime.now(UTC) - created_at).total_seconds()))


# The order saga (orders ↔ payments): each step a participant took, and what a reconciler repaired.
SAGA_STEPS = Counter(
    "shopgraph_saga_steps",
    "Steps of the order saga taken, by subgraph and step (e.g. order_paid, payment_captured, stock_released).",
    ["subgraph", "step"],
)
RECONCILER_REPAIRS = Counter(
    "shopgraph_reconciler_repairs",
    "Saga state a reconciler found stuck past its deadline and repaired, by subgraph and kind.",
    ["subgraph", "kind"],
)
# A pass is bounded (SHOPGRAPH_<SUBGRAPH>_RECONCILE_BATCH): what it could not take waits for the next.
RECONCILER_BACKLOG = Gauge(
    "shopgraph_reconciler_backlog",
    "Items stuck past their deadline that the last reconciler pass left for the next ones (its bound), by subgraph.",
    ["subgraph"],
)
