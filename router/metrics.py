"""The router's Prometheus metrics (served at ``/metrics`` by ``router.telemetry``).

Operation names come from clients, so they are a bounded label: the first
``MAX_OPERATION_NAMES`` distinct names are kept, later ones count as ``other``.
"""

from __future__ import annotations

import re

from prometheus_client import Counter, Gauge, Histogram

MAX_OPERATION_NAMES = 500
_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]{0,99}$")
_seen: set[str] = set()

# Client requests served, seconds: the router itself adds ~1 ms; subgraphs decide the tail.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

REQUESTS = Counter(
    "shopgraph_router_requests",
    "GraphQL requests served, by operation name, kind and outcome "
    "(ok, graphql_error, request_error, unauthenticated, internal_error).",
    ["operation", "kind", "outcome"],
)
REQUEST_SECONDS = Histogram(
    "shopgraph_router_request_duration_seconds",
    "Time to serve a GraphQL request over HTTP (not streamed subscriptions), by operation name and kind.",
    ["operation", "kind"],
    buckets=LATENCY_BUCKETS,
)
FETCH_SECONDS = Histogram(
    "shopgraph_router_subgraph_fetch_duration_seconds",
    "Time of one subgraph HTTP request, by subgraph.",
    ["subgraph"],
    buckets=LATENCY_BUCKETS,
)
FETCH_ERRORS = Counter(
    "shopgraph_router_subgraph_fetch_errors",
    "Subgraph HTTP requests that failed (timeout, connection, HTTP status >= 400), by subgraph and reason.",
    ["subgraph", "reason"],
)
OPEN_SUBSCRIPTIONS = Gauge("shopgraph_router_open_subscriptions", "Client subscriptions open now.")
PLANS = Counter("shopgraph_router_query_plans", "Operations planned (plan-cache misses).")


def operation_label(name: str | None) -> str:
    """A client's operation name as a label value: anonymous, the name, or ``other``."""
    if not name:
        return "anonymous"
    if name in _seen:
        return name
    if len(_seen) >= MAX_OPERATION_NAMES or not _NAME.match(name):
        return "other"
    _seen.add(name)
    return name
