"""Grafana dashboards, as code: router, subgraphs, events, business.

Each panel is built from PromQL over the metrics the services export (a test checks every
name against ``exported.sample_names``) and the SLO ratios ``rules`` records. The router's
dashboard is Grafana's home in the compose profile and links to the other three.
"""

# ruff: noqa: E501  (PromQL reads best on one line, as Grafana shows it)
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

RATE = "$__rate_interval"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
TAGS = ["shopgraph"]


@dataclass(frozen=True)
class Panel:
    title: str
    targets: tuple[tuple[str, str], ...]  # (expr, legend)
    unit: str = "short"
    kind: str = "timeseries"
    width: int = 12
    description: str = ""
    stacked: bool = False


@dataclass
class Board:
    uid: str
    title: str
    description: str
    rows: list[tuple[str, list[Panel]]] = field(default_factory=list)


def _panel(panel: Panel, ident: int, x: int, y: int) -> dict[str, Any]:
    height = 5 if panel.kind == "stat" else 8
    custom: dict[str, Any] = {}
    if panel.kind == "timeseries":
        custom = {"lineWidth": 1, "fillOpacity": 10, "showPoints": "never"}
        if panel.stacked:
            custom["stacking"] = {"mode": "normal", "group": "A"}
    return {
        "id": ident,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": panel.unit, "custom": custom}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}}
        if panel.kind == "timeseries"
        else {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}, "colorMode": "value"},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(panel.targets)
        ],
    }


def render(board: Board) -> dict[str, Any]:
    """The dashboard's JSON model (Grafana 10/11, schema 39)."""
    panels: list[dict[str, Any]] = []
    ident, y = 1, 0
    for title, row in board.rows:
        panels.append(
            {
                "id": ident,
                "type": "row",
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        ident, y, x, tallest = ident + 1, y + 1, 0, 0
        for panel in row:
            if x + panel.width > 24:
                x, y, tallest = 0, y + tallest, 0
            rendered = _panel(panel, ident, x, y)
            panels.append(rendered)
            ident += 1
            x += panel.width
            tallest = max(tallest, rendered["gridPos"]["h"])
        y += tallest
    return {
        "uid": board.uid,
        "title": board.title,
        "description": board.description,
        "tags": TAGS,
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {"text": "Prometheus", "value": "prometheus"},
                    "hide": 0,
                }
            ]
        },
        "links": [
            {"title": "Shopgraph", "type": "dashboards", "tags": TAGS, "asDropdown": False, "includeVars": False}
        ],
        "annotations": {"list": []},
        "panels": panels,
    }


def _q(expr: str, legend: str = "") -> tuple[str, str]:
    return (expr, legend)


