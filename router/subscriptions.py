"""Client subscriptions: plan, forward to the owning subgraph, enrich each event.

A subscription is planned like a query. Its root fetch (the one subscription
field) is sent to the owning subgraph over graphql-transport-ws
(router/upstream.py); every event the subgraph pushes is taken as that fetch's
result, the rest of the plan (entity fetches to other subgraphs) runs on it
and the response is shaped, exactly as for a query. Transports
(router/ws.py, router/streams.py) consume :class:`Stream.events`.

Identical subscriptions (same operation, variables and caller) share one
upstream subscription (router/feeds.py), and the work per event: the first
to take an event enriches and shapes it and the others await that one result
(:class:`SharedResults`) — one entity fetch per event, not one per
subscriber, and one result object the transports serialise once.

Each subscriber has a bounded buffer: a subscriber that cannot keep up is
dropped (``SUBSCRIBER_TOO_SLOW``) rather than buffered without limit. A
stream ends with ``UNAUTHENTICATED`` "Token expired" when the caller's token
does.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Hashable
from typing import Any

import orjson

from router.config import Settings
from router.errors import RouterError, error
from router.feeds import Feeds
from router.pipeline import Pipeline, Prepared, Ready
from router.upstream import Message, UpstreamPool

Json = dict[str, Any]

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


class SharedResults:
    """Results of identical subscriptions' events, computed once and shared for a short while.

    Keyed by (operation, variables, caller, upstream payload). Entries live
    ``ttl`` seconds — long enough for every subscriber of a burst to find it,
    short enough that a later, equal payload sees fresh data from the other
    subgraphs — and at most ``size`` are kept.
    """

    def __init__(self, ttl: float = 1.0, size: int = 4096) -> None:
        self.ttl = ttl
        self.size = size
        self._entries: OrderedDict[Hashable, tuple[float, Prepared, asyncio.Future[Json]]] = OrderedDict()

    def get(self, key: Hashable, p: Prepared) -> asyncio.Future[Json] | None:
        entry = self._entries.get(key)
        if entry is None or entry[1] is not p or time.monotonic() - entry[0] > self.ttl:
            return None
        return entry[2]

    def put(self, key: Hashable, p: Prepared, result: asyncio.Future[Json]) -> None:
        now = time.monotonic()
        entries = self._entries
        entries[key] = (now, p, result)
        entries.move_to_end(key)
        while entries:
            first = next(iter(entries.values()))
            if len(entries) <= self.size and now - first[0] <= self.ttl:
                break
            entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


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
        self.shared = SharedResults()

    def open(self, ready: Ready, on_overflow: Callable[[], None] | None = None) -> Stream:
        """Subscribe (``ready`` passed the pipeline: one subgraph field at its root)."""
        return Stream(self, ready, on_overflow)

    async def close(self) -> None:
        await self.pool.close()


class Stream:
    """One client subscription: upstream events in, enriched results out."""

    def __init__(self, service: SubscriptionService, ready: Ready, on_overflow: Callable[[], None] | None) -> None:
        self.service = service
        self.p: Prepared = ready.p
        self.variables = ready.variables
        self.caller = ready.caller
        self.on_overflow = on_overflow
        self.queue: asyncio.Queue[Message] = asyncio.Queue(service.settings.subscription_buffer)
        self.fetch = self.p.plan.stages[0][0]
        # What makes two subscriptions' results for the same payload equal (``p`` itself is checked on use).
        self.share_key = (id(self.p), orjson.dumps(self.variables, option=orjson.OPT_SORT_KEYS), self.caller)

    def _sink(self, msg: Message) -> None:
        try:
            self.queue.put_nowait(msg)
        except asyncio.QueueFull:
            while not self.queue.empty():  # drop what is buffered: the subscriber is gone
                self.queue.get_nowait()
            n = self.service.settings.subscription_buffer
            self.queue.put_nowait(
                (
                    "closed",
                    [error(f"Subscriber too slow: more than {n} events waiting; subscription dropped.", TOO_SLOW)],
                )
            )
            if self.on_overflow is not None:
                self.on_overflow()

    async def events(self, heartbeat: float | None = None) -> AsyncIterator[Json | None]:
        """Results in order; ``None`` after ``heartbeat`` idle seconds (keep-alive).

        Raises RouterError when the subscription fails; returns when it completes.
        """
        svc = self.service
        c = self.caller
        now = time.time()
        exp = c.expires_at or now + svc.settings.subscription_anonymous_ttl
        retire = c.expires_at or now + svc.settings.subscription_anonymous_ttl / 2
        tokens = svc.tokens
        vars_ = {v: self.variables[v] for v in self.fetch.variables if v in self.variables}
        payload: Json = {"query": self.fetch.query, "variables": vars_}
        scope = (c.identity, c.expires_at)  # the connection's scope too: its token expires with the caller's
        feed = svc.feeds.feed(
            (self.fetch.graph, scope, self.fetch.query, orjson.dumps(vars_, option=orjson.OPT_SORT_KEYS)),
            now,
            lambda: svc.pool.connection(
                self.fetch.graph,
                scope,
                lambda: tokens.header_until(c.identity, exp) if tokens is not None else None,
                retire,
                now,
            ),
            payload,
        )
        svc.active += 1
        ticket: int | None = None
        try:
            try:
                ticket = await feed.join(self._sink)
            except RouterError as e:
                raise RouterError(svc.pipeline.sanitize(e.errors)) from e
            while True:
                kind, msg = await self._next(heartbeat)
                if kind == "idle":
                    yield None
                elif kind == "next":
                    yield await self._result(msg if isinstance(msg, dict) else {})
                elif kind == "complete":
                    return
                else:  # error | closed
                    errs = msg if isinstance(msg, list) else [msg]
                    raise RouterError([self._upstream_error(e) for e in errs])
        finally:
            svc.active -= 1
            if ticket is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(feed.leave(ticket))

    async def _next(self, heartbeat: float | None) -> Message:
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
            return ("idle", None)

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

    async def _result(self, payload: Json) -> Json:
        """The event's result, shared with identical subscriptions that got the same payload."""
        shared = self.service.shared
        key = (*self.share_key, orjson.dumps(payload))
        result = shared.get(key, self.p)
        if result is None:
            # A task of its own: a subscriber leaving mid-way must not cancel it for the others.
            result = asyncio.ensure_future(self._enrich(payload))
            shared.put(key, self.p, result)
        return await asyncio.shield(result)

    async def _enrich(self, payload: Json) -> Json:
        svc = self.service
        data = payload.get("data")
        errors = [self._upstream_error(e) for e in payload.get("errors") or ()]
        if not isinstance(data, dict):  # refused or failed upstream: its errors say why
            return {"errors": errors, "data": None}
        if len(self.p.plan.stages) > 1:
            executor = self.p.schema.executor  # the schema it was opened on, even after a reload
            assert executor is not None
            _, more = await executor.execute(
                self.p.plan, self.variables, svc.pipeline.auth.headers(self.caller), data=data, first_stage=1
            )
            errors.extend(svc.pipeline.sanitize(more))
        return svc.pipeline.shape(self.p, data, self.variables, errors)
