"""The entity cache: subgraph answers kept in Redis, shared by every router replica.

What is cached: each entity of an ``_entities`` fetch on its own (per subgraph,
selection, representation), and whole root-field fetches, when the subgraph's
``Cache-Control`` allows it (``max-age=N, public|private``; ``no-store`` or no
header: never). A ``private`` answer is kept for the caller who asked only; a
``public`` one is shared by the callers of the same role (anonymous, customer,
admin) only, so an answer given to an administrator never reaches anyone else.
Every path that runs a plan (queries, ``@defer``, subscription events) names its
caller (``viewer``), or it would read and write the anonymous scope.
Until a subgraph has answered a selection once, the router does not know its
policy and does not look it up.

Invalidation is by version, not by deletion. Subgraphs write change events
(``ProductChanged``, ...) to their outbox in the transaction of the change;
the relay publishes them to ``<prefix><subgraph>:events``; every router reads
those streams (``follow``) and, per event, stamps the changed entity's tag
(``<typename>:<id>``) and its subgraph's tag with the time. An entry is served
only if it was fetched after every tag it depends on was last stamped: its own
entity's, its subgraph's (root fields, and entities keyed other than by id),
and the global one. The check rides in the same MGET as the entries, so a hit
costs one Redis round trip; a fetch that started before a change can never be
served after the change was seen, whichever replica stored it.

Missed events: the position read so far is kept in Redis, and a router resumes
from it. Each stream entry names the one before it (``prev``); when that is
not the last one read (the stream was trimmed, Redis restarted), events may
have been lost and the global tag is stamped: everything cached before is
dropped. A mutation through this router stamps its subgraph's tag at once, so
the next query through the same router sees the change (read-your-writes)
before the event arrives; other replicas see it when the event does.

Redis down or slow: lookups and stores give up after a short timeout and the
cache is bypassed (every fetch goes to its subgraph) for a few seconds. A stamp
that cannot be written (Redis down, or full: reads still work, writes fail) is
retried, the change-stream position does not move past its event, and the cache
is bypassed until it is written: an invalidation is never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from router import telemetry
from router.redis_pool import degraded

log = logging.getLogger("shopgraph.router.cache")

Json = dict[str, Any]


@dataclass(frozen=True)
class Policy:
    """A subgraph's permission to cache one answer."""

    max_age: int
    private: bool

    @staticmethod
    def parse(header: str | None) -> Policy | None:
        """``Cache-Control`` -> a policy; None: not cacheable."""
        if not header:
            return None
        max_age, private = 0, False
        for part in header.lower().split(","):
            name, _, value = part.strip().partition("=")
            if name in ("no-store", "no-cache"):
                return None
            if name == "private":
                private = True
            elif name == "max-age":
                try:
                    max_age = int(value)
                except ValueError:
                    return None
        return Policy(max_age, private) if max_age > 0 else None

    def combine(self, other: Policy) -> Policy:
        """The most restrictive of the two."""
        return Policy(min(self.max_age, other.max_age), self.private or other.private)

    @property
    def header(self) -> str:
        return f"max-age={self.max_age}, {'private' if self.private else 'public'}"


# The policies of the subgraph answers one client request used (None: one was not
# cacheable), for the response's own Cache-Control; set by the HTTP transport.
_ANSWERS: contextvars.ContextVar[list[Policy | None] | None] = contextvars.ContextVar("answers", default=None)


def note(policy: Policy | None) -> None:
    """Record the policy of an answer the current request used (fetched or from the cache)."""
    answers = _ANSWERS.get()
    if answers is not None:
        answers.append(policy)


@contextlib.contextmanager
def response_policy() -> Iterator[Callable[[], Policy | None]]:
    """Collect the answers' policies meanwhile; the callable gives the whole response's
    (the most restrictive; None if any answer, or none at all, was cacheable)."""
    answers: list[Policy | None] = []
    token = _ANSWERS.set(answers)

    def combined() -> Policy | None:
        if not answers or any(a is None for a in answers):
            return None
        result = answers[0]
        for a in answers[1:]:
            assert result is not None and a is not None
            result = result.combine(a)
        return result

    try:
        yield combined
    finally:
        _ANSWERS.reset(token)