def router() -> Board:
    requests = "shopgraph_router_requests_total"
    latency = "shopgraph_router_request_duration_seconds_bucket"
    fetch = "shopgraph_router_subgraph_fetch_duration_seconds_bucket"
    return Board(
        "shopgraph-router",
        "Shopgraph / Router",
        "The router: requests, errors and latency by operation and outcome, its SLOs, planning, caches, refusals.",
        [
            (
                "Service level (objective: 99.9 % without internal error, 99.9 % within 300 ms)",
                [
                    Panel(
                        "Availability, last 1 d",
                        (_q("1 - shopgraph:router_errors:ratio_rate1d"),),
                        "percentunit",
                        "stat",
                        6,
                    ),
                    Panel(
                        "Within 300 ms, last 1 d",
                        (_q("1 - shopgraph:router_slow:ratio_rate1d"),),
                        "percentunit",
                        "stat",
                        6,
                    ),
                    Panel(
                        "Error budget burn rate (1 h)",
                        (
                            _q("shopgraph:router_errors:ratio_rate1h / 0.001", "availability"),
                            _q("shopgraph:router_slow:ratio_rate1h / 0.001", "latency"),
                        ),
                        "x",
                        "stat",
                        6,
                        "1 = spending the 30-day budget exactly; the page fires at 14.4 (with the 5 min window).",
                    ),
                    Panel("Requests per second", (_q(f"sum(rate({requests}[{RATE}]))"),), "reqps", "stat", 6),
                ],
            ),
            (
                "Requests",
                [
                    Panel(
                        "Requests by outcome",
                        (_q(f"sum by (outcome) (rate({requests}[{RATE}]))", "{{outcome}}"),),
                        "reqps",
                        stacked=True,
                    ),
                    Panel(
                        "Requests by operation (top 10)",
                        (_q(f"topk(10, sum by (operation) (rate({requests}[{RATE}])))", "{{operation}}"),),
                        "reqps",
                    ),
                    Panel(
                        "Error ratio by outcome",
                        (
                            _q(
                                f'sum by (outcome) (rate({requests}{{outcome!="ok"}}[{RATE}])) / scalar(sum(rate({requests}[{RATE}])))',
                                "{{outcome}}",
                            ),
                        ),
                        "percentunit",
                    ),
                    Panel(
                        "Latency",
                        tuple(
                            _q(f"histogram_quantile({q}, sum by (le) (rate({latency}[{RATE}])))", f"p{int(q * 100)}")
                            for q in (0.5, 0.95, 0.99)
                        ),
                        "s",
                    ),
                    Panel(
                        "p95 latency by operation (top 10)",
                        (
                            _q(
                                f"topk(10, histogram_quantile(0.95, sum by (le, operation) (rate({latency}[{RATE}]))))",
                                "{{operation}}",
                            ),
                        ),
                        "s",
                    ),
                    Panel("Open subscriptions", (_q("sum(shopgraph_router_open_subscriptions)", "open"),), "short"),
                ],
            ),
            (
                "Planning and caches",
                [
                    Panel(
                        "Query planning time (plan-cache misses)",
                        (
                            _q(
                                f"histogram_quantile(0.5, sum by (le) (rate(shopgraph_router_query_planning_duration_seconds_bucket[{RATE}])))",
                                "p50",
                            ),
                            _q(
                                f"histogram_quantile(0.99, sum by (le) (rate(shopgraph_router_query_planning_duration_seconds_bucket[{RATE}])))",
                                "p99",
                            ),
                        ),
                        "s",
                        width=8,
                    ),
                    Panel(
                        "Plan-cache hit ratio",
                        (
                            _q(
                                f"1 - sum(rate(shopgraph_router_query_plans_total[{RATE}])) / sum(rate({requests}[{RATE}]))",
                                "plan cache",
                            ),
                        ),
                        "percentunit",
                        width=8,
                    ),
                    Panel(
                        "Entity-cache hit ratio by subgraph",
                        (
                            _q(
                                f'sum by (subgraph) (rate(shopgraph_router_entity_cache_lookups_total{{result="hit"}}[{RATE}]))'
                                f" / sum by (subgraph) (rate(shopgraph_router_entity_cache_lookups_total[{RATE}]))",
                                "{{subgraph}}",
                            ),
                        ),
                        "percentunit",
                        width=8,
                    ),
                ],
            ),
            (
                "Refusals and degraded modes",
                [
                    Panel(
                        "Refused before serving (rate limits, cost, limits)",
                        (_q(f"sum by (reason) (rate(shopgraph_router_refusals_total[{RATE}]))", "{{reason}}"),),
                        "reqps",
                        width=8,
                    ),
                    Panel(
                        "Fields refused by authorization",
                        (
                            _q(
                                f"sum by (directive, action) (rate(shopgraph_router_authorization_refusals_total[{RATE}]))",
                                "{{directive}} {{action}}",
                            ),
                        ),
                        "short",
                        width=8,
                    ),
                    Panel(
                        "Redis-backed features degraded",
                        (
                            _q(
                                f"sum by (feature, reason) (rate(shopgraph_router_redis_degraded_total[{RATE}]))",
                                "{{feature}} {{reason}}",
                            ),
                        ),
                        "reqps",
                        width=8,
                    ),
                    Panel(
                        "Connections refused",
                        (
                            _q(
                                f"sum by (reason) (rate(shopgraph_router_connections_refused_total[{RATE}]))",
                                "{{reason}}",
                            ),
                        ),
                        "short",
                        width=8,
                    ),
                    Panel(
                        "Subgraphs found dead",
                        (
                            _q(
                                f"sum by (target) (increase(shopgraph_router_subgraph_down_total[{RATE}]))",
                                "{{target}}",
                            ),
                        ),
                        "short",
                        width=8,
                    ),
                    Panel(
                        "Supergraph reloads",
                        (
                            _q(
                                f"sum by (outcome) (increase(shopgraph_router_supergraph_reloads_total[{RATE}]))",
                                "{{outcome}}",
                            ),
                        ),
                        "short",
                        width=8,
                    ),
                ],
            ),
            (
                "Subgraph fetches (as the router sees them)",
                [
                    Panel(
                        "Fetch p95 by subgraph",
                        (
                            _q(
                                f"histogram_quantile(0.95, sum by (le, subgraph) (rate({fetch}[{RATE}])))",
                                "{{subgraph}}",
                            ),
                        ),
                        "s",
                    ),
                    Panel(
                        "Fetch errors by subgraph and reason",
                        (
                            _q(
                                f"sum by (subgraph, reason) (rate(shopgraph_router_subgraph_fetch_errors_total[{RATE}]))",
                                "{{subgraph}} {{reason}}",
                            ),
                        ),
                        "reqps",
                    ),
                    Panel(
                        "Circuit state by subgraph",
                        (_q("max by (subgraph) (shopgraph_router_breaker_state)", "{{subgraph}}"),),
                        "short",
                        width=8,
                        description="0 closed, 1 open (calls fail at once, partial data), 2 half-open (probing).",
                    ),
                    Panel(
                        "Calls refused by an open circuit",
                        (
                            _q(
                                f"sum by (subgraph) (rate(shopgraph_router_breaker_refused_total[{RATE}]))",
                                "{{subgraph}}",
                            ),
                        ),
                        "reqps",
                        width=8,
                    ),
                    Panel(
                        "Query fetches retried",
                        (
                            _q(
                                f"sum by (subgraph) (rate(shopgraph_router_subgraph_retries_total[{RATE}]))",
                                "{{subgraph}}",
                            ),
                        ),
                        "reqps",
                        width=8,
                    ),
                ],
            ),
        ],
    )


