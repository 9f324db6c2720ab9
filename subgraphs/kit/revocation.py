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
  the users subgraph wrote a newer one meanwhile (SET NX);
- cheaper still, each process keeps what it read (``AccountStates``), but only
  while it is subscribed to the channel on which users announces every change,
  in the same MULTI as the SET: a change drops the account's entry as soon as
  the process reads the announcement. Whenever that subscription is not known
  to be live (not yet subscribed, reconnecting, no answer to its heartbeat) the
  memory is emptied and every check reads Redis, as above.

  The price is a bounded delay, where reading Redis on every check had none: a
  request checked while the announcement is on its way (normally well under a
  millisecond: Redis sends it before answering the change) passes with the old
  state, and if the subscription's connection stalls while Redis is otherwise
  reachable, for at most ``max_silence`` (1.5 s) after its last heartbeat.

Only identities that come from a client's access token carry an issue time:
calls one subgraph makes to another on a shopper's behalf are not checked again
(the subgraph that took the shopper's request checked it), and neither is an
internal token minted without one (only holders of the service secret can).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import redis.asyncio as aioredis
from gql import gql
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from .auth import Identity, InvalidToken, KeysUnavailable
from .config import Settings
from .periodic import in_background
from .service_client import ServiceClient

log = logging.getLogger("shopgraph.revocation")

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


def changes_channel(settings: Settings) -> str:
    """Where every change of an account's state is announced (the account's id)."""
    return f"{settings.redis_prefix}accounts:changed"


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
    """Record the account's state for every subgraph (``None``: deleted).

    A change is announced on ``changes_channel`` in the same MULTI as the SET, so
    no process can keep a copy of the old state once Redis has the new one. A fill
    (``only_if_absent``: the state read back from the users table) changes nothing."""
    value = DELETED if valid_after is None else repr(valid_after)
    key = state_key(settings, user_id)
    if only_if_absent:
        await redis.set(key, value, ex=state_ttl(settings), nx=True)
        return
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(key, value, ex=state_ttl(settings))
        pipe.publish(changes_channel(settings), str(user_id))
        await pipe.execute()


class AccountStates:
    """This process's copy of the account states it read, trusted only while its subscription to
    ``changes_channel`` is live.

    ``run`` keeps the subscription: each announced change drops that account's entry;
    a heartbeat (PING on the subscription) every ``heartbeat`` seconds proves it live,
    and after ``max_silence`` seconds without any reply, or on any error or
    reconnection, the copy is emptied and not used until the subscription answers
    again. A state read while a change (or a reconnection) was being handled is not
    kept: ``generation`` moves with each of them, and ``put`` refuses a state read
    under an older one.
    """

    def __init__(self, *, heartbeat: float = 0.5, max_silence: float = 1.5, max_entries: int = 100_000) -> None:
        self.heartbeat = heartbeat
        self.max_silence = max_silence
        self.max_entries = max_entries
        self.generation = 0
        self._states: dict[uuid.UUID, float | None] = {}
        self._live_until = 0.0  # time.monotonic() until which the subscription is known live

    @property
    def live(self) -> bool:
        return time.monotonic() < self._live_until

    def get(self, user_id: uuid.UUID) -> tuple[bool, float | None]:
        """(found, valid-after time or None for a deleted account)."""
        if user_id not in self._states or not self.live:
            return False, None
        return True, self._states[user_id]

    def put(self, user_id: uuid.UUID, valid_after: float | None, generation: int) -> None:
        if generation != self.generation or not self.live:
            return
        if len(self._states) >= self.max_entries:
            self._states.clear()
        self._states[user_id] = valid_after

    def changed(self, user_id: uuid.UUID | None) -> None:
        """An account changed (``None``: any may have)."""
        self.generation += 1
        if user_id is None:
            self._states.clear()
        else:
            self._states.pop(user_id, None)

    def _heard(self) -> None:
        self._live_until = time.monotonic() + self.max_silence

    def _lost(self) -> None:
        self._live_until = 0.0
        self.changed(None)

    def _on_message(self, message: dict[str, object]) -> None:
        kind = message.get("type")
        if kind == "message":
            data = message.get("data")
            try:
                user_id: uuid.UUID | None = uuid.UUID(data.decode() if isinstance(data, bytes) else str(data))
            except ValueError:
                user_id = None
            self.changed(user_id)
        elif kind == "subscribe":
            self.changed(None)  # (re)subscribed: whatever happened before is unknown
        self._heard()

    async def run(self, redis_url: str, channel: str) -> None:
        """Keep the subscription until cancelled; reconnect after errors."""
        while True:
            # No silent reconnection by redis-py: changes announced meanwhile would be missed.
            # Named after the channel: operators (and tests) can tell the subscription apart.
            client = aioredis.from_url(redis_url, retry=Retry(NoBackoff(), 0), client_name=channel)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(channel)
                    pinged = 0.0
                    while True:
                        if time.monotonic() - pinged >= self.heartbeat:
                            await pubsub.ping()
                            pinged = time.monotonic()
                        message = await pubsub.get_message(timeout=self.heartbeat)
                        if message is not None:
                            self._on_message(message)
            except (RedisError, OSError) as exc:
                log.debug("account changes subscription lost: %s", exc)
            finally:
                self._lost()
                await client.aclose()
            await asyncio.sleep(self.heartbeat)


@contextlib.asynccontextmanager
async def following_changes(states: AccountStates, settings: Settings) -> AsyncIterator[None]:
    """Run ``states``' subscription while the context is open."""
    async with in_background("account-changes", lambda: states.run(settings.redis_url, changes_channel(settings))):
        yield


async def check(
    redis: aioredis.Redis,
    settings: Settings,
    identity: Identity,
    lookup: AccountLookup,
    states: AccountStates | None = None,
) -> None:
    """Raise ``InvalidToken`` if the caller's token no longer speaks for its account."""
    user_id = identity.user_id
    if user_id is None or identity.issued_at is None:
        return
    generation = 0
    if states is not None:
        found, valid_after = states.get(user_id)
        if found:
            _compare(identity.issued_at, valid_after)
            return
        generation = states.generation
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
    if states is not None and redis_up:
        states.put(user_id, valid_after, generation)
    _compare(identity.issued_at, valid_after)


def _compare(issued_at: float, valid_after: float | None) -> None:
    if valid_after is None:
        raise InvalidToken("this account no longer exists")
    if issued_at < valid_after:  # an account never revoked is valid after 0
        raise InvalidToken("this session was signed out; sign in again")
