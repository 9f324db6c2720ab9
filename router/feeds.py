"""Upstream subscriptions shared by identical client subscriptions.

A :class:`Feed` is one subscription at a subgraph (one operation id on a
multiplexed connection, router/upstream.py) that any number of readers read
(router/subscriptions.py's groups of client subscriptions). Client subscriptions share a feed when they send the same
subgraph operation with the same variables on behalf of the same caller
scope: the subgraph authorises per caller, and the connection's internal
token lives exactly as long as that caller's token, so merging across callers
would leak events (or outlive a token). Anonymous callers share by operation
and variables alone.

Feeds are reference-counted: the upstream subscription is completed when the
last reader leaves. A feed that ended (complete, error, lost connection) is
forgotten at once, so a later subscriber opens a fresh one rather than
joining a dead one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable, Coroutine, Hashable
from typing import Any

from router.upstream import Message, Sink, Upstream

Json = dict[str, Any]


class Feed:
    """One upstream subscription and the client sinks reading it."""

    def __init__(self, feeds: Feeds, key: Hashable, up: Upstream, payload: Json) -> None:
        self.feeds = feeds
        self.key = key
        self.up = up
        self.sinks: dict[int, Sink] = {}
        self.ended = False
        # A task of its own: the first subscriber leaving during the handshake must not cancel it for the others.
        self.started: asyncio.Future[str] = asyncio.ensure_future(up.subscribe(payload, self._dispatch))

    def _dispatch(self, msg: Message) -> None:
        if msg[0] != "next":  # the upstream subscription is over: new subscribers need a fresh one
            self._end()
        for sink in list(self.sinks.values()):
            sink(msg)

    def _end(self) -> None:
        self.ended = True
        self.feeds.forget(self)

    def join(self, sink: Sink) -> asyncio.Future[int]:
        """Read this feed from now on. The future gives the ticket :meth:`leave` takes once the
        upstream subscription has started, or raises its failure.

        The reader is registered at once, not when the future's task first runs: a reader
        leaving meanwhile (its ``leave`` in a task of its own) must not find the feed empty and
        release it under a reader that is about to wait on it.
        """
        ticket = next(self.feeds.tickets)
        self.sinks[ticket] = sink
        joined = asyncio.ensure_future(self._started(ticket))
        # A callback, not an except clause: a task cancelled before its first step runs no code.
        joined.add_done_callback(lambda f: self._joined(ticket, f))
        return joined

    async def _started(self, ticket: int) -> int:
        await asyncio.shield(self.started)
        return ticket

    def _joined(self, ticket: int, joined: asyncio.Future[int]) -> None:
        if not joined.cancelled() and joined.exception() is None:
            return
        self.sinks.pop(ticket, None)
        started = self.started
        if started.done() and (started.cancelled() or started.exception() is not None):
            self._end()  # it failed: nobody may join it any more
        elif not self.sinks and not self.ended:  # the last joiner gave up (maybe as it started): release it
            self.feeds.background(self._release())

    async def leave(self, ticket: int) -> None:
        if self.sinks.pop(ticket, None) is None or self.sinks or self.ended:
            return
        await self._release()

    async def _release(self) -> None:
        """The last reader left: complete the upstream subscription (once it has started)."""
        self._end()
        with contextlib.suppress(Exception):
            op_id = await self.started
            await self.up.unsubscribe(op_id)


class Feeds:
    """The live feeds by (graph, caller scope, operation, variables)."""

    def __init__(self) -> None:
        self.live: dict[Hashable, Feed] = {}
        self.tickets = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()

    def background(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` beside the requests (a reference is kept until it is done)."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def feed(self, key: Hashable, now: float, open_upstream: Callable[[], Upstream], payload: Json) -> Feed:
        """The live feed for ``key``, opened (on a connection from ``open_upstream``) if there is none.

        A feed whose connection is retiring (its token expires soon) takes no new readers, as its
        connection takes no new subscriptions: a late joiner gets the lifetime a fresh one would.
        """
        f = self.live.get(key)
        if f is None or f.ended or f.up.closed or f.up.retire_at <= now:
            f = self.live[key] = Feed(self, key, open_upstream(), payload)
        return f

    def forget(self, f: Feed) -> None:
        if self.live.get(f.key) is f:
            del self.live[f.key]

    def __len__(self) -> int:
        return len(self.live)
