"""Sign-in throttling: a guesser is slowed and stopped, the owner is never locked out from elsewhere.

Three Redis records per account, keyed by hashes (never by the raw email or
address, so their size is fixed whatever a client sends):

- per (account, client address): attempts since that address last signed in.
  After ``login_max_failures`` the address is refused for this account for
  ``login_lockout_seconds``, and each further lock of the same address lasts
  twice as long as the one before (up to a day): a patient guesser is slowed
  to a handful of guesses a day, and locks out only itself.
- per account: attempts from addresses that never signed in to it, counted
  only when the per-address limit let them through (refused attempts do not
  feed it; one that turns out to be the owner's is taken back). Past ten
  times the per-address limit in one window, new addresses are refused too:
  guessing spread over many addresses stops.
- the addresses that signed in successfully before (last 30 days, the
  ``MAX_KNOWN_ADDRESSES`` most recent): kept apart from the per-account ceiling, so the
  owner signs in from home while a botnet hammers the account. A new address
  during such an attack waits out the window or resets the password.

The counters move in Lua scripts, so concurrent guesses cannot slip past a
limit and no counter is ever left without its expiry.
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from dataclasses import dataclass

from redis.asyncio import Redis

from subgraphs.kit.config import Settings
from subgraphs.kit.context import Runtime

KNOWN_ADDRESS_DAYS = 30
MAX_KNOWN_ADDRESSES = 20
ACCOUNT_CEILING_FACTOR = 10
LONGEST_LOCK_SECONDS = 24 * 3600

# KEYS: pair counter, account counter, known addresses, pair strikes. ARGV: pair limit,
# account limit, window seconds, address digest, longest lock. Returns {0} when admitted,
# else {1, ttl} (this address is locked out) or {2, ttl} (the account refuses new addresses).
# Each time an address reaches its limit it gets a strike (remembered for the longest
# lock), and its lock lasts the window times 2^(strikes - 1): 15 min, 30, 1 h, ... 24 h.
_ADMIT = """
local limit = tonumber(ARGV[1])
local pair = redis.call('INCR', KEYS[1])
if pair == 1 then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
if pair > limit then
  if pair == limit + 1 then
    local strikes = redis.call('INCR', KEYS[4])
    redis.call('EXPIRE', KEYS[4], ARGV[5])
    local lock = math.min(tonumber(ARGV[3]) * math.pow(2, strikes - 1), tonumber(ARGV[5]))
    redis.call('EXPIRE', KEYS[1], math.floor(lock))
  end
  return {1, redis.call('TTL', KEYS[1])}
end
if redis.call('ZSCORE', KEYS[3], ARGV[4]) then return {0, 0} end
local account = tonumber(redis.call('GET', KEYS[2]) or '0')
if account >= tonumber(ARGV[2]) then
  redis.call('DECR', KEYS[1])
  return {2, redis.call('TTL', KEYS[2])}
end
if redis.call('INCR', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], ARGV[3]) end
return {0, 0}
"""

# KEYS as above. ARGV: now, address digest, how many known addresses to keep, their lifetime.
# A new address's successful attempt was counted against the ceiling as it came in: it
# proved to be the owner, so it is taken back (the ceiling counts guesses, not the owner).
_SUCCEEDED = """
redis.call('DEL', KEYS[1], KEYS[4])
local new = redis.call('ZADD', KEYS[3], ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -tonumber(ARGV[3]) - 1)
redis.call('EXPIRE', KEYS[3], ARGV[4])
if new == 1 and tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then redis.call('DECR', KEYS[2]) end
return new
"""


def digest(text: str) -> str:
    """A fixed-size stand-in for user input in a Redis key."""
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def address_group(address: str) -> str:
    """The unit a client controls: an IPv4 address, an IPv6 /64 (one host can use the whole /64)."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address[:100]
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


@dataclass(frozen=True)
class Refusal:
    seconds: int  # until the attempt may be made again
    whole_account: bool  # refused for every new address, not only this one


class SignInThrottle:
    def __init__(self, runtime: Runtime) -> None:
        self.redis: Redis = runtime.redis
        self.settings: Settings = runtime.settings
        self._key = runtime.redis_key
        self._admit = self.redis.register_script(_ADMIT)
        self._succeeded = self.redis.register_script(_SUCCEEDED)

    def _keys(self, email: str, address: str) -> tuple[list[str], str]:
        account, where = digest(email.lower()), digest(address_group(address))
        keys = [
            self._key("sign-in", account, "from", where),
            self._key("sign-in", account),
            self._key("sign-in", account, "known"),
            self._key("sign-in", account, "from", where, "strikes"),
        ]
        return keys, where

    async def admit(self, email: str, address: str) -> Refusal | None:
        """Count an attempt before the (slow) password check; a Refusal if it must not be checked."""
        keys, where = self._keys(email, address)
        limit = self.settings.login_max_failures
        window = self.settings.login_lockout_seconds
        args: list[str | int] = [limit, limit * ACCOUNT_CEILING_FACTOR, window, where, LONGEST_LOCK_SECONDS]
        outcome, ttl = await self._admit(keys=keys, args=args)
        if int(outcome) == 0:
            return None
        return Refusal(seconds=max(int(ttl), 1), whole_account=int(outcome) == 2)

    async def succeeded(self, email: str, address: str) -> None:
        """The address proved it knows the password: its counter and strikes restart, and it is kept apart."""
        keys, where = self._keys(email, address)
        await self._succeeded(keys=keys, args=[time.time(), where, MAX_KNOWN_ADDRESSES, KNOWN_ADDRESS_DAYS * 24 * 3600])
