"""Connection limits at the socket, before any request reaches the app (issue 18, finding 17).

uvicorn keeps a connection open as long as its client likes while the request
head is incomplete (slowloris), and any number of connections per client. The
router serves HTTP with :class:`GuardedHttpToolsProtocol` (``SERVER_OPTIONS`` in
``router/ws_frames.py``), which adds:

- ``limits.max_connections_per_address`` (256): a client address with that many
  connections open (HTTP or WebSocket: an upgraded connection keeps counting) has
  its next ones closed at once;
- ``limits.header_timeout_seconds`` (10): a connection that has not sent a whole
  request head that long after it opened (or after its previous response) is closed.

Idle keep-alive connections are closed by uvicorn after ``timeout_keep_alive`` (5 s).
Each closed connection counts in ``shopgraph_router_connections_refused_total{reason}``;
one WARNING per reason per 10 s.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from prometheus_client import Counter
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("shopgraph.router")

REFUSED = Counter(
    "shopgraph_router_connections_refused",
    "Client connections closed by the router's connection limits, by reason (per_address: over "
    "limits.max_connections_per_address; header_timeout: no whole request head in time).",
    ["reason"],
)
_LOG_EVERY = 10.0
_last_logged: dict[str, float] = {}


class Limits:
    """The limits of one app, set by ``router.http.create_app`` as ``app.state.connection_limits``."""

    def __init__(self, per_address: int, header_timeout: float) -> None:
        self.per_address = per_address
        self.header_timeout = header_timeout
        self.open: dict[str, set[asyncio.BaseTransport]] = {}

    def admit(self, address: str, transport: asyncio.BaseTransport) -> bool:
        mine = self.open.setdefault(address, set())
        if len(mine) >= self.per_address:
            mine.difference_update([t for t in mine if t.is_closing()])  # upgraded ones close elsewhere
            if len(mine) >= self.per_address:
                return False
        mine.add(transport)
        return True

    def forget(self, address: str, transport: asyncio.BaseTransport) -> None:
        mine = self.open.get(address)
        if mine is not None:
            mine.discard(transport)
            if not mine:
                del self.open[address]


def _refused(reason: str, address: str) -> None:
    REFUSED.labels(reason).inc()
    now = time.monotonic()
    if now - _last_logged.get(reason, -_LOG_EVERY) >= _LOG_EVERY:
        _last_logged[reason] = now
        log.warning("connection from %s closed: %s", address, reason.replace("_", " "))


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        state = getattr(config.app, "state", None)
        self.limits: Limits | None = getattr(state, "connection_limits", None)
        self.head_timer: asyncio.TimerHandle | None = None
        self.address = ""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self.limits is None:
            return
        self.address = self.client[0] if self.client else "unknown"
        if not self.limits.admit(self.address, transport):
            _refused("per_address", self.address)
            transport.abort()
            return
        self._await_head()

    def _await_head(self) -> None:
        if self.limits is not None and self.head_timer is None:
            self.head_timer = self.loop.call_later(self.limits.header_timeout, self._head_timed_out)

    def _busy(self) -> bool:
        return bool(self.pipeline) or (self.cycle is not None and not self.cycle.response_complete)

    def _head_timed_out(self) -> None:
        self.head_timer = None
        if not self.transport.is_closing() and not self._busy():
            _refused("header_timeout", self.address)
            self.transport.abort()

    def on_headers_complete(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self._busy():
            self._await_head()  # the next request's head, in as much time

    def connection_lost(self, exc: Exception | None) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None
        if self.limits is not None:
            self.limits.forget(self.address, self.transport)
        super().connection_lost(exc)