def subgraphs() -> Board:
    ops = "shopgraph_subgraph_operations_total"
    seconds = "shopgraph_subgraph_operation_duration_seconds_bucket"
    return Board(
        "shopgraph-subgraphs",
        "Shopgraph / Subgraphs",
        "Each subgraph: operations, errors, latency, its database pool and SQL statements per operation.",
        [
            (
                "Operations",
                [
                    Panel(
                        "Operations by subgraph",
                        (_q(f"sum by (subgraph) (rate({ops}[{RATE}]))", "{{subgraph}}"),),
                        "ops",
                        stacked=True,
                    ),
                    Panel(
                        "Errors by subgraph and outcome",
                        (
                            _q(
                                f'sum by (subgraph, outcome) (rate({ops}{{outcome!="ok"}}[{RATE}]))',
                                "{{subgraph}} {{outcome}}",
                            ),
                        ),
                        "ops",
                    ),
                    Panel(
                        "p95 latency by subgraph",
                        (
                            _q(
                                f"histogram_quantile(0.95, sum by (le, subgraph) (rate({seconds}[{RATE}])))",
                                "{{subgraph}}",
                            ),
                        ),
                        "s",
                    ),
                    Panel(
                        "p95 latency by operation (top 10)",
                        (
                            _q(
                                f"topk(10, histogram_quantile(0.95, sum by (le, subgraph, operation) (rate({seconds}[{RATE}]))))",
                                "{{subgraph}} {{operation}}",
                            ),
                        ),
                        "s",
                    ),
                ],
            ),
            (
                "Database",
                [
                    Panel(
                        "Connections in use / pool size",
                        (
                            _q("sum by (subgraph) (shopgraph_db_pool_checked_out)", "{{subgraph}} in use"),
                            _q("sum by (subgraph) (shopgraph_db_pool_size)", "{{subgraph}} size"),
                        ),
                        "short",
                        width=8,
                    ),
                    Panel(
                        "SQL statements per operation",
                        (
                            _q(
                                f"sum by (subgraph) (rate(shopgraph_db_statements_total[{RATE}])) / sum by (subgraph) (rate({ops}[{RATE}]))",
                                "{{subgraph}}",
                            ),
                        ),
                        "short",
                        width=8,
                        description="Background work (relays, sweepers) counts too: compare with the idle baseline.",
                    ),
                    Panel(
                        "SQL statements",
                        (_q(f"sum by (subgraph) (rate(shopgraph_db_statements_total[{RATE}]))", "{{subgraph}}"),),
                        "ops",
                        width=8,
                    ),
                ],
            ),
            (
                "Catalog",
                [
                    Panel(
                        "Searches by outcome",
                        (_q(f"sum by (outcome) (rate(shopgraph_catalog_searches_total[{RATE}]))", "{{outcome}}"),),
                        "ops",
                        width=8,
                    ),
                    Panel(
                        "Search p95",
                        (
                            _q(
                                f"histogram_quantile(0.95, sum by (le) (rate(shopgraph_catalog_search_duration_seconds_bucket[{RATE}])))",
                                "p95",
                            ),
                        ),
                        "s",
                        width=8,
                    ),
                    Panel(
                        "Image uploads by outcome",
                        (_q(f"sum by (outcome) (increase(shopgraph_media_uploads_total[{RATE}]))", "{{outcome}}"),),
                        "short",
                        width=8,
                    ),
                ],
            ),
        ],
    )


