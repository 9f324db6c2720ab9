"""Tokens against the account's current state: a deleted account's or revoked token is refused at once.

Access tokens live 15 minutes and carry the role they were issued with; the
account can change sooner (deleted, role changed, password reset, signed out
everywhere). The users subgraph then moves the account's *sessions valid
after* time forward, in PostgreSQL and in Redis; every subgraph compares a
caller's token issue time (``iat``, forwarded by the router as ``auth_time``)
against it on every authenticated request:

- the cheap path is one Redis GET of ``<prefix>accounts:<user id>``, holding
  the time as a decimal number of seconds, or ``deleted``;
- when the key is missing (Redis restarted, or no token was issued recently),
  the subgraph asks the owner of the truth (users reads its table; the others
  call users' internal ``accountState`` query) and puts the answer back, unless
  the users subgraph wrote a newer one meanwhile (SET NX).

Only identities that come from a client's access token carry an issue time:
calls one subgraph makes to another on a shopper's behalf are not checked again
(the subgraph that took the shopper's request checked it), and neither is an
internal token minted without one (only holders of the service secret can).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from gql import gql
from redis.exceptions import RedisError

from .auth import Identity, InvalidToken, KeysUnavailable
from .config import Settings
from .service_client import ServiceClient

DELETED = "deleted"
# A valid-after time, or None: the account does not exist (any more).
AccountLookup = Callable[[uuid.UUID], Awaitable[float | None]]
ACCOUNT_STATE = gql("query AccountState($id: ID!) { accountState(userId: $id) { exists sessionsValidAfter } }")


def ask_users(users: ServiceClient) -> AccountLookup:
    """The lookup of every subgraph but users: its internal ``accountState`` query."""

    async def lookup(user_id: uuid.UUID) -> float | None:
        state = (await users.execute(ACCOUNT_STATE, {"id": str(user_id)}))["accountState"]
        return float(state["sessionsValidAfter"]) if state["exists"] else None

    return lookup


def state_key(settings: Settings, user_id: uuid.UUID) -> str:
    return f"{settings.redis_prefix}accounts:{user_id}"


def state_ttl(settings: Settings) -> int:
    """Longer than any access token lives: refreshed whenever one is issued, so it rarely falls back."""
    return settings.access_token_ttl_seconds * 2 + 60


async def publish(
    redis: aioredis.Redis,
    settings: Settings,
    user_id: uuid.UUID,
    valid_after: float | None,
    *,
    only_if_absent: bool = False,
) -> None:
    """Record the account's state for every subgraph (``None``: deleted)."""
    value = DELETED if valid_after is None else repr(valid_after)
    await redis.set(state_key(settings, user_id), value, ex=state_ttl(settings), nx=only_if_absent)


async def check(redis: aioredis.Redis, settings: Settings, identity: Identity, lookup: AccountLookup) -> None:
    """Raise ``InvalidToken`` if the caller's token no longer speaks for its account."""
    user_id = identity.user_id
    if user_id is None or identity.issued_at is None:
        return
    try:
        raw = await redis.get(state_key(settings, user_id))
    except RedisError:
        raw, redis_up = None, False  # Redis is down: ask the source of truth for every call meanwhile
    else:
        redis_up = True
    if raw is None:
        try:
            valid_after = await lookup(user_id)
        except Exception as exc:
            raise KeysUnavailable("cannot check the account's sessions now") from exc
        if redis_up:
            await publish(redis, settings, user_id, valid_after, only_if_absent=True)
    else:
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        valid_after = None if text == DELETED else float(text)
    if valid_after is None:
        raise InvalidToken("this account no longer exists")
    if identity.issued_at < valid_after:  # an account never revoked is valid after 0
        raise InvalidToken("this session was signed out; sign in again")
