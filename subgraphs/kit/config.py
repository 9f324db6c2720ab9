"""Settings read from the environment, shared by every subgraph process.

One dataclass, built once at start-up: code below the app factory never reads
``os.environ`` itself, so tests can run several stacks side by side.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

# The one registry of subgraphs: the CLI, the dev stack, the dev ports, `shopgraph compose`
# and the environment's per-subgraph URLs all read it (see subgraphs/README.md).
SUBGRAPHS = ("users", "catalog", "cart", "orders", "payments")


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str
    service_secret: str
    # Per-subgraph database URLs; a subgraph missing here uses ``database_url``.
    database_urls: dict[str, str] = field(default_factory=dict)
    # Where each subgraph is served, for service-to-service calls and JWKS.
    subgraph_urls: dict[str, str] = field(default_factory=dict)
    redis_prefix: str = "shopgraph:"
    currency: str = "USD"
    access_token_ttl_seconds: int = 15 * 60
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    # Failed logins per account and client address before a lock-out (ten times that per account).
    login_max_failures: int = 5
    login_lockout_seconds: int = 15 * 60
    # Refuse every caller but internal tokens (the router, other subgraphs): for
    # deployments where clients must go through the router's limits.
    router_only: bool = False
    # Run the outbox relay inside the app (off when a standalone `shopgraph relay` does it).
    outbox_relay: bool = True
    # Where shoppers open the shop: the base of links in mail (password reset).
    public_url: str = "http://127.0.0.1:4000"
    password_reset_ttl_seconds: int = 30 * 60
    # How long a guest's order-lookup token opens the order (kit/order_lookup.py); each mail to the
    # guest carries a fresh one.
    order_lookup_ttl_seconds: int = 30 * 24 * 3600

    def database_url_for(self, subgraph: str) -> str:
        return self.database_urls.get(subgraph, self.database_url)

    def url_of(self, subgraph: str) -> str:
        return self.subgraph_urls[subgraph]

    @property
    def jwks_url(self) -> str:
        return self.subgraph_urls["users"].rsplit("/graphql", 1)[0] + "/.well-known/jwks.json"

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Read ``SHOPGRAPH_*`` / ``DATABASE_URL`` / ``REDIS_URL`` from the environment."""
        env = os.environ
        values: dict[str, object] = {
            "database_url": env.get("DATABASE_URL", ""),
            "redis_url": env.get("REDIS_URL", ""),
            "service_secret": env.get("SHOPGRAPH_SERVICE_SECRET", ""),
            "database_urls": {
                name: env[f"{name.upper()}_DATABASE_URL"]
                for name in SUBGRAPHS
                if env.get(f"{name.upper()}_DATABASE_URL")
            },
            "subgraph_urls": {
                name: env[f"SHOPGRAPH_SUBGRAPH_{name.upper()}_URL"]
                for name in SUBGRAPHS
                if env.get(f"SHOPGRAPH_SUBGRAPH_{name.upper()}_URL")
            },
            "redis_prefix": env.get("SHOPGRAPH_REDIS_PREFIX", "shopgraph:"),
            "currency": env.get("SHOPGRAPH_CURRENCY", "USD"),
            # Secure by default: only the all-in-one dev stack opens subgraphs to clients.
            "router_only": env_flag("SHOPGRAPH_ROUTER_ONLY", default=True),
            "outbox_relay": env_flag("SHOPGRAPH_OUTBOX_RELAY", default=True),
            "public_url": env.get("SHOPGRAPH_PUBLIC_URL", "http://127.0.0.1:4000").rstrip("/"),
        }
        if env.get("SHOPGRAPH_ORDER_LOOKUP_TTL_SECONDS", "").strip():
            values["order_lookup_ttl_seconds"] = positive_int("SHOPGRAPH_ORDER_LOOKUP_TTL_SECONDS")
        values.update(overrides)
        settings = cls(**values)  # type: ignore[arg-type]
        from .money import CurrencyCode  # strawberry: imported when settings are built, not with the names

        if settings.currency not in CurrencyCode.__members__:
            raise ValueError(f"SHOPGRAPH_CURRENCY={settings.currency!r} is not a supported ISO 4217 code")
        return settings


def positive_int(name: str) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number of seconds, not {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive, not {raw!r}")
    return value


def env_flag(name: str, *, default: bool) -> bool:
    """``1/true/on/yes`` or ``0/false/off/no`` (any case); unset or empty means ``default``."""
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "on", "yes"):
        return True
    if raw in ("0", "false", "off", "no"):
        return False
    raise ValueError(f"{name}={raw!r}: use 1/true/on/yes or 0/false/off/no")
