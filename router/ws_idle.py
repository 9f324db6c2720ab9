"""Idle WebSockets (issue 18, finding 17): the metric and log line of router/ws.py's idle timeout.

An acknowledged graphql-transport-ws connection that carries no operation (no
subscription, no query or mutation in flight) for ``subscriptions.idle_timeout_seconds``
(``SHOPGRAPH_WS_IDLE_TIMEOUT``, 60 s by default, 0: never) is closed with 1000 and the
reason ``Idle: no subscription for N s``. ``ping``/``pong`` messages do not count as
activity: they prove the client is there, not that it needs the connection (graphql-ws
clients in their default lazy mode close an unused connection themselves). A connection
with a live subscription is never idle, however quiet its events.

Each close counts in ``shopgraph_router_ws_idle_closed_total``; one INFO line per 10 s
says how many were closed since the last one (1,000 idle sockets make one line, not 1,000).
"""

from __future__ import annotations

import logging
import time

from prometheus_client import Counter

log = logging.getLogger("shopgraph.router.subscriptions")

IDLE_CLOSED = Counter(
    "shopgraph_router_ws_idle_closed",
    "Acknowledged WebSockets closed for carrying no operation for subscriptions.idle_timeout_seconds.",
)
_LOG_EVERY = 10.0
_state: dict[str, float] = {"last": -_LOG_EVERY, "pending": 0}


def closed_idle(address: str, timeout: float) -> None:
    """Count one idle close; log at most once per 10 s (with the count since the last line)."""
    IDLE_CLOSED.inc()
    _state["pending"] += 1
    now = time.monotonic()
    if now - _state["last"] >= _LOG_EVERY:
        count, _state["pending"], _state["last"] = _state["pending"], 0, now
        log.info(
            "closed %d idle WebSocket(s) (no subscription for %g s; latest from %s)",
            int(count),
            timeout,
            address,
            extra={"idle_closed": int(count), "client_address": address},
        )
