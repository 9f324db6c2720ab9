"""The cost budget: a caller's operations draw their estimated *cost* from it, not a count.

Every anonymous operation, and a signed-in user's whose estimated cost reaches
``demand_control.expensive_cost``, takes that many units from its caller's bucket
(``rate_limits.expensive_cost``: units per second and burst); four workers sending
48,000-cost queries from one address were each counted as one request before. The
bucket lives in Redis (shared by replicas, one atomic script on Redis's clock); when
Redis is missing or fails the same bucket is kept in process: never "no limit".

An operation over the cost cap is refused, but first empties the bucket by the cap
(:meth:`CostBudget.charge`: never refused for it), so a client alternating over-cap and
near-cap documents pays for both.
"""

from __future__ import annotations

import math
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

from router.config import Bucket
from router.errors import RouterError
from router.redis_pool import degraded

# KEYS[1]: the bucket; ARGV: rate, burst, cost, force. 0 when taken, else seconds until it would be;
# forced: taken down to 0 at most, never refused.
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local force = ARGV[4] == '1'
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1]) or burst
local at = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
if tokens < cost and not force then return math.ceil((cost - tokens) / rate) end
redis.call('HSET', KEYS[1], 'tokens', math.max(0, tokens - cost), 'at', now)
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return 0
"""


class CostBudget:
    def __init__(self, redis: Redis | None, prefix: str, bucket: Bucket) -> None:
        self.prefix = prefix + "cost:"
        self.bucket = bucket
        self.script = redis.register_script(_SCRIPT) if redis is not None else None
        self.local: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    async def take(self, user: str | None, address: str, cost: float) -> None:
        """Take ``cost`` units from the caller's bucket, or raise a 429 RouterError."""
        cost = min(cost, self.bucket.burst)  # (an operation under the cost cap is never refused forever)
        wait = await self._draw(user, address, cost, False)
        if wait > 0:
            raise RouterError.of(
                f"Too many expensive operations; this one (cost {cost:,.0f}) can run in {wait}s.",
                "RATE_LIMITED",
                429,
                {"Retry-After": str(wait)},
                retryAfter=wait,
                limit="EXPENSIVE_COST",
            )

    async def charge(self, user: str | None, address: str, cost: float) -> None:
        """Take up to ``cost`` units from the caller's bucket (down to empty), never refusing."""
        await self._draw(user, address, min(cost, self.bucket.burst), True)

    async def _draw(self, user: str | None, address: str, cost: float, force: bool) -> int:
        key = f"u:{user}" if user is not None else f"a:{address}"
        if self.script is not None:
            try:
                args = [self.bucket.rate, self.bucket.burst, cost, "1" if force else "0"]
                return int(await self.script(keys=[self.prefix + key], args=args))
            except (RedisError, OSError) as exc:
                degraded("expensive_budget", exc, "the expensive budget is kept in this process")
        return self._take_local(key, cost, force)

    def _take_local(self, key: str, cost: float, force: bool = False) -> int:
        now = time.monotonic()
        b = self.bucket
        tokens, at = self.local.get(key, (b.burst, now))
        tokens = min(b.burst, tokens + (now - at) * b.rate)
        if force:
            cost = min(cost, tokens)
        if tokens < cost:
            self.local[key] = (tokens, now)
            return math.ceil((cost - tokens) / b.rate)
        if len(self.local) > 100_000:  # forget idle callers rather than grow without bound
            self.local.clear()
        self.local[key] = (tokens - cost, now)
        return 0
