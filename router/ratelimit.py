"""Rate limits: token buckets per caller, in Redis so every router replica shares them.

A signed-in caller draws from its user's bucket, an anonymous one from its
client address's (a smaller budget); an operation whose estimated cost reaches
``expensive_cost`` also draws from the caller's expensive-operations bucket.
Both are taken in one Redis script call, atomically, on Redis's clock (replicas'
clocks may differ). A refused request gets HTTP 429 with ``Retry-After`` (and
the same error on a WebSocket subscribe). Without Redis the buckets live in the
process. When Redis is slow, down or the router's Redis pool is full
(router/redis_pool.py), the caller draws from an in-process bucket with the same
budget instead: a limit per replica, never "no limit" (counted in
``shopgraph_router_redis_degraded_total{feature="rate_limits"}``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from router.config import Bucket
from router.errors import RouterError
from router.redis_pool import degraded

log = logging.getLogger("shopgraph.router")

# KEYS: buckets; ARGV: per bucket rate, burst. Returns 0 when allowed, else the
# seconds (ceil) until every bucket has a token again. Nothing is taken unless all allow.
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local wait = 0
local state = {}
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local b = redis.call('HMGET', key, 'tokens', 'at')
  local tokens = tonumber(b[1]) or burst
  local at = tonumber(b[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
  if tokens < 1 then wait = math.max(wait, (1 - tokens) / rate) end
  state[i] = tokens
end
if wait > 0 then return math.ceil(wait) end
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  redis.call('HSET', key, 'tokens', state[i] - 1, 'at', now)
  redis.call('EXPIRE', key, math.ceil(burst / rate) + 1)
end
return 0
"""


@dataclass
class _Local:
    tokens: float
    at: float


class RateLimiter:
    def __init__(
        self,
        redis: Redis | None,
        prefix: str,
        users: Bucket,
        anonymous: Bucket,
        expensive: Bucket,
        timeout: float = 0.25,
    ) -> None:
        self.redis = redis
        self.timeout = timeout  # longest wait for Redis's answer before the in-process bucket decides
        self.prefix = prefix + "rate:"
        self.users = users
        self.anonymous = anonymous
        self.expensive = expensive
        self.script = redis.register_script(_SCRIPT) if redis is not None else None
        self.local: dict[str, _Local] = {}

    async def take(self, user: str | None, address: str, expensive: bool) -> None:
        """Take a token from the caller's buckets, or raise a 429 RouterError."""
        who = f"u:{user}" if user is not None else f"a:{address}"
        buckets = [(who, self.users if user is not None else self.anonymous)]
        if expensive:
            buckets.append(("x:" + who, self.expensive))
        wait = await self._take(buckets)
        if wait > 0:
            raise RouterError.of(
                "Too many requests; retry later.",
                "RATE_LIMITED",
                429,
                {"Retry-After": str(wait)},
                retryAfter=wait,
            )

    async def _take(self, buckets: list[tuple[str, Bucket]]) -> int:
        if self.script is not None:
            try:
                keys = [self.prefix + k for k, _ in buckets]
                args = [x for _, b in buckets for x in (b.rate, b.burst)]
                async with asyncio.timeout(self.timeout):
                    return int(await self.script(keys=keys, args=args))
            except (RedisError, OSError, TimeoutError) as exc:
                degraded("rate_limits", exc, "rate limits taken from this process's buckets")
        return self._take_local(buckets)

    def _take_local(self, buckets: list[tuple[str, Bucket]]) -> int:
        now = time.monotonic()
        wait = 0.0
        states = []
        for key, b in buckets:
            s = self.local.get(key) or _Local(b.burst, now)
            s.tokens = min(b.burst, s.tokens + (now - s.at) * b.rate)
            s.at = now
            states.append((key, s))
            if s.tokens < 1:
                wait = max(wait, (1 - s.tokens) / b.rate)
        if wait > 0:
            return math.ceil(wait)
        if len(self.local) > 100_000:  # forget idle callers rather than grow without bound
            self.local.clear()
        for key, s in states:
            s.tokens -= 1
            self.local[key] = s
        return 0