def role_of(viewer: str | None) -> str:
    """The role part of a viewer (``uid:ROLE``); ``anonymous`` without one."""
    return viewer.rpartition(":")[2].lower() or "anonymous" if viewer else "anonymous"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class EntityCache:
    def __init__(
        self,
        redis: Redis,
        prefix: str,
        *,
        max_age: int = 3600,
        timeout: float = 0.05,
        bypass_seconds: float = 5.0,
    ) -> None:
        self.redis = redis
        self.prefix = prefix  # e.g. "shopgraph:router:ec:"
        self.max_age = max_age  # cap on any entry's life, whatever a subgraph allows
        self.timeout = timeout
        self.bypass_seconds = bypass_seconds
        self._down_until = 0.0
        # Stamps not written yet (Redis down, slow or full): until they are, entries that depend on
        # them could be served stale, so the whole cache is bypassed (``available`` is False).
        self._unstamped: set[str] = set()
        # (graph, query) -> the policy of its last answer: whether (and how) to look it up.
        self._policies: dict[tuple[str, str], Policy | None] = {}
        self._qhash: dict[str, str] = {}

    # -- keys -------------------------------------------------------------------------------

    def _query_hash(self, query: str) -> str:
        h = self._qhash.get(query)
        if h is None:
            if len(self._qhash) > 10_000:
                self._qhash.clear()
            h = self._qhash[query] = hashlib.blake2b(query.encode(), digest_size=12).hexdigest()
        return h

    def entry_key(self, graph: str, query: str, scope: str, ident: bytes) -> str:
        digest = hashlib.blake2b(ident, digest_size=16).hexdigest()
        return f"{self.prefix}e:{graph}:{self._query_hash(query)}:{scope}:{digest}"

    def tag(self, name: str) -> str:
        return f"{self.prefix}v:{name}"

    @property
    def cursor_key(self) -> str:
        """Where the position read in each change stream is kept (a hash: stream -> entry id)."""
        return f"{self.prefix}cursor"

    @staticmethod
    def entity_tag(rep: Json) -> str | None:
        ident = rep.get("id")
        return f"{rep.get('__typename')}:{ident}" if isinstance(ident, str | int) else None

    # -- policy -----------------------------------------------------------------------------

    def scope(self, graph: str, query: str, viewer: str | None) -> tuple[str, Policy] | None:
        """The key scope to look ``query`` up under for ``viewer``; None: do not look it up."""
        if not self.available:
            return None
        policy = self._policies.get((graph, query))
        if policy is None:
            return None
        if policy.private:
            return (f"u:{viewer}", policy) if viewer else None
        # Public entries are shared by callers of one role only: an answer a subgraph called public
        # for an administrator is never served to a customer or an anonymous caller, even if the
        # subgraph got its hint wrong (issue 18, finding 8).
        return f"pub:{role_of(viewer)}", policy

    def learn(self, graph: str, query: str, policy: Policy | None) -> None:
        if len(self._policies) > 10_000:
            self._policies.clear()
        self._policies[(graph, query)] = policy

    @property
    def available(self) -> bool:
        return not self._unstamped and time.monotonic() >= self._down_until

    def _down(self, exc: BaseException) -> None:
        degraded("entity_cache", exc, f"entity cache bypassed for {self.bypass_seconds:.0f}s")
        self._down_until = time.monotonic() + self.bypass_seconds

    # -- reads and writes -------------------------------------------------------------------

    async def lookup(
        self, graph: str, query: str, scope: str, idents: Sequence[bytes], tags: Sequence[str | None]
    ) -> list[Json | None]:
        """The cached value of each ident (None: a miss, or older than one of its tags).

        ``tags[i]`` is the entity tag of ident i; None (root fields, entities not keyed
        by id) depends on every change event of the subgraph instead."""
        keys = [self.entry_key(graph, query, scope, i) for i in idents]
        depends = [t if t is not None else f"@graph:{graph}" for t in tags]
        tag_keys = sorted({self.tag(t) for t in depends})
        shared = [self.tag("@all"), self.tag(f"@write:{graph}")]
        try:
            async with asyncio.timeout(self.timeout):
                raw = await self.redis.mget([*keys, *shared, *tag_keys])
        except (RedisError, OSError, TimeoutError) as exc:
            self._down(exc)
            telemetry.note_cache_lookup(graph, 0, len(idents), bypassed=True)
            return [None] * len(idents)
        entries, floor_raw, stamps = raw[: len(keys)], raw[len(keys) : len(keys) + 2], raw[len(keys) + 2 :]
        floor = max((int(v) for v in floor_raw if v is not None), default=0)
        stamp_of = {k: int(v) for k, v in zip(tag_keys, stamps, strict=True) if v is not None}
        out: list[Json | None] = []
        for entry, tag in zip(entries, depends, strict=True):
            if entry is None:
                out.append(None)
                continue
            fetched, value = orjson.loads(entry)
            newest = max(floor, stamp_of.get(self.tag(tag), 0))
            out.append(value if fetched > newest else None)
        hits = sum(v is not None for v in out)
        telemetry.note_cache_lookup(graph, hits, len(out) - hits)
        return out

    async def store(
        self, graph: str, query: str, scope: str, policy: Policy, fetched_ms: int, items: Sequence[tuple[bytes, Any]]
    ) -> None:
        if not items or not self.available:
            return
        ttl = min(policy.max_age, self.max_age)
        try:
            async with asyncio.timeout(self.timeout):
                pipe = self.redis.pipeline(transaction=False)
                for ident, value in items:
                    pipe.set(self.entry_key(graph, query, scope, ident), orjson.dumps([fetched_ms, value]), ex=ttl)
                await pipe.execute()
        except (RedisError, OSError, TimeoutError) as exc:
            self._down(exc)

    async def stamp(self, *tags: str, read_to: tuple[str, str] | None = None) -> bool:
        """Everything that depends on ``tags`` and was fetched before now is stale; True once written.

        ``read_to`` (stream, entry id): the change events applied so far, kept for the next
        start in the same round trip, so the kept position never lags the stamps. A stamp
        that cannot be written is kept and retried with the next one; until it is written
        the cache is bypassed (a lost stamp would serve the old value until its TTL)."""
        now = now_ms()
        pending = {*self._unstamped, *tags}
        try:
            async with asyncio.timeout(max(self.timeout, 1.0)):
                pipe = self.redis.pipeline(transaction=False)
                for t in pending:
                    pipe.set(self.tag(t), now, ex=self.max_age + 60)
                if read_to is not None:
                    pipe.hset(self.cursor_key, *read_to)
                await pipe.execute()
        except (RedisError, OSError, TimeoutError) as exc:
            if not self._unstamped:
                log.warning("entity cache bypassed until its invalidations can be written to Redis (%s)", exc)
            self._unstamped = pending
            self._down(exc)
            return False
        if self._unstamped:
            log.info("entity cache invalidations written: the cache is used again")
        self._unstamped = set()
        return True

    # -- events -----------------------------------------------------------------------------

    async def follow(self, streams: dict[str, str], block_ms: int = 500) -> None:
        """Apply change events from ``streams`` (stream key -> subgraph) until cancelled.

        ``block_ms`` stays below the Redis client's socket timeout (1 s), or every idle read would fail."""
        last: dict[str, str] = {}
        backoff = 0.05
        while True:
            try:
                if not last:
                    saved: dict[Any, Any] = await self.redis.hgetall(self.cursor_key)
                    for stream in streams:
                        value = saved.get(stream.encode())
                        if value is None:
                            # No position kept (first start, or Redis lost it): whatever is cached may
                            # predate events nobody applied. Start at the stream's end, stamped after.
                            newest: Any = await self.redis.xrevrange(stream, count=1)
                            last[stream] = _text(newest[0][0]) if newest else "0-0"
                            await self.stamp("@all")
                        else:
                            last[stream] = _text(value)
                positions: Any = dict(last)
                read: Any = await self.redis.xread(positions, count=500, block=block_ms)
                backoff = 0.05
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("entity cache: cannot read change events (%s); retrying", exc)
                last.clear()  # re-read the kept position: Redis may have restarted empty
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            if self._unstamped and not read and not await self.stamp():
                await asyncio.sleep(backoff)  # the last batch's stamps: retried until written
                backoff = min(backoff * 2, 2.0)
                continue
            for raw_stream, entries in read or ():
                stream = _text(raw_stream)
                graph = streams[stream]
                before = last[stream]
                tags = {f"@graph:{graph}"}
                for entry_id, fields in entries:
                    eid = _text(entry_id)
                    # Each entry names the event before it: one newer than the last read means
                    # events were lost in between (trimmed, or Redis restarted).
                    if last[stream] != "0-0" and int(fields.get(b"prev", b"0")) > int(last[stream].split("-")[0]):
                        tags.add("@all")
                    tag = _changed(fields)
                    if tag is not None:
                        tags.add(tag)
                    last[stream] = eid
                if not await self.stamp(*tags, read_to=(stream, last[stream])):
                    # Not written: the position stays before these events (read again, stamped again);
                    # meanwhile the cache is bypassed.
                    last[stream] = before
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)
                    break


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _changed(fields: dict[bytes, bytes]) -> str | None:
    """The entity tag a change event names: its payload's ``typename`` and its aggregate id."""
    try:
        payload = orjson.loads(fields.get(b"payload", b"{}"))
    except orjson.JSONDecodeError:
        return None
    typename = payload.get("typename") if isinstance(payload, dict) else None
    aggregate = fields.get(b"aggregate")
    if not isinstance(typename, str) or not aggregate:
        return None
    return f"{typename}:{aggregate.decode()}"
