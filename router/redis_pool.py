"""The router's one Redis client, and what each feature does when Redis is slow, down or full.

Every Redis user in the router (rate limits, the APQ store, the entity cache and
its change-stream follower) shares one client whose connection pool is sized by
``redis.max_connections``. A request that finds every connection busy waits at
most ``redis.pool_wait_seconds`` for one, and a command at most
``redis.timeout_seconds`` (rate limits; the entity cache 50 ms); past either, the feature degrades as documented here
(and in the README's security section) instead of failing the request or
opening a connection more:

=================  ============================================================
feature            when Redis is slow, down or its pool is full
=================  ============================================================
rate limits        an in-process token bucket with the same budget (per replica):
                   never "no limit"
APQ store          a miss (the client sends the full query again); a store is kept
                   in this process only
entity cache       bypassed for a few seconds: every fetch goes to its subgraph
change events      retried; entries of the affected entities are not served until
                   their stamp is written (router/entity_cache.py)
=================  ============================================================

Each degradation counts in ``shopgraph_router_redis_degraded_total{feature,
reason}`` and logs one WARNING line (no traceback) per feature at most every
``LOG_EVERY`` seconds, however many requests degrade meanwhile.
"""

from __future__ import annotations

import logging
import time

from prometheus_client import Counter
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger("shopgraph.router.redis")

LOG_EVERY = 10.0  # seconds between two warnings of one feature

DEGRADED = Counter(
    "shopgraph_router_redis_degraded",
    "Requests a Redis-backed feature served in its degraded mode (Redis slow, down or its pool full), "
    "by feature (rate_limits, apq, entity_cache, change_events) and reason (pool_full, timeout, unavailable).",
    ["feature", "reason"],
)

_last_logged: dict[str, float] = {}


# Longest wait on a socket: above the change-stream follower's blocking read (0.5 s).
SOCKET_TIMEOUT = 1.0


def connect(url: str, max_connections: int, pool_wait: float) -> Redis:
    """The router's Redis client: a pool of at most ``max_connections``, shared by every feature.

    A command waits ``pool_wait`` seconds at most for a free connection (then raises
    ``ConnectionError``: the caller degrades); each feature bounds its own wait for an answer."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=pool_wait,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=SOCKET_TIMEOUT,
    )
    return Redis(connection_pool=pool)


def reason_of(exc: BaseException) -> str:
    if isinstance(exc, RedisConnectionError) and "No connection available" in str(exc):
        return "pool_full"
    if isinstance(exc, TimeoutError | RedisTimeoutError):
        return "timeout"
    return "unavailable"


def degraded(feature: str, exc: BaseException, what: str) -> None:
    """Count one degraded request of ``feature``; a warning (no traceback) at most every ``LOG_EVERY`` s."""
    reason = reason_of(exc)
    DEGRADED.labels(feature, reason).inc()
    now = time.monotonic()
    if now - _last_logged.get(feature, -LOG_EVERY) >= LOG_EVERY:
        _last_logged[feature] = now
        log.warning(
            "Redis %s (%s: %s): %s", reason.replace("_", " "), type(exc).__name__, exc, what, extra={"feature": feature}
        )
