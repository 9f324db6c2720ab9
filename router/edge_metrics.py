"""Metrics of the router's edge protections (issue 18): what was refused or degraded, and why.

Redis degradations count in ``router.redis_pool``; the request counters in ``router.metrics``.
"""

from __future__ import annotations

from prometheus_client import Counter

SUPERGRAPH_RELOADS = Counter(
    "shopgraph_router_supergraph_reloads",
    "Supergraphs read by hot reload, by outcome: loaded, refused (a subgraph URL outside "
    "subgraphs.allowed_urls), invalid (not a supergraph).",
    ["outcome"],
)
