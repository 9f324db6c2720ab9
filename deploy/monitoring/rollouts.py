"""Canary releases that watch the SLO signals (``deploy/k8s/overlays/canary``, Argo Rollouts).

Each scalable Deployment (the router and the five subgraphs) gets a Rollout that takes it over
(``workloadRef``: the Deployment stays the one place its pod is described; Argo scales it down as
the Rollout comes up). A new version goes 10 % → 50 % → 100 % of the pods, and at each step an
analysis asks Prometheus about the *canary's* pods only (their ``rollouts-pod-template-hash``
label, which the PodMonitors copy onto every series): the router's share of internal errors and
of requests slower than 300 ms (the SLOs of ``rules``), a subgraph's share of internal errors and
its p99. A failed analysis aborts the rollout and scales the canary away.
"""

from __future__ import annotations

from typing import Any

from .rules import LATENCY_THRESHOLD

SUBGRAPHS = ("users", "catalog", "cart", "orders", "payments")
PROMETHEUS = "http://prometheus-operated.monitoring:9090"
HASH = "rollouts_pod_template_hash"  # the pod label, as the PodMonitors' relabeling names it
# Thresholds: tighter than "no worse than stable" would need a baseline; these are the SLOs' own.
MAX_ERROR_RATIO = 0.001
MAX_SLOW_RATIO = 0.001
SUBGRAPH_P99_SECONDS = 0.25

Obj = dict[str, Any]


def _metric(name: str, query: str, condition: str) -> Obj:
    return {
        "name": name,
        "interval": "1m",
        "count": 5,
        "failureLimit": 1,
        # No traffic yet: NaN is not a failure, but it is not a success either (inconclusive).
        "successCondition": condition,
        "provider": {"prometheus": {"address": PROMETHEUS, "query": query}},
    }


def router_analysis() -> Obj:
    canary = f'service="router",{HASH}="{{{{args.canary-hash}}}}"'
    requests = "shopgraph_router_requests_total"
    latency = "shopgraph_router_request_duration_seconds"
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "shopgraph-router-slo"},
        "spec": {
            "args": [{"name": "canary-hash"}],
            "metrics": [
                _metric(
                    "error-ratio",
                    f'sum(rate({requests}{{{canary},outcome="internal_error"}}[2m]))'
                    f" / sum(rate({requests}{{{canary}}}[2m]))",
                    f"isNaN(result[0]) || result[0] < {MAX_ERROR_RATIO}",
                ),
                _metric(
                    "slow-ratio",
                    f'1 - sum(rate({latency}_bucket{{{canary},le="{LATENCY_THRESHOLD}"}}[2m]))'
                    f" / sum(rate({latency}_count{{{canary}}}[2m]))",
                    f"isNaN(result[0]) || result[0] < {MAX_SLOW_RATIO}",
                ),
            ],
        },
    }


def subgraph_analysis() -> Obj:
    canary = f'service="{{{{args.service}}}}",{HASH}="{{{{args.canary-hash}}}}"'
    ops = "shopgraph_subgraph_operations_total"
    seconds = "shopgraph_subgraph_operation_duration_seconds_bucket"
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "shopgraph-subgraph-health"},
        "spec": {
            "args": [{"name": "service"}, {"name": "canary-hash"}],
            "metrics": [
                _metric(
                    "error-ratio",
                    f'sum(rate({ops}{{{canary},outcome="internal_error"}}[2m])) / sum(rate({ops}{{{canary}}}[2m]))',
                    f"isNaN(result[0]) || result[0] < {MAX_ERROR_RATIO}",
                ),
                _metric(
                    "p99",
                    f"histogram_quantile(0.99, sum by (le) (rate({seconds}{{{canary}}}[2m])))",
                    f"isNaN(result[0]) || result[0] < {SUBGRAPH_P99_SECONDS}",
                ),
            ],
        },
    }


def rollout(name: str) -> Obj:
    args: list[Obj] = [{"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}}]
    template = "shopgraph-router-slo"
    if name != "router":
        args.insert(0, {"name": "service", "value": name})
        template = "shopgraph-subgraph-health"
    analysis = {"templates": [{"templateName": template}], "args": args}
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            # As the production overlay runs them; the autoscaler takes over from there.
            "replicas": 3 if name == "router" else 2,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "scaleDown": "progressively"},
            "strategy": {
                "canary": {
                    "maxUnavailable": 0,
                    "steps": [
                        {"setWeight": 10},
                        {"pause": {"duration": "5m"}},
                        {"analysis": analysis},
                        {"setWeight": 50},
                        {"pause": {"duration": "10m"}},
                        {"analysis": analysis},
                    ],
                }
            },
        },
    }


def objects() -> list[Obj]:
    return [router_analysis(), subgraph_analysis(), *(rollout(n) for n in ("router", *SUBGRAPHS))]


def queries() -> list[str]:
    """Every PromQL query of the analyses (for the test that they read exported metrics)."""
    return [m["provider"]["prometheus"]["query"] for o in objects()[:2] for m in o["spec"]["metrics"]]