def events() -> Board:
    return Board(
        "shopgraph-events",
        "Shopgraph / Events",
        "Outbox → relay → Redis Streams → consumers: backlog, commit-to-delivery lag, the relay's leader, consumers, mail.",
        [
            (
                "Outbox and relay",
                [
                    Panel(
                        "Outbox backlog by stream",
                        (_q("max by (stream) (shopgraph_relay_backlog)", "{{stream}}"),),
                        "short",
                        width=8,
                    ),
                    Panel(
                        "Published by stream",
                        (_q(f"sum by (stream) (rate(shopgraph_relay_published_total[{RATE}]))", "{{stream}}"),),
                        "ops",
                        width=8,
                    ),
                    Panel(
                        "Relay leader by stream",
                        (_q("max by (stream) (shopgraph_relay_leader)", "{{stream}}"),),
                        "short",
                        width=8,
                        description="1: a relay holds the stream's lead and publishes it. 0 for minutes pages (ShopgraphRelayNoLeader).",
                    ),
                ],
            ),
            (
                "Delivery",
                [
                    Panel(
                        "Commit → delivery lag",
                        tuple(
                            _q(
                                f"histogram_quantile({q}, sum by (le, stream) (rate(shopgraph_event_lag_seconds_bucket[{RATE}])))",
                                f"p{int(q * 100)} {{{{stream}}}}",
                            )
                            for q in (0.5, 0.99)
                        ),
                        "s",
                    ),
                    Panel(
                        "Events delivered to hubs by stream",
                        (_q(f"sum by (stream) (rate(shopgraph_events_delivered_total[{RATE}]))", "{{stream}}"),),
                        "ops",
                    ),
                    Panel(
                        "Consumed by consumer and outcome",
                        (
                            _q(
                                f"sum by (consumer, outcome) (rate(shopgraph_stream_consumed_total[{RATE}]))",
                                "{{consumer}} {{outcome}}",
                            ),
                        ),
                        "ops",
                    ),
                    Panel(
                        "Saga steps",
                        (
                            _q(
                                f"sum by (subgraph, step) (increase(shopgraph_saga_steps_total[{RATE}]))",
                                "{{subgraph}} {{step}}",
                            ),
                        ),
                        "short",
                    ),
                    Panel(
                        "Reconciler repairs (stuck sagas)",
                        (
                            _q(
                                f"sum by (subgraph, kind) (increase(shopgraph_reconciler_repairs_total[{RATE}]))",
                                "{{subgraph}} {{kind}}",
                            ),
                        ),
                        "short",
                    ),
                ],
            ),
            (
                "Mail (notifications worker)",
                [
                    Panel(
                        "Sent by template",
                        (_q(f"sum by (template) (rate(shopgraph_mails_sent_total[{RATE}]))", "{{template}}"),),
                        "ops",
                        width=8,
                    ),
                    Panel("Waiting to be sent", (_q("sum(shopgraph_mails_pending)", "pending"),), "short", width=8),
                    Panel(
                        "Dead letters",
                        (_q(f"sum(increase(shopgraph_mails_dead_lettered_total[{RATE}]))", "dead"),),
                        "short",
                        width=8,
                    ),
                ],
            ),
        ],
    )


