"""Client subscriptions: plan, forward to the owning subgraph, enrich each event once, fan out.

A subscription is planned like a query. Its root fetch (the one subscription
field) is sent to the owning subgraph over graphql-transport-ws
(router/upstream.py); every event the subgraph pushes is taken as that fetch's
result, the rest of the plan (entity fetches to other subgraphs) runs on it
and the response is shaped, exactly as for a query.

Identical upstream subscriptions are one :class:`~router.feeds.Feed`. On a
feed, the subscribers with the same operation, variables and caller are one
:class:`Group`: each event is enriched, shaped and JSON-encoded once per group
and handed to every subscriber (a :class:`Reader`) synchronously, in event
order — no task, queue or encoding per subscriber. The WebSocket transport's
readers write the shared bytes straight into their connection's outbox
(router/ws.py); the HTTP transports (router/streams.py) read a bounded
:class:`Stream` per subscriber.

A subscriber that cannot keep up is dropped (``SUBSCRIBER_TOO_SLOW``) rather
than buffered without limit. A stream ends with ``UNAUTHENTICATED`` "Token
expired" when the caller's token does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Hashable
from typing import Any, Protocol

import orjson

from router.auth import Caller
from router.config import Settings
from router.errors import RouterError, error
from router.feeds import Feed, Feeds
from router.pipeline import Pipeline, Prepared, Ready
from router.plan import Fetch
from router.upstream import Message, UpstreamPool

Json = dict[str, Any]
log = logging.getLogger("shopgraph.router.subscriptions")

SSE = "sse"
MULTIPART = "multipart"


def stream_mode(accept: str) -> str | None:
    """The streaming transport an Accept header asks for, if any."""
    a = accept.lower()
    if "text/event-stream" in a:
        return SSE
    if "multipart/mixed" in a and "subscriptionspec" in a:
        return MULTIPART
    return None


TOKEN_EXPIRED = "Token expired"
TOO_SLOW = "SUBSCRIBER_TOO_SLOW"
ENRICHMENT_BACKLOG = "SUBSCRIPTION_BACKLOG"


class Reader(Protocol):
    """One client subscription's output. Called synchronously, in event order."""

    def deliver(self, result: Json, encoded: bytes) -> None:
        """An event's result, and its JSON (shared by the whole group: do not modify either)."""

    def end(self, failure: RouterError | None) -> None:
        """The subscription is over: completed (None) or failed. Nothing follows."""


# A group's outputs in event order: a result (being) computed, or the end (None: complete).
_Out = asyncio.Future[Json] | RouterError | None


