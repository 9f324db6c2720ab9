"""The budget and queue in front of the CPU-bound stages of a new document: parse, validate, plan.

A document the caches have not seen costs milliseconds to tens of milliseconds of
pure Python (a storefront operation: 5 to 30 ms on a loaded machine; a document at the
limits a second or more). Run on the event loop, that time is lost by every request in
flight. It runs in the document worker processes (router/docpool.py, router/docworker.py;
``limits.document_workers``), or with ``document_workers: 0`` in one thread of the router's
own process (the interpreter then hands the lock back to the event loop only every switch
interval, 5 ms: under attack the loop waited behind validation hundreds of times a second).
Admission (router/admission.py) caps what one document can cost first, and the rate limit
caps how many new documents a caller can send; then the queue is bounded: past
``max_pending`` documents being prepared or waiting, requests get 503 ``ROUTER_BUSY``.

Identical documents requested while one is being prepared share its result.

The workers' time is also a budget per caller (``rate_limits.prepare_seconds``: seconds
of worker CPU per second, and a burst): a document within every limit can still take a
second or more to validate and plan (90 aliases of a nested selection: ~3,000 fields),
so each preparation's CPU time (the worker process's, or the thread's) is drawn from its
caller's bucket, and a caller whose bucket is empty gets 429 (``limit: PREPARE_TIME``) for
new documents until it refills; documents already prepared (every storefront operation,
once) cost nothing. A preparation whose worker died or hung costs the time it took.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import time
from collections.abc import Awaitable, Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, cast

from router.config import Bucket
from router.docpool import DocumentPool, Reply, WorkerFailed
from router.errors import RouterError

T = TypeVar("T")
log = logging.getLogger("shopgraph.router")
MAX_WAITING = 8  # a caller's new documents waiting for its previous one; more are refused (429)


class Worker:
    def __init__(self, max_pending: int, budget: Bucket | None = None, pool: DocumentPool | None = None) -> None:
        self.max_pending = max_pending
        self.processes = pool
        self.pending = 0
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shopgraph-prepare")
        self.inflight: dict[Hashable, asyncio.Future[Any]] = {}
        self.queued: dict[Hashable, asyncio.Future[Any]] = {}  # key -> the run waiting in a caller's lane
        self.budget = budget
        self.spent: dict[str, tuple[float, float]] = {}  # caller -> (seconds left, at)
        # One new document at a time per caller (the budget is drawn once each is done); a few may wait.
        self.lanes: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    def _left(self, caller: str) -> float:
        assert self.budget is not None
        now = time.monotonic()
        left, at = self.spent.get(caller, (self.budget.burst, now))
        return min(self.budget.burst, left + (now - at) * self.budget.rate)

    def _charge(self, caller: str, seconds: float) -> None:
        if len(self.spent) > 100_000:  # forget idle callers rather than grow without bound
            self.spent.clear()
        self.spent[caller] = (self._left(caller) - seconds, time.monotonic())

    async def run(self, key: Hashable, fn: Callable[..., T], *args: Any, caller: str | None = None) -> T:
        """``fn(*args)`` in the worker thread (the caller's context vars: spans, logs); one run per ``key`` at a
        time; with a ``caller``, one of its runs at a time, each one's thread CPU time drawn from its budget."""
        return cast(T, await self._lane(key, lambda: self._in_thread(fn, args, caller), caller))

    async def call(
        self,
        key: Hashable,
        message: tuple[Any, ...],
        schema: str,
        then: Callable[[Any], T],
        caller: str | None = None,
    ) -> T:
        """``then(value)`` of ``message`` answered by a document worker process (router/docworker.py) that has
        loaded the supergraph ``schema``, or the RouterError it refused with. As :meth:`run` otherwise; ``then``
        runs once (on the loop) for every request sharing the answer: they get the same object."""
        return cast(T, await self._lane(key, lambda: self._in_process(message, schema, then, caller), caller))

    async def _lane(self, key: Hashable, start: Callable[[], Awaitable[Any]], caller: str | None) -> Any:
        """One run per ``key`` at a time; with a ``caller``, one of its runs at a time.

        A request for a document already running or waiting in a lane shares that run: a client that
        sends the same new operation many times at once (a page's subscriptions, say) waits once and
        counts once among its waiting documents."""
        shared = self.inflight.get(key) or self.queued.get(key)
        if shared is not None:
            try:
                return await asyncio.shield(shared)
            except RouterError as e:
                if e.status != 429:
                    raise
                # Another caller's budget refused it: this caller's own budget decides.
        if caller is None or self.budget is None:
            return await self._run(key, start, None)
        lock, waiting = self.lanes.setdefault(caller, (asyncio.Lock(), [0]))
        if waiting[0] >= MAX_WAITING:
            raise self._too_many(1)
        waiting[0] += 1
        mine: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.queued.setdefault(key, mine)
        try:
            async with lock:
                shared = self.inflight.get(key)  # (prepared meanwhile by another request)
                result = await asyncio.shield(shared) if shared is not None else await self._run(key, start, caller)
            mine.set_result(result)
            return result
        except BaseException as e:
            if not mine.done():
                if isinstance(e, Exception):
                    mine.set_exception(e)
                    mine.exception()  # retrieved: no "never retrieved" warning when nobody shared it
                else:
                    mine.cancel()
            raise
        finally:
            if self.queued.get(key) is mine:
                del self.queued[key]
            waiting[0] -= 1
            if waiting[0] == 0 and self.lanes.get(caller, (None,))[0] is lock:
                del self.lanes[caller]

    def _too_many(self, wait: int) -> RouterError:
        return RouterError.of(
            "Too many new operations to prepare; retry later (or send operations the router knows).",
            "RATE_LIMITED",
            429,
            {"Retry-After": str(wait)},
            retryAfter=wait,
            limit="PREPARE_TIME",
        )

    async def _run(self, key: Hashable, start: Callable[[], Awaitable[Any]], caller: str | None) -> Any:
        if caller is not None and self.budget is not None:
            left = self._left(caller)
            if left <= 0:
                raise self._too_many(max(1, math.ceil(-left / self.budget.rate)))
        if self.pending >= self.max_pending:
            raise RouterError.of(
                "The router is busy preparing other new operations; retry shortly.",
                "ROUTER_BUSY",
                503,
                {"Retry-After": "1"},
            )
        future = asyncio.ensure_future(start())
        self.inflight[key] = future
        self.pending += 1

        def done(f: asyncio.Future[Any]) -> None:  # (counted until the work ends, even if its caller left)
            self.pending -= 1
            if self.inflight.get(key) is f:
                del self.inflight[key]
            if not f.cancelled():
                f.exception()  # retrieved: a caller that left does not leave it unobserved

        future.add_done_callback(done)
        return await asyncio.shield(future)

    def _in_thread(self, fn: Callable[..., T], args: tuple[Any, ...], caller: str | None) -> Awaitable[T]:
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()

        def timed() -> T:
            start = time.thread_time()
            try:
                return ctx.run(fn, *args)
            finally:
                if caller is not None and self.budget is not None:
                    loop.call_soon_threadsafe(self._charge, caller, time.thread_time() - start)

        return loop.run_in_executor(self.pool, timed)

    async def _in_process(
        self, message: tuple[Any, ...], schema: str, then: Callable[[Any], Any], caller: str | None
    ) -> Any:
        assert self.processes is not None
        started = time.monotonic()
        try:
            reply: Reply = await asyncio.wrap_future(self.processes.submit(message, schema))
        except WorkerFailed as e:
            if caller is not None and self.budget is not None:
                self._charge(caller, time.monotonic() - started)
            raise RouterError.of(
                f"The router's worker preparing this operation {'stopped' if e.reason == 'died' else 'hung'} "
                "(it has been replaced); retry.",
                "ROUTER_WORKER_FAILED",
                503,
                {"Retry-After": "1"},
            ) from None
        if caller is not None and self.budget is not None:
            self._charge(caller, reply.cpu)
        if reply.outcome == "ok":
            return then(reply.value)
        if reply.outcome == "refused":
            errors, status, headers = reply.value
            raise RouterError(errors, status, headers)
        log.error("document worker failed on a request:\n%s", reply.value)
        raise RouterError.of("Internal error while preparing the operation.", "INTERNAL_SERVER_ERROR", 500)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
