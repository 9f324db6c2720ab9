"""The router's Prometheus metrics (served at ``/metrics`` by ``router.telemetry``).

Operation names come from clients, so they are a bounded label: with a
persisted-query manifest, only its operations' names are labels; without one,
the first ``MAX_OPERATION_NAMES`` distinct names are kept. Every other name
counts as ``other`` (junk names cannot inflate ``/metrics``).
"""

from __future__ import annotations

import re

from prometheus_client import Counter, Gauge, Histogram

MAX_OPERATION_NAMES = 100
_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]{0,99}$")
_seen: set[str] = set()
_known: frozenset[str] | None = None  # the manifest's operation names, when there is a manifest


def only_operations(names: frozenset[str]) -> None:
    """Label only these operation names (the persisted-query manifest's); the rest are ``other``."""
    global _known
    _known = names


# Client requests served, seconds: the router itself adds ~1 ms; subgraphs decide the tail. 0.3: the
# latency SLO (deploy/monitoring: 99.9 % of requests under 300 ms) reads that bucket.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

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
PLAN_SECONDS = Histogram(
    "shopgraph_router_query_planning_duration_seconds",
    "Time to plan an operation (plan-cache misses only).",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
ENTITY_CACHE = Counter(
    "shopgraph_router_entity_cache_lookups",
    "Entity-cache lookups, by subgraph and result (hit, miss; bypassed: Redis away).",
    ["subgraph", "result"],
)
AUTHZ_REFUSALS = Counter(
    "shopgraph_router_authorization_refusals",
    "Fields refused by the authorization directives before any subgraph call, by the directive that refused "
    "them (authenticated, requiresScopes, policy; `selection` when every field it selected was refused) and "
    "by what happened (null: the field answered null with an error; rejected: the whole request refused).",
    ["directive", "action"],
)
SESSION_COOKIES = Counter(
    "shopgraph_router_session_cookies",
    "Set-Cookie headers from subgraph mutations: relayed to the browser (set, cleared) or dropped "
    "(another cookie, or another subgraph's).",
    ["action"],
)


def operation_label(name: str | None) -> str:
    """A client's operation name as a label value: anonymous, the name, or ``other``."""
    if not name:
        return "anonymous"
    if _known is not None:
        return name if name in _known else "other"
    if name in _seen:
        return name
    if len(_seen) >= MAX_OPERATION_NAMES or not _NAME.match(name):
        return "other"
    _seen.add(name)
    return name
