"""The one cookie the router relays: a browser session's refresh token (``session_cookie``).

Browsers keep the storefront's refresh token where no script can read it: an ``HttpOnly``
cookie. The subgraph that issues sessions (``session_cookie.subgraph``, users) sets and clears it
on its HTTP answers and reads it on ``refreshToken``/``logout``; the router, which owns the
browser's HTTP exchange, carries it both ways and nothing else:

- on an HTTP ``POST``, the cookie named ``session_cookie.name`` (only that one, of all the
  browser sends) goes to that subgraph only, as ``Cookie: <name>=<value>``;
- that subgraph's ``Set-Cookie`` for that name, on a mutation's answer, goes on the client's
  response. Queries are never answered with a cookie (their answers may be shared between callers
  in flight); other subgraphs' cookies, and other names, are dropped.

Over WebSocket, SSE and GET nothing passes. A cookie goes with every request the browser
makes, so the configuration refuses it without CSRF prevention (http.py's preflight rule: another
site's page cannot send the JSON ``POST`` a refresh needs without a preflight CORS refuses).
"""

from __future__ import annotations

import contextlib
import contextvars
import re
from collections.abc import Iterator, Sequence

from router import metrics

_TOKEN = re.compile(r"[A-Za-z0-9._~-]{1,256}")
_RELAY: contextvars.ContextVar[_Relay | None] = contextvars.ContextVar("session_cookie_relay", default=None)


class _Relay:
    __slots__ = ("cookies", "graph", "name")

    def __init__(self, name: str, graph: str) -> None:
        self.name = name
        self.graph = graph
        self.cookies: list[str] = []


def value_in(cookie_header: str | None, name: str) -> str | None:
    """The named cookie's value in a request's ``Cookie`` header, if it is one a session could
    have (a plain token: it goes into a header of the subgraph request, so nothing else may)."""
    if not cookie_header:
        return None
    for pair in cookie_header.split(";"):
        key, _, value = pair.strip().partition("=")
        if key == name and _TOKEN.fullmatch(value):
            return value
    return None


def is_for(graph: str, configured: str) -> bool:
    """Whether ``graph`` (a join__Graph value or a subgraph name) is the configured subgraph."""
    return graph.lower() == configured.lower()


@contextlib.contextmanager
def relaying(name: str, graph: str) -> Iterator[list[str]]:
    """Collect meanwhile the ``Set-Cookie`` values for ``name`` that ``graph`` answers mutations with."""
    relay = _Relay(name, graph)
    token = _RELAY.set(relay)
    try:
        yield relay.cookies
    finally:
        _RELAY.reset(token)


def offer(graph: str, set_cookies: Sequence[str]) -> None:
    """A mutation's answer from ``graph`` set these cookies: keep the session cookie's, if relaying."""
    relay = _RELAY.get()
    if relay is None or not set_cookies:
        return
    for header in set_cookies:
        named = header.split("=", 1)[0].strip()
        if is_for(graph, relay.graph) and named == relay.name:
            relay.cookies.append(header)
            metrics.SESSION_COOKIES.labels("cleared" if _clears(header) else "set").inc()
        else:
            metrics.SESSION_COOKIES.labels("dropped").inc()


def _clears(header: str) -> bool:
    return any(part.strip().lower() == "max-age=0" for part in header.split(";")[1:])
