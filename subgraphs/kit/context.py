"""What every resolver and transport shares: the process-wide ``Runtime`` and the per-request context.

Its own module so the app factory and the WebSocket handler (which the app
factory installs) both depend on it, rather than on each other.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import redis.asyncio as aioredis
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.websockets import WebSocket

from . import revocation
from .auth import Identity, TokenVerifier
from .config import Settings
from .db import Database
from .service_client import ServiceClient

T = TypeVar("T")

# Set by the router on every subgraph request: the address its client connected from.
CLIENT_ADDRESS_HEADER = "x-shopgraph-client-address"


@dataclass
class Runtime:
    """Process-wide resources of one subgraph, shared by all its requests."""

    name: str
    settings: Settings
    db: Database
    redis: aioredis.Redis
    verifier: TokenVerifier
    clients: dict[str, ServiceClient] = field(default_factory=dict)
    # Long-lived parts a subgraph adds at start-up (its event hub, say), one per type.
    parts: dict[type[Any], Any] = field(default_factory=dict)
    # Where an account's state is read when Redis does not have it: the users
    # subgraph reads its own table; every other subgraph asks it (the default).
    account_lookup: revocation.AccountLookup | None = None
    # The account states this process read, while it follows their changes (kit.revocation).
    account_states: revocation.AccountStates | None = None

    async def identify(self, token: str) -> Identity:
        """The caller a bearer token names, if it is valid and still speaks for its account."""
        identity = await self.verifier.verify(token)
        await self.check_account(identity)
        return identity

    async def check_account(self, identity: Identity) -> None:
        """Raise ``InvalidToken`` if the identity's token no longer speaks for its account."""
        await revocation.check(
            self.redis, self.settings, identity, self.account_lookup or self._ask_users, self.account_states
        )

    async def _ask_users(self, user_id: uuid.UUID) -> float | None:
        return await revocation.ask_users(self.client("users"))(user_id)

    def provide(self, part: object) -> None:
        self.parts[type(part)] = part

    def get(self, kind: type[T]) -> T:
        return cast(T, self.parts[kind])

    def client(self, target: str) -> ServiceClient:
        if target not in self.clients:
            self.clients[target] = ServiceClient(
                target=target,
                url=self.settings.url_of(target),
                caller=self.name,
                secret=self.settings.service_secret,
            )
        return self.clients[target]

    def redis_key(self, *parts: str) -> str:
        return self.settings.redis_prefix + ":".join((self.name, *parts))

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()
        await self.redis.aclose()
        await self.db.dispose()


@dataclass
class RequestContext:
    """What every resolver sees as ``info.context``; subgraphs subclass it to add loaders."""

    runtime: Runtime
    identity: Identity
    request: Request | WebSocket | None = None
    # Headers of the HTTP response (None over WebSocket): where ``Cache-Control`` goes.
    response_headers: MutableHeaders | None = None
    # A resolver answered differently for this caller than it would for another (role, identity):
    # the response is never cacheable in a shared scope (kit.cache_control).
    answer_is_private: bool = False

    def answer_depends_on_caller(self) -> None:
        """What this request returns depends on who asks (an admin-only filter, say): mark the
        response ``private`` so no router or CDN serves it to anyone else."""
        self.answer_is_private = True

    @property
    def client_address(self) -> str:
        """The client's address. Behind the router the peer is the router, which names its
        client in a header; the header is trusted from the router only."""
        request = self.request
        if request is None:
            return "unknown"
        if self.identity.service == "router":
            forwarded = request.headers.get(CLIENT_ADDRESS_HEADER)
            if forwarded:
                return forwarded
        return request.client.host if request.client else "unknown"

    def reset_loaders(self) -> None:
        """Forget what this request loaded: after a mutation, later fields must see the change."""
        self.__dict__.pop("loaders", None)


ContextFactory = Callable[[Runtime, Identity, Request | WebSocket], RequestContext]
