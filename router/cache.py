"""Caches: in-process LRUs for parsed/validated documents and query plans, and the
APQ store (Redis, shared by replicas).

The document and plan caches hold only documents that validated (a failed one is
parsed again if sent again, after drawing from its caller's rate budget), and are
bounded in bytes as well as entries: a 30 KB document's syntax tree weighs ~1 to 3 MB.

Plan keys are (sha256 of the document text, operation name); values are
immutable once built, so concurrent requests share them freely.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Generic, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from router.redis_pool import degraded

K = TypeVar("K")
V = TypeVar("V")


class LRU(Generic[K, V]):
    """Least recently used first out, bounded by entries and (given ``max_bytes``) by the
    bytes its entries are said to weigh (``put(key, value, weight)``)."""

    def __init__(self, size: int, max_bytes: int | None = None) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self.bytes = 0
        self._d: OrderedDict[K, V] = OrderedDict()
        self._w: dict[K, int] = {}

    def get(self, key: K) -> V | None:
        v = self._d.get(key)
        if v is not None:
            self._d.move_to_end(key)
        return v

    def put(self, key: K, value: V, weight: int = 0) -> None:
        if self.max_bytes is not None and weight > self.max_bytes:
            return  # would evict everything else: not kept
        self.bytes += weight - self._w.pop(key, 0)
        self._w[key] = weight
        self._d[key] = value
        self._d.move_to_end(key)
        while len(self._d) > self.size or (self.max_bytes is not None and self.bytes > self.max_bytes):
            old, _ = self._d.popitem(last=False)
            self.bytes -= self._w.pop(old, 0)

    def __len__(self) -> int:
        return len(self._d)


def doc_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# KEYS: the entry, the bytes-registered counter; ARGV: text, its bytes, the total cap, TTL.
# 1: stored (or already there, its life renewed); 0: the store is full for this period.
_PUT = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  return 1
end
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
if used + tonumber(ARGV[2]) > tonumber(ARGV[3]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[4])
redis.call('INCRBY', KEYS[2], ARGV[2])
if redis.call('TTL', KEYS[2]) < 0 then redis.call('EXPIRE', KEYS[2], ARGV[4]) end
return 1
"""


class KeyValue:
    """A small string store shared by router replicas: Redis when configured, else in process.

    Used for the APQ store. Redis failures degrade to a miss (the client then
    sends the full query again), never to a failed request.

    Bounded: :meth:`put` stores at most ``max_total`` bytes of texts per ``ttl`` period in
    Redis (a counter with the entries' own lifetime, so at most twice that is ever stored),
    and the in-process copy keeps ``max_chars`` characters.
    """

    def __init__(
        self, redis: Redis | None, prefix: str, max_chars: int, ttl: int = 86_400, max_total: int | None = None
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl = ttl
        self.max_chars = max_chars  # the in-process copy is bounded by size, not count: texts go up to 1 MB
        self.max_total = max_total if max_total is not None else max_chars
        self.chars = 0
        self.local: OrderedDict[str, str] = OrderedDict()
        self.script = redis.register_script(_PUT) if redis is not None else None

    def _keep(self, key: str, text: str) -> None:
        old = self.local.pop(key, None)
        self.chars -= len(old) if old is not None else 0
        self.local[key] = text
        self.chars += len(text)
        while self.chars > self.max_chars and self.local:
            self.chars -= len(self.local.popitem(last=False)[1])

    async def get(self, key: str) -> str | None:
        hit = self.local.get(key)
        if hit is not None:
            self.local.move_to_end(key)
            return hit
        if self.redis is None:
            return None
        try:
            raw = await self.redis.get(self.prefix + key)
        except (RedisError, OSError) as exc:
            degraded("apq", exc, "APQ lookups treated as misses")
            return None
        if raw is None:
            return None
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        self._keep(key, text)
        return text

    async def put(self, key: str, value: str) -> bool:
        """Store ``value``; False when the store is full (nothing stored)."""
        if self.script is None:
            self._keep(key, value)
            return True
        size = len(value.encode())
        try:
            stored = int(
                await self.script(
                    keys=[self.prefix + key, self.prefix + "~bytes"], args=[value, size, self.max_total, self.ttl]
                )
            )
        except (RedisError, OSError) as exc:
            degraded("apq", exc, "APQ entries kept in this process only")
            stored = 1
        if stored:
            self._keep(key, value)
        return bool(stored)
