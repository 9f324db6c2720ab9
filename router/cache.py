"""Caches: in-process LRUs for parsed/validated documents and query plans, and the
APQ store (Redis, shared by replicas).

Plan keys are (sha256 of the document text, operation name); values are
immutable once built, so concurrent requests share them freely.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from typing import Generic, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("shopgraph.router")

K = TypeVar("K")
V = TypeVar("V")


class LRU(Generic[K, V]):
    def __init__(self, size: int) -> None:
        self.size = size
        self._d: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        v = self._d.get(key)
        if v is not None:
            self._d.move_to_end(key)
        return v

    def put(self, key: K, value: V) -> None:
        self._d[key] = value
        self._d.move_to_end(key)
        while len(self._d) > self.size:
            self._d.popitem(last=False)

    def __len__(self) -> int:
        return len(self._d)


def doc_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class KeyValue:
    """A small string store shared by router replicas: Redis when configured, else in process.

    Used for the APQ store. Redis failures degrade to a miss (the client then
    sends the full query again), never to a failed request.
    """

    def __init__(self, redis: Redis | None, prefix: str, max_chars: int, ttl: int = 86_400) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl = ttl
        self.max_chars = max_chars  # the in-process copy is bounded by size, not count: texts go up to 1 MB
        self.chars = 0
        self.local: OrderedDict[str, str] = OrderedDict()

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
        except RedisError:
            log.warning("Redis unavailable: APQ lookup treated as a miss", exc_info=True)
            return None
        if raw is None:
            return None
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        self._keep(key, text)
        return text

    async def put(self, key: str, value: str) -> None:
        self._keep(key, value)
        if self.redis is not None:
            try:
                await self.redis.set(self.prefix + key, value, ex=self.ttl)
            except RedisError:
                log.warning("Redis unavailable: APQ entry kept in this process only", exc_info=True)
