"""Router settings, from the environment (SHOPGRAPH_*) or given explicitly."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from router.supergraph import Supergraph


@dataclass(frozen=True)
class Settings:
    subgraph_timeout: float = 30.0  # seconds, per subgraph request
    max_body_bytes: int = 1_000_000
    max_depth: int = 32
    max_aliases: int = 100
    max_fields: int = 5_000  # fields selected, fragments expanded
    plan_cache_size: int = 2048
    introspection: bool = True
    graphiql: bool = True
    jwks_url: str | None = None
    service_secret: str | None = None
    jwks_min_refetch: float = 10.0  # seconds between JWKS refetches on unknown kids
    # graph enum value (upper-cased) -> URL; overrides join__Graph(url:)
    subgraph_urls: Mapping[str, str] = field(default_factory=dict)
    # subscriptions (see router/subscriptions.py)
    max_subscriptions_per_connection: int = 100
    subscription_buffer: int = 1024  # events queued per subscriber before it is dropped as too slow
    subscription_heartbeat: float = 5.0  # seconds between SSE/multipart keep-alives
    subscription_anonymous_ttl: int = 3600  # upstream connection lifetime when the client has no token
    upstream_subscriptions: int = 100  # subscriptions multiplexed on one subgraph WebSocket
    expose_query_plan: bool = False  # the plan in `extensions` when asked by Apollo-Expose-Query-Plan: true
    override_labels: frozenset[str] = frozenset()  # progressive @override labels switched on

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        urls = {
            k[len("SHOPGRAPH_SUBGRAPH_") : -len("_URL")]: v
            for k, v in e.items()
            if k.startswith("SHOPGRAPH_SUBGRAPH_") and k.endswith("_URL")
        }

        def num(name: str, default: float) -> float:
            raw = e.get(name)
            return float(raw) if raw else default

        return cls(
            subgraph_timeout=num("SHOPGRAPH_SUBGRAPH_TIMEOUT", 30.0),
            max_body_bytes=int(num("SHOPGRAPH_MAX_BODY_BYTES", 1_000_000)),
            max_depth=int(num("SHOPGRAPH_MAX_DEPTH", 32)),
            max_aliases=int(num("SHOPGRAPH_MAX_ALIASES", 100)),
            max_fields=int(num("SHOPGRAPH_MAX_FIELDS", 5_000)),
            introspection=e.get("SHOPGRAPH_INTROSPECTION", "1") not in ("0", "false"),
            graphiql=e.get("SHOPGRAPH_GRAPHIQL", "1") not in ("0", "false"),
            jwks_url=e.get("SHOPGRAPH_JWKS_URL") or None,
            service_secret=e.get("SHOPGRAPH_SERVICE_SECRET") or None,
            subgraph_urls=urls,
            max_subscriptions_per_connection=int(num("SHOPGRAPH_MAX_SUBSCRIPTIONS_PER_CONNECTION", 100)),
            subscription_buffer=int(num("SHOPGRAPH_SUBSCRIPTION_BUFFER", 1024)),
            subscription_heartbeat=num("SHOPGRAPH_SUBSCRIPTION_HEARTBEAT", 5.0),
            expose_query_plan=e.get("SHOPGRAPH_EXPOSE_QUERY_PLAN", "0") in ("1", "true"),
            override_labels=frozenset(
                x.strip() for x in e.get("SHOPGRAPH_OVERRIDE_LABELS", "").split(",") if x.strip()
            ),
        )


def subgraph_urls(sg: Supergraph, settings: Settings) -> dict[str, str]:
    """join__Graph(url:) per graph, overridden by SHOPGRAPH_SUBGRAPH_<NAME>_URL."""
    over = {k.upper(): v for k, v in settings.subgraph_urls.items()}
    return {g: over.get(g.upper(), info.url) for g, info in sg.graphs.items()}
