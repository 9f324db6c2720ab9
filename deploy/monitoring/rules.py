"""Prometheus rules: the router's SLOs with multi-window burn-rate alerts, and the shop's own alerts.

SLOs (over 30 days, for requests the router serves over HTTP):

- availability: 99.9 % of requests end without an internal error (``outcome="internal_error"``:
  the router's or a subgraph's fault, not the client's);
- latency: 99.9 % of requests are answered within 300 ms (the histogram's ``le="0.3"`` bucket).

Each gets the four alerts of the Google SRE workbook's "multiwindow, multi-burn-rate" recipe:
a page when the error budget burns 14.4x too fast over 1 h (and still over the last 5 min) or
6x over 6 h (and 30 min); a ticket at 3x over 1 d (and 2 h) or 1x over 3 d (and 6 h). The
ratios are recorded once per window (``shopgraph:router_errors:ratio_rate1h`` …).

The other alerts: events late to their consumers, an outbox backlog, no relay publishing, saga
state a reconciler had to repair, Redis unavailable to the router, a subgraph found dead or
its circuit open.
Every alert links its runbook: the README's "Operations" section.
"""

from __future__ import annotations

from typing import Any

RUNBOOK = "README.md#alerts-and-what-to-do"  # in the repository: what each alert means, what to do
SLO_TARGET = 0.999
LATENCY_THRESHOLD = "0.3"  # seconds: a bucket of router.metrics.LATENCY_BUCKETS
WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
# (long window, short window, burn rate, severity, for): the SRE workbook's table.
BURNS = (
    ("1h", "5m", 14.4, "page", "2m"),
    ("6h", "30m", 6.0, "page", "15m"),
    ("1d", "2h", 3.0, "ticket", "1h"),
    ("3d", "6h", 1.0, "ticket", "3h"),
)
REQUESTS = "shopgraph_router_requests_total"
LATENCY = "shopgraph_router_request_duration_seconds"

Rule = dict[str, Any]


def _ratio_rules() -> list[Rule]:
    rules: list[Rule] = []
    for w in WINDOWS:
        rules.append(
            {
                "record": f"shopgraph:router_errors:ratio_rate{w}",
                "expr": f'sum(rate({REQUESTS}{{outcome="internal_error"}}[{w}])) / sum(rate({REQUESTS}[{w}]))',
            }
        )
        rules.append(
            {
                "record": f"shopgraph:router_slow:ratio_rate{w}",
                "expr": f'1 - sum(rate({LATENCY}_bucket{{le="{LATENCY_THRESHOLD}"}}[{w}]))'
                f" / sum(rate({LATENCY}_count[{w}]))",
            }
        )
    return rules


def _burn_alerts(sli: str, name: str, what: str) -> list[Rule]:
    budget = round(1 - SLO_TARGET, 6)
    alerts: list[Rule] = []
    for severity, title in (("page", "Fast"), ("ticket", "Slow")):
        clauses = [
            f"(shopgraph:{sli}:ratio_rate{long} > ({rate} * {budget})"
            f" and shopgraph:{sli}:ratio_rate{short} > ({rate} * {budget}))"
            for long, short, rate, sev, _ in BURNS
            if sev == severity
        ]
        wait = next(w for _, _, _, sev, w in BURNS if sev == severity)
        alerts.append(
            {
                "alert": f"ShopgraphRouter{name}BudgetBurn{title}",
                "expr": "\n or ".join(clauses),
                "for": wait,
                "labels": {"severity": severity, "slo": name.lower()},
                "annotations": {
                    "summary": f"The router's {what} SLO (99.9 %) is burning its error budget too fast",
                    "description": f"{{{{ $value | humanizePercentage }}}} of requests missed the {what} objective "
                    f"(over {'14.4x or 6x' if severity == 'page' else '3x or 1x'} the budget's rate).",
                    "runbook": RUNBOOK,
                },
            }
        )
    return alerts


def _alert(name: str, expr: str, wait: str | None, severity: str, summary: str, description: str) -> Rule:
    rule: Rule = {"alert": name, "expr": expr}
    if wait:
        rule["for"] = wait
    rule["labels"] = {"severity": severity}
    rule["annotations"] = {"summary": summary, "description": description, "runbook": RUNBOOK}
    return rule


def _shop_alerts() -> list[Rule]:
    return [
        _alert(
            "ShopgraphEventLagHigh",
            "histogram_quantile(0.99, sum by (le, stream) (rate(shopgraph_event_lag_seconds_bucket[5m]))) > 5",
            "10m",
            "ticket",
            "Events reach their consumers late",
            "99th percentile from outbox insert to delivery on {{ $labels.stream }}: {{ $value | humanizeDuration }}.",
        ),
        _alert(
            "ShopgraphOutboxBacklog",
            "max by (stream) (shopgraph_relay_backlog) > 1000",
            "10m",
            "ticket",
            "The outbox relay falls behind",
            "{{ $value }} outbox rows of {{ $labels.stream }} are not yet published.",
        ),
        _alert(
            "ShopgraphRelayDown",
            "absent(shopgraph_relay_leader)",
            "5m",
            "page",
            "No outbox relay reports: events are not published",
            "No process exports shopgraph_relay_leader: the relay is down or not scraped.",
        ),
        _alert(
            "ShopgraphRelayNoLeader",
            "max by (stream) (shopgraph_relay_leader) < 1",
            "5m",
            "page",
            "No relay leads a stream: its events are not published",
            "Relays run, but none holds the lead for {{ $labels.stream }}.",
        ),
        _alert(
            "ShopgraphSagaStuck",
            "sum by (subgraph, kind) (increase(shopgraph_reconciler_repairs_total[30m])) > 0",
            None,
            "ticket",
            "Checkouts got stuck and were repaired",
            "The {{ $labels.subgraph }} reconciler repaired {{ $value }} stuck saga states ({{ $labels.kind }}).",
        ),
        _alert(
            "ShopgraphRedisUnavailable",
            "sum by (feature, reason) (rate(shopgraph_router_redis_degraded_total[5m])) > 0",
            "5m",
            "page",
            "Redis is unavailable to the router: features run degraded",
            "{{ $labels.feature }} served degraded ({{ $labels.reason }}) at {{ $value }} requests/s.",
        ),
        _alert(
            "ShopgraphSubgraphCircuitOpen",
            "max by (subgraph) (shopgraph_router_breaker_state) == 1",
            "2m",
            "page",
            "A subgraph's circuit is open: the router answers without it",
            "The router's circuit to {{ $labels.subgraph }} has been open for 2 minutes: "
            "its fields come back null with errors.",
        ),
        _alert(
            "ShopgraphSubgraphDown",
            "sum by (target) (increase(shopgraph_router_subgraph_down_total[5m])) > 0",
            None,
            "ticket",
            "The router found a subgraph dead",
            "{{ $labels.target }} was found dead {{ $value }} times in 5 minutes.",
        ),
    ]


def groups() -> dict[str, Any]:
    """The rule file's content (``promtool check rules`` accepts it)."""
    return {
        "groups": [
            {"name": "shopgraph-router-slo-ratios", "interval": "30s", "rules": _ratio_rules()},
            {
                "name": "shopgraph-router-slo-alerts",
                "rules": [
                    *_burn_alerts("router_errors", "Availability", "availability"),
                    *_burn_alerts("router_slow", "Latency", "latency (300 ms)"),
                ],
            },
            {"name": "shopgraph-shop-alerts", "rules": _shop_alerts()},
        ]
    }
