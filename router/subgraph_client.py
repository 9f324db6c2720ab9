"""A small pooled HTTP/1.1 client for subgraph requests (the executor's hot path).

Subgraph calls are all the same shape: a JSON POST to a handful of fixed URLs,
over keep-alive connections, with a whole-request timeout. This client does just
that on asyncio protocols with httptools' response parser, and skips what a
general client costs per request (URL parsing, header models, cookie and
redirect handling, pool scans): profiling showed httpx taking two thirds of the
router's CPU time per request.

- One pool of idle connections per (host, port); at most ``max_per_host`` open
  connections each, further requests wait for one to come back.
- A reused connection that the server closed before answering (keep-alive
  expiry race) is retried once on a fresh connection; a request is never sent
  twice once any response bytes came back.
- Errors (their messages name no address: they reach clients):
  ``SubgraphTimeout`` (connect + request + response exceeded the
  timeout), ``SubgraphConnectionError`` (refused, reset, malformed response).
- A subgraph that dies fails its fetches at once, not at the deadline: a
  connection lost with a request in flight, or a refused connection, makes the
  pool probe the subgraph (a fresh connection, ``{__typename}``, ``probe_timeout``
  seconds). If the probe gets no answer (refused, reset, or accepted by a socket
  nobody reads any more: a supervisor that still holds the listening socket), the
  pool is *down*: every request in flight on it that has no response byte yet
  fails with ``SubgraphConnectionError``, and so does every new one at once, until
  a probe (every 0.5 s) is answered again. Counted in
  ``shopgraph_router_subgraph_down_total``, logged at WARNING (down) and INFO (back).
  Silence alone is not taken for death: a request whose connection sits in the
  listening queue of a process that died before accepting it (its supervisor
  still holding the socket) looks exactly like one a busy subgraph has not
  answered yet, and failing a live subgraph's in-flight mutations would be worse
  than waiting for the deadline (tried: 50 concurrent checkouts were failed).
- A request is never written to a connection already closed (uvloop raised
  ``RuntimeError`` there, asyncio dropped the bytes and the request waited for its
  deadline).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import deque
from dataclasses import dataclass
from typing import Any, NamedTuple, cast
from urllib.parse import urlsplit

import httptools
from prometheus_client import Counter

log = logging.getLogger("shopgraph.router")

SUBGRAPH_DOWN = Counter(
    "shopgraph_router_subgraph_down",
    "Times a subgraph (host:port) was found dead: its in-flight fetches failed at once, new ones until it answers.",
    ["target"],
)
PROBE_EVERY = 0.5  # seconds between probes of a subgraph found down


class Reply(NamedTuple):
    status: int
    reason: str
    body: bytes
    cache_control: str | None
    set_cookies: tuple[str, ...] = ()  # what router/session_cookie.py may relay


class SubgraphHTTPError(Exception):
    """The request failed without a complete HTTP response."""


class SubgraphTimeout(SubgraphHTTPError):
    pass


class SubgraphConnectionError(SubgraphHTTPError):
    pass


class _Closed(SubgraphConnectionError):
    """The connection was closed; ``retryable`` when no response bytes had arrived."""

    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class _Target:
    key: tuple[str, int]
    host: str
    port: int
    head: bytes  # b"POST /path HTTP/1.1\r\nHost: host:port\r\n"


class _Conn(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self, pool: _HostPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Reply] | None = None
        self.reason = b""
        self.cache_control: str | None = None
        self.set_cookies: list[str] = []
        self.chunks: list[bytes] = []
        self.headers_done = False
        self.received = False
        self.closed = False

    # -- asyncio.Protocol -----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as e:
            self._fail(SubgraphConnectionError(f"malformed HTTP response: {e}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        w = self.waiter
        if w is not None and not w.done():
            if self.headers_done and self.parser.get_status_code():
                # a body delimited by the end of the connection
                self._resolve(False)
            else:
                self._fail(_Closed("connection closed by the subgraph", retryable=not self.received))
                self.pool.suspect()  # lost mid-request: a keep-alive race, or the subgraph died

    # -- httptools callbacks --------------------------------------------------------------
    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) == 13 and name.lower() == b"cache-control":  # what the entity cache may keep
            self.cache_control = value.decode("latin-1")
        elif len(name) == 10 and name.lower() == b"set-cookie":
            self.set_cookies.append(value.decode("latin-1"))

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self._resolve(self.parser.should_keep_alive())

    # -- requests -------------------------------------------------------------------------
    def send(self, data: bytes, waiter: asyncio.Future[Reply]) -> None:
        self.reason = b""
        self.cache_control = None
        self.set_cookies = []
        self.chunks = []
        self.headers_done = False
        self.received = False
        t = self.transport
        if self.closed or t is None or t.is_closing():
            # Lost between connect (or hand-over) and now: nothing was sent, so it may be retried.
            waiter.set_exception(_Closed("connection closed by the subgraph", retryable=True))
            return
        self.waiter = waiter
        try:
            t.write(data)
        except (RuntimeError, OSError):  # uvloop: "unable to perform operation on <TCPTransport closed=True>"
            self._fail(_Closed("connection closed by the subgraph", retryable=True))
            self.close()

    def _resolve(self, keep_alive: bool) -> None:
        w = self.waiter
        self.waiter = None
        body = b"".join(self.chunks)
        self.chunks = []
        if w is not None and not w.done():
            status, reason = self.parser.get_status_code(), self.reason.decode("latin-1")
            w.set_result(Reply(status, reason, body, self.cache_control, tuple(self.set_cookies)))
        if keep_alive and not self.closed:
            self.pool.release(self)
        else:
            self.close()

    def _fail(self, exc: Exception) -> None:
        w = self.waiter
        self.waiter = None
        if w is not None and not w.done():
            w.set_exception(exc)

    def close(self) -> None:
        self.closed = True
        self.pool.forget(self)
        if self.transport is not None:
            self.transport.close()


class _HostPool:
    def __init__(self, target: _Target, limit: int, probe_timeout: float = 1.0) -> None:
        self.target = target
        self.limit = limit
        self.probe_timeout = probe_timeout
        self.idle: deque[_Conn] = deque()
        self.open: set[_Conn] = set()
        self.waiters: deque[asyncio.Future[_Conn | None]] = deque()
        self.down = False  # found dead: requests fail at once until a probe is answered
        self.prober: asyncio.Task[None] | None = None

    # -- a dead subgraph ---------------------------------------------------------------------

    def suspect(self) -> None:
        """Something suggests the subgraph died: probe it (once at a time)."""
        if self.prober is None or self.prober.done():
            with contextlib.suppress(RuntimeError):  # no loop running (closing)
                self.prober = asyncio.get_running_loop().create_task(self._probe_until_answered())

    async def _probe_until_answered(self) -> None:
        while not await self._probe():
            if not self.down:
                self._go_down()
            await asyncio.sleep(PROBE_EVERY)
        if self.down:
            self.down = False
            log.info("subgraph at %s:%d answers again", self.target.host, self.target.port)

    async def _probe(self) -> bool:
        """Does the subgraph answer ``{__typename}`` on a fresh connection within ``probe_timeout``?"""
        loop = asyncio.get_running_loop()
        t = self.target
        conn = _Conn(_Unpooled())
        body = b'{"query":"{__typename}"}'
        data = t.head + b"content-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
        try:
            async with asyncio.timeout(self.probe_timeout):
                await loop.create_connection(lambda: conn, t.host, t.port)
                fut: asyncio.Future[Reply] = loop.create_future()
                conn.send(data, fut)
                reply = await fut
            return reply.status < 500
        except (OSError, TimeoutError, SubgraphHTTPError):
            return False
        finally:
            conn.close()

    def _go_down(self) -> None:
        self.down = True
        SUBGRAPH_DOWN.labels(f"{self.target.host}:{self.target.port}").inc()
        stuck = [c for c in self.open if c.waiter is not None and not c.received]
        log.warning(
            "subgraph at %s:%d does not answer: %d in-flight fetches failed, new ones fail until it answers",
            self.target.host,
            self.target.port,
            len(stuck),
        )
        for c in stuck:
            c._fail(SubgraphConnectionError("subgraph unavailable"))
            c.close()
        while self.waiters:  # waiting for a connection: woken, they find the pool down
            w = self.waiters.popleft()
            if not w.done():
                w.set_result(None)

    def _check_up(self) -> None:
        if self.down:
            raise SubgraphConnectionError("subgraph unavailable")

    async def acquire(self, loop: asyncio.AbstractEventLoop, time_limit: float) -> tuple[_Conn, bool]:
        """A connection for one request, and whether it was reused."""
        self._check_up()
        while self.idle:
            c = self.idle.pop()  # most recently used: least likely to have expired
            if not c.closed and c.transport is not None and not c.transport.is_closing():
                return c, True
        if len(self.open) >= self.limit:
            fut: asyncio.Future[_Conn | None] = loop.create_future()
            self.waiters.append(fut)
            try:
                got = await fut
            except BaseException:
                # Cancelled (or timed out) while waiting: whatever was handed over in the
                # meantime goes to the next waiter, or the pool would lose a slot for good.
                if fut.done() and not fut.cancelled():
                    handed = fut.result()
                    if handed is not None:
                        self.release(handed)
                    else:
                        self._wake_one()
                else:
                    fut.cancel()
                raise
            self._check_up()
            if got is not None:
                if not got.closed:
                    return got, True
                return await self.acquire(loop, time_limit)  # lost after it was handed over
        return await self._connect(loop, time_limit), False

    async def _connect(self, loop: asyncio.AbstractEventLoop, time_limit: float) -> _Conn:
        t = self.target
        conn = _Conn(self)
        self.open.add(conn)
        try:
            await asyncio.wait_for(loop.create_connection(lambda: conn, t.host, t.port), time_limit)
        except TimeoutError as e:
            self.forget(conn)
            raise SubgraphTimeout("connecting timed out") from e
        except OSError as e:
            self.forget(conn)
            self.suspect()
            # Messages reach clients: the reason without the address (asyncio's names it).
            reason = os.strerror(e.errno) if e.errno else type(e).__name__
            raise SubgraphConnectionError(f"cannot connect: {reason}") from e
        except BaseException:  # cancelled while connecting: give the slot back
            conn.close()
            raise
        return conn

    def release(self, conn: _Conn) -> None:
        while self.waiters:
            w = self.waiters.popleft()
            if not w.done():
                w.set_result(conn)
                return
        self.idle.append(conn)

    def forget(self, conn: _Conn) -> None:
        if conn in self.open:
            self.open.discard(conn)
            self._wake_one()

    def _wake_one(self) -> None:
        """A slot is free: let one waiter open a new connection."""
        while self.waiters:
            w = self.waiters.popleft()
            if not w.done():
                w.set_result(None)
                break

    def close(self) -> None:
        if self.prober is not None:
            self.prober.cancel()
        for c in list(self.open):
            c.close()
        self.idle.clear()


class _Unpooled(_HostPool):
    """The 'pool' of a probe's connection: nothing is kept, nothing is probed."""

    def __init__(self) -> None:
        super().__init__(_Target(("", 0), "", 0, b""), 1)

    def suspect(self) -> None:
        pass

    def release(self, conn: _Conn) -> None:
        conn.close()