def business() -> Board:
    placed = "shopgraph_orders_placed_total"
    return Board(
        "shopgraph-business",
        "Shopgraph / Business",
        "Orders and revenue per minute, checkout conversion, payment outcomes, discounts.",
        [
            (
                "Orders",
                [
                    Panel(
                        "Orders per minute", (_q(f"sum(rate({placed}[{RATE}])) * 60", "orders"),), "short", "stat", 6
                    ),
                    Panel(
                        "Revenue per minute",
                        (
                            _q(
                                f"sum by (currency) (rate(shopgraph_orders_revenue_minor_total[{RATE}])) * 60 / 100",
                                "{{currency}}",
                            ),
                        ),
                        "short",
                        "stat",
                        6,
                        "Order totals in major units (minor units / 100) of each currency.",
                    ),
                    Panel(
                        "Checkout conversion",
                        (
                            _q(
                                f'sum(increase({placed}[1h])) / sum(increase(shopgraph_router_requests_total{{operation="Checkout"}}[1h]))',
                                "placed / attempted",
                            ),
                        ),
                        "percentunit",
                        "stat",
                        6,
                        "Orders placed per Checkout request over the last hour.",
                    ),
                    Panel(
                        "Cart → order",
                        (
                            _q(
                                f'sum(increase({placed}[1h])) / sum(increase(shopgraph_router_requests_total{{operation="AddToCart",outcome="ok"}}[1h]))',
                                "orders per add-to-cart",
                            ),
                        ),
                        "percentunit",
                        "stat",
                        6,
                    ),
                    Panel(
                        "Orders per minute by currency",
                        (_q(f"sum by (currency) (rate({placed}[{RATE}])) * 60", "{{currency}}"),),
                        "short",
                    ),
                    Panel(
                        "Revenue per minute by currency",
                        (
                            _q(
                                f"sum by (currency) (rate(shopgraph_orders_revenue_minor_total[{RATE}])) * 60 / 100",
                                "{{currency}}",
                            ),
                        ),
                        "short",
                    ),
                ],
            ),
            (
                "Payments and discounts",
                [
                    Panel(
                        "Payment outcomes",
                        (_q(f"sum by (outcome) (increase(shopgraph_payments_total[{RATE}]))", "{{outcome}}"),),
                        "short",
                        width=8,
                        stacked=True,
                    ),
                    Panel(
                        "Provider calls by outcome",
                        (
                            _q(
                                f"sum by (call, outcome) (rate(shopgraph_payment_provider_calls_total[{RATE}]))",
                                "{{call}} {{outcome}}",
                            ),
                        ),
                        "ops",
                        width=8,
                    ),
                    Panel(
                        "Discount redemptions and refusals",
                        (
                            _q(
                                f"sum by (kind) (increase(shopgraph_discount_redemptions_total[{RATE}]))",
                                "redeemed {{kind}}",
                            ),
                            _q(
                                f"sum by (reason) (increase(shopgraph_discount_refusals_total[{RATE}]))",
                                "refused {{reason}}",
                            ),
                        ),
                        "short",
                        width=8,
                    ),
                ],
            ),
        ],
    )


BOARDS = {"router": router, "subgraphs": subgraphs, "events": events, "business": business}
HOME = "router"


def all_boards() -> dict[str, dict[str, Any]]:
    return {name: render(build()) for name, build in BOARDS.items()}


def expressions(board: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
