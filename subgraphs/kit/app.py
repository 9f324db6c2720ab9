"""The ASGI app factory every subgraph uses: GraphQL at /graphql, auth, health.

A subgraph supplies its strawberry schema and a context factory; the factory
here owns the process-wide resources (database engine, Redis, token verifier,
clients of other subgraphs) and the request plumbing around them.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar, cast

import orjson
import redis.asyncio as aioredis
from cross_web import HTTPException
from graphql import GraphQLError, OperationType, get_operation_ast, parse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.federation import Schema
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, MULTIPART_SUBSCRIPTION_PROTOCOL

from . import telemetry
from .auth import (
    ANONYMOUS,
    ROUTER_ONLY_MESSAGE,
    Identity,
    InvalidToken,
    JwksClient,
    KeyLookup,
    KeysUnavailable,
    TokenVerifier,
    admitted,
    bearer_token,
)
from .config import Settings
from .db import Database
from .service_client import ServiceClient
from .websocket import AuthenticatingTransportWS

T = TypeVar("T")


log = logging.getLogger("shopgraph.app")
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


class _GraphQLView(GraphQL[RequestContext, None]):
    # Subscriptions: over WebSocket graphql-transport-ws only (what routers and graphql-ws
    # clients use; the token comes with connection_init), and over HTTP multipart.
    graphql_transport_ws_handler_class = AuthenticatingTransportWS

    def __init__(self, schema: Schema, make_context: ContextFactory) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql",
            allow_queries_via_get=True,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, MULTIPART_SUBSCRIPTION_PROTOCOL),
            connection_init_wait_timeout=timedelta(seconds=10),
        )
        self._make_context = make_context

    async def execute_single(self, *args: Any, **kwargs: Any) -> Any:
        # Over plain HTTP a subscription would run as a query and fail obscurely;
        # say what to use instead (multipart requests never reach this method).
        data = kwargs.get("request_data")
        if data is not None and "subscription" in (data.query or ""):
            try:
                operation = get_operation_ast(parse(data.query), data.operation_name)
            except GraphQLError:
                operation = None  # let strawberry report the syntax error as usual
            if operation is not None and operation.operation is OperationType.SUBSCRIPTION:
                raise HTTPException(
                    400,
                    "Subscriptions need a WebSocket (graphql-transport-ws) or multipart HTTP "
                    '(Accept: multipart/mixed;subscriptionSpec="1.0").',
                )
        return await super().execute_single(*args, **kwargs)

    async def get_context(self, request: Request | WebSocket, response: Any) -> RequestContext:
        runtime: Runtime = request.app.state.runtime
        identity: Identity = request.scope.get("identity", ANONYMOUS)
        return self._make_context(runtime, identity, request)


class _Authenticate:
    """Verify the bearer token before GraphQL runs: a bad token is a 401, never anonymous."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope)
            try:
                token = bearer_token(request.headers.get("authorization"))
                runtime: Runtime = request.app.state.runtime
                identity = await runtime.verifier.verify(token) if token else ANONYMOUS
            except InvalidToken as exc:
                await _refuse(scope, receive, send, 401, f"Invalid token: {exc}", "UNAUTHENTICATED")
                return
            except KeysUnavailable:
                log.exception("token verification unavailable")
                await _refuse(scope, receive, send, 503, "Cannot verify tokens right now.", "SERVICE_UNAVAILABLE")
                return
            if not admitted(identity, router_only=runtime.settings.router_only):
                await _refuse(scope, receive, send, 403, ROUTER_ONLY_MESSAGE, "FORBIDDEN")
                return
            scope["identity"] = identity
        await self.app(scope, receive, send)


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, message: str, code: str) -> None:
    error = {"message": message, "extensions": {"code": code}}
    headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'} if status == 401 else {}
    response = Response(orjson.dumps({"errors": [error]}), status, headers, "application/json")
    await response(scope, receive, send)


def create_app(
    *,
    name: str,
    schema: Schema,
    settings: Settings,
    make_context: ContextFactory,
    routes: Sequence[BaseRoute] = (),
    public_key: KeyLookup | None = None,
    on_startup: Callable[[Runtime], Awaitable[None]] | None = None,
    background: Sequence[Callable[[Runtime], AbstractAsyncContextManager[None]]] = (),
) -> Starlette:
    """Build one subgraph's ASGI app.

    ``public_key`` lets the users subgraph verify access tokens from its own key
    store; every other subgraph fetches the users subgraph's JWKS over HTTP.
    ``background`` are entered after start-up and left at shutdown, in reverse
    (long-running tasks such as an outbox relay).
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        db = Database(settings.database_url_for(name), name)
        redis = aioredis.from_url(settings.redis_url)
        verifier = TokenVerifier(public_key or JwksClient(settings.jwks_url).get, settings.service_secret)
        runtime = Runtime(name=name, settings=settings, db=db, redis=redis, verifier=verifier)
        app.state.runtime = runtime
        try:
            if on_startup:
                await on_startup(runtime)
            async with contextlib.AsyncExitStack() as parts:
                for part in background:
                    await parts.enter_async_context(part(runtime))
                yield
        finally:
            await runtime.close()

    async def health(request: Request) -> JSONResponse:
        """Liveness: the process serves requests (a database outage must not restart every pod)."""
        return JSONResponse({"status": "ok", "subgraph": name})

    async def ready(request: Request) -> JSONResponse:
        """Readiness: PostgreSQL (this subgraph's schema migrated) and Redis answer."""
        runtime: Runtime = request.app.state.runtime
        try:
            async with runtime.db.read() as conn:
                await conn.exec_driver_sql("SELECT 1 FROM schema_migrations LIMIT 1")
            await runtime.redis.ping()
        except Exception as exc:
            log.warning("not ready: %s", exc)
            return JSONResponse({"status": "unavailable", "subgraph": name}, 503)
        return JSONResponse({"status": "ok", "subgraph": name})

    graphql = _Authenticate(_GraphQLView(schema, make_context))
    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/health", health),
            Route("/ready", ready),
            *routes,
        ],
        lifespan=lifespan,
    )
    telemetry.instrument(app, name)  # /metrics, request ids, traces (kit/telemetry.py)
    return app