class Group:
    """The subscribers of one feed with the same operation, variables and caller."""

    def __init__(self, service: SubscriptionService, key: Hashable, feed: Feed, ready: Ready) -> None:
        self.service = service
        self.key = key
        self.feed = feed
        self.p: Prepared = ready.p
        self.variables = ready.variables
        self.caller = ready.caller
        self.readers: dict[int, Reader] = {}
        self.closed = False
        self.pending: deque[_Out] = deque()  # outputs waiting for an earlier enrichment to finish
        self.drainer: asyncio.Task[None] | None = None
        # A task of its own: a subscriber leaving during the handshake must not cancel it for the others.
        self.joined: asyncio.Future[int] = feed.join(self._on_message)

    @property
    def fetch(self) -> Fetch:
        return self.p.plan.stages[0][0]

    def add(self, ticket: int, reader: Reader) -> None:
        self.readers[ticket] = reader
        self.service.active += 1

    def remove(self, ticket: int) -> None:
        if self.readers.pop(ticket, None) is None:
            return
        self.service.active -= 1
        if not self.readers:
            self._close()

    def _close(self, *, ended: bool = False) -> None:
        """No readers left, or the feed ``ended``: forget the group (and leave a live feed)."""
        if self.closed:
            return
        self.closed = True
        self.service.forget(self)
        if self.drainer is not None:
            self.drainer.cancel()
        for out in self.pending:  # enrichments nobody will read
            if isinstance(out, asyncio.Future):
                out.cancel()
        self.pending.clear()
        if ended:  # the feed is over: nothing to leave, and subscribers still joining must not see a cancellation
            return
        joined = self.joined
        if not joined.done():
            joined.cancel()  # Feed.join releases the upstream subscription if nobody else waits for it
            return

        async def leave() -> None:
            with contextlib.suppress(Exception):
                await self.feed.leave(joined.result())

        self.service.background(leave())

    # -- events in ---------------------------------------------------------------------------

    def _on_message(self, msg: Message) -> None:
        if self.closed:
            return
        kind, body = msg
        out: _Out
        if kind == "next":
            payload = body if isinstance(body, dict) else {}
            if len(self.p.plan.stages) > 1:  # entity fetches to run: in a task, delivered in order
                out = asyncio.ensure_future(self._enrich(payload))
            else:
                out = asyncio.get_running_loop().create_future()
                out.set_result(self._shape(payload, []))
        elif kind == "complete":
            out = None
        else:  # error | closed
            errs = body if isinstance(body, list) else [body]
            out = RouterError([self._upstream_error(e) for e in errs])
        if self.drainer is None and not self.pending and (not isinstance(out, asyncio.Future) or out.done()):
            self._emit(out)  # nothing in flight before it: deliver now
            return
        if len(self.pending) >= self.service.settings.subscription_buffer:  # enrichment cannot keep up
            if isinstance(out, asyncio.Future):
                out.cancel()
            out = RouterError.of(
                "Events arrive faster than the subgraphs can complete them; subscription ended.", ENRICHMENT_BACKLOG
            )
        self.pending.append(out)
        if self.drainer is None:
            self.drainer = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        try:
            while self.pending:
                out = self.pending[0]
                if isinstance(out, asyncio.Future):
                    await asyncio.wait([out])  # raises nothing, and cancelling the drainer leaves ``out`` alone
                self.pending.popleft()
                self._emit(out)
                if self.closed:
                    return
        finally:
            self.drainer = None

    def _emit(self, out: _Out) -> None:
        if isinstance(out, asyncio.Future):
            exc = out.exception() if not out.cancelled() else asyncio.CancelledError()
            if exc is not None:
                if not isinstance(exc, RouterError):
                    log.error("enriching a subscription event failed", exc_info=exc)
                    exc = RouterError.of("Internal server error", "INTERNAL_SERVER_ERROR")
                out = exc
            else:
                result = out.result()
                encoded = orjson.dumps(result)
                for reader in list(self.readers.values()):
                    reader.deliver(result, encoded)
                return
        readers = list(self.readers.values())
        self.service.active -= len(self.readers)
        self.readers.clear()
        # The feed is over unless it is the group that gave up on it (enrichment backlog).
        self._close(ended=not (isinstance(out, RouterError) and out.code == ENRICHMENT_BACKLOG))
        for reader in readers:
            reader.end(out)

    # -- enrichment --------------------------------------------------------------------------

    def _upstream_error(self, e: Any) -> Json:
        if not isinstance(e, dict):
            e = {"message": str(e)}
        out: Json = {"message": e.get("message", "Subgraph error")}
        if isinstance(e.get("path"), list):
            out["path"] = e["path"]
        ext = dict(e.get("extensions") or {})
        ext.setdefault("code", "DOWNSTREAM_SERVICE_ERROR")
        ext.setdefault("serviceName", self.service.pool.names.get(self.fetch.graph, self.fetch.graph))
        out["extensions"] = ext
        return self.service.pipeline.sanitize([out])[0]

    def _shape(self, payload: Json, more: list[Json]) -> Json:
        data = payload.get("data")
        errs = payload.get("errors") or []
        errors = [self._upstream_error(e) for e in (errs if isinstance(errs, list) else [errs])]
        if not isinstance(data, dict):  # refused or failed upstream: its errors say why
            return {"errors": errors, "data": None}
        errors.extend(self.service.pipeline.sanitize(more))
        return self.service.pipeline.shape(self.p, data, self.variables, errors)

    async def _enrich(self, payload: Json) -> Json:
        data = payload.get("data")
        more: list[Json] = []
        if isinstance(data, dict):
            executor = self.p.schema.executor  # the schema it was opened on, even after a reload
            assert executor is not None
            headers = self.service.pipeline.auth.headers(self.caller)
            _, more = await executor.execute(
                self.p.plan, self.variables, headers, data=data, first_stage=1, viewer=self.caller.viewer
            )
        return self._shape(payload, more)


class Subscription:
    """A reader's place in its group: :meth:`close` to leave (idempotent)."""

    __slots__ = ("group", "ticket")

    def __init__(self, group: Group, ticket: int) -> None:
        self.group = group
        self.ticket = ticket

    def close(self) -> None:
        self.group.remove(self.ticket)