class SubgraphClient:
    """POST bytes to subgraph URLs over pooled keep-alive HTTP/1.1 connections."""

    def __init__(self, max_per_host: int = 256, probe_timeout: float = 1.0) -> None:
        self.max_per_host = max_per_host
        self.probe_timeout = probe_timeout
        self._targets: dict[str, _Target] = {}
        self._pools: dict[tuple[str, int], _HostPool] = {}

    def _target(self, url: str) -> _Target:
        t = self._targets.get(url)
        if t is None:
            u = urlsplit(url)
            if u.scheme != "http" or not u.hostname:
                raise SubgraphConnectionError(f"unsupported subgraph URL {url!r} (http:// only)")
            port = u.port or 80
            path = (u.path or "/") + (f"?{u.query}" if u.query else "")
            host = u.hostname if u.port is None else f"{u.hostname}:{port}"
            head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\n".encode("latin-1")
            t = self._targets[url] = _Target((u.hostname, port), u.hostname, port, head)
        return t

    async def post(self, url: str, body: bytes, headers: dict[str, str], time_limit: float) -> tuple[int, str, bytes]:
        """(status, reason phrase, body) of a POST; raises SubgraphHTTPError subclasses."""
        reply = await self.send(url, body, headers, time_limit)
        return reply.status, reply.reason, reply.body

    async def send(self, url: str, body: bytes, headers: dict[str, str], time_limit: float) -> Reply:
        """``post`` with the response's ``Cache-Control``."""
        t = self._target(url)
        pool = self._pools.get(t.key)
        if pool is None:
            pool = self._pools[t.key] = _HostPool(t, self.max_per_host, self.probe_timeout)
        head = t.head + "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode("latin-1")
        data = b"%sContent-Length: %d\r\n\r\n%s" % (head, len(body), body)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + time_limit
        for attempt in (0, 1):
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                # The deadline covers waiting for a free connection too.
                conn, reused = await asyncio.wait_for(pool.acquire(loop, remaining), remaining)
            except TimeoutError as e:
                raise SubgraphTimeout(f"no free connection within {time_limit}s") from e
            if pool.down:  # found dead while this request was connecting
                conn.close()
                raise SubgraphConnectionError("subgraph unavailable")
            fut: asyncio.Future[Reply] = loop.create_future()
            handle = loop.call_at(deadline, _expire, fut)
            try:
                conn.send(data, fut)
                return await fut
            except _Closed as e:
                if not (reused and e.retryable and attempt == 0):
                    raise SubgraphConnectionError(str(e)) from None
            except BaseException:
                conn.close()  # timed out or cancelled mid-request: the connection is unusable
                raise
            finally:
                handle.cancel()
        raise SubgraphTimeout(f"no response within {time_limit}s")

    def close(self) -> None:
        for p in self._pools.values():
            p.close()
        self._pools.clear()


def _expire(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_exception(SubgraphTimeout("no response in time"))