class SubscriptionService:
    def __init__(self, pipeline: Pipeline, settings: Settings) -> None:
        self.pipeline = pipeline
        self.settings = settings
        self.tokens = pipeline.auth.tokens
        schema = pipeline.schema
        self.pool = UpstreamPool(
            schema.urls, schema.names, timeout=settings.subgraph_timeout, per_connection=settings.upstream_subscriptions
        )
        self.active = 0  # open client subscriptions
        self.feeds = Feeds()  # upstream subscriptions, one per distinct (operation, variables, caller)
        self.groups: dict[Hashable, Group] = {}
        self._soon: list[Callable[[], None]] = []

    async def subscribe(self, ready: Ready, reader: Reader) -> Subscription:
        """Start delivering ``ready``'s events to ``reader`` (``ready`` passed the pipeline: one
        subgraph field at its root). Raises RouterError if the subgraph refuses or cannot be reached."""
        feed = self._feed(ready)
        variables = orjson.dumps(ready.variables, option=orjson.OPT_SORT_KEYS)
        key = (feed.key, id(ready.p), variables, ready.caller)
        group = self.groups.get(key)
        if group is None or group.closed or group.feed is not feed or group.p is not ready.p:
            group = self.groups[key] = Group(self, key, feed, ready)
        ticket = next(self.feeds.tickets)
        group.add(ticket, reader)
        try:
            await asyncio.shield(group.joined)
        except RouterError as e:
            group.remove(ticket)
            raise RouterError(self.pipeline.sanitize(e.errors)) from e
        except BaseException:
            group.remove(ticket)
            raise
        return Subscription(group, ticket)

    def open(self, ready: Ready, on_overflow: Callable[[], None] | None = None) -> Stream:
        """A subscription read as an async iterator (the HTTP transports)."""
        return Stream(self, ready, on_overflow)

    def _feed(self, ready: Ready) -> Feed:
        fetch = ready.p.plan.stages[0][0]
        c: Caller = ready.caller
        now = time.time()
        ttl = self.settings.subscription_anonymous_ttl
        exp = c.expires_at or now + ttl
        retire = c.expires_at or now + ttl / 2
        tokens = self.tokens
        vars_ = {v: ready.variables[v] for v in fetch.variables if v in ready.variables}
        scope = (c.identity, c.expires_at)  # the connection's scope too: its token expires with the caller's
        return self.feeds.feed(
            (fetch.graph, scope, fetch.query, orjson.dumps(vars_, option=orjson.OPT_SORT_KEYS)),
            now,
            lambda: self.pool.connection(
                fetch.graph,
                scope,
                lambda: tokens.header_until(c.identity, exp, fetch.graph) if tokens is not None else None,
                retire,
                now,
            ),
            {"query": fetch.query, "variables": vars_},
        )

    def forget(self, group: Group) -> None:
        if self.groups.get(group.key) is group:
            del self.groups[group.key]

    def soon(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` at the event loop's next turn. All of a turn's go in one loop callback:
        a fan-out to 1,000 connections schedules one, not 1,000 handles that the garbage collector
        would promote to its oldest generation whenever it ran in the middle of the fan-out."""
        if not self._soon:
            asyncio.get_running_loop().call_soon(self._run_soon)
        self._soon.append(callback)

    def _run_soon(self) -> None:
        due, self._soon = self._soon, []
        for callback in due:
            try:
                callback()
            except Exception:  # one connection's failure must not hold up the others'
                log.exception("subscription delivery failed")

    def background(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` beside the requests (a reference is kept until it is done)."""
        self.feeds.background(coro)

    async def close(self) -> None:
        await self.pool.close()


class _Idle:
    """No event within the heartbeat interval."""


IDLE = _Idle()


class Stream:
    """One subscription read as an async iterator, through a bounded buffer."""

    def __init__(self, service: SubscriptionService, ready: Ready, on_overflow: Callable[[], None] | None) -> None:
        self.service = service
        self.ready = ready
        self.caller = ready.caller
        self.on_overflow = on_overflow
        # Results, then the end: None (complete) or the failure. Bounded by ``deliver``, so the end always fits.
        self.queue: asyncio.Queue[Json | RouterError | None] = asyncio.Queue()
        self.ended = False

    def deliver(self, result: Json, encoded: bytes) -> None:
        if self.ended:
            return
        n = self.service.settings.subscription_buffer
        if self.queue.qsize() >= n:
            while not self.queue.empty():  # what is buffered is superseded by the drop
                self.queue.get_nowait()
            self.end(
                RouterError.of(f"Subscriber too slow: more than {n} events waiting; subscription dropped.", TOO_SLOW)
            )
            if self.on_overflow is not None:
                self.on_overflow()
            return
        self.queue.put_nowait(result)

    def end(self, failure: RouterError | None) -> None:
        if self.ended:
            return
        self.ended = True
        self.queue.put_nowait(failure)  # after the results already buffered: the client reads them first

    async def events(self, heartbeat: float | None = None) -> AsyncIterator[Json | None]:
        """Results in order; ``None`` after ``heartbeat`` idle seconds (keep-alive).

        Raises RouterError when the subscription fails; returns when it completes.
        """
        sub = await self.service.subscribe(self.ready, self)
        try:
            while True:
                item = await self._next(heartbeat)
                if item is IDLE:
                    yield None
                elif isinstance(item, RouterError):
                    raise item
                elif item is None:
                    return
                else:
                    assert isinstance(item, dict)
                    yield item
        finally:
            sub.close()

    async def _next(self, heartbeat: float | None) -> Json | RouterError | _Idle | None:
        exp = self.caller.expires_at
        timeout = heartbeat
        if exp is not None:
            left = exp - time.time()
            if left <= 0:
                raise RouterError([error(TOKEN_EXPIRED, "UNAUTHENTICATED")])
            timeout = left if timeout is None else min(timeout, left)
        if timeout is None:
            return await self.queue.get()
        try:
            async with asyncio.timeout(timeout):
                return await self.queue.get()
        except TimeoutError:
            if exp is not None and time.time() >= exp:
                raise RouterError([error(TOKEN_EXPIRED, "UNAUTHENTICATED")]) from None
            return IDLE
