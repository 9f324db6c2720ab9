"""The ASGI app factory every subgraph uses: GraphQL at /graphql, auth, health.

A subgraph supplies its strawberry schema and a context factory; the factory
here owns the process-wide resources (database engine, Redis, token verifier,
clients of other subgraphs) and the request plumbing around them.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import Any

import orjson
import redis.asyncio as aioredis
from cross_web import HTTPException
from graphql import GraphQLError, get_operation_ast, parse
from graphql import OperationType as GraphQLOperationType
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import MissingQueryError
from strawberry.federation import Schema
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, MULTIPART_SUBSCRIPTION_PROTOCOL
from strawberry.types.graphql import OperationType

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
from .context import ContextFactory, RequestContext, Runtime
from .db import Database
from .revocation import AccountStates, following_changes
from .websocket import AuthenticatingTransportWS

log = logging.getLogger("shopgraph.app")


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
            if operation is not None and operation.operation is GraphQLOperationType.SUBSCRIPTION:
                raise HTTPException(
                    400,
                    "Subscriptions need a WebSocket (graphql-transport-ws) or multipart HTTP "
                    '(Accept: multipart/mixed;subscriptionSpec="1.0").',
                )
        return await super().execute_single(*args, **kwargs)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Plain JSON POSTs (every request a router or another subgraph sends) skip strawberry's HTTP
        # machinery, which cost more CPU than executing a small operation: two content-type parses
        # through email.message, a request adapter, the stream-transport checks. Anything else
        # (GET, multipart uploads, subscriptions over HTTP, batches, bodies that do not read as one
        # operation) goes through strawberry's view with the body as read.
        if scope["type"] == "http" and scope["method"] == "POST" and _plain_json(scope):
            body = await _read_body(receive)
            if await self._answer_plain(scope, body, send):
                return
            receive = _replay(body)
        await super().__call__(scope, receive, send)

    async def _answer_plain(self, scope: Scope, body: bytes, send: Send) -> bool:
        """Answer a single operation as strawberry's view would (same execution, result and response
        hooks); False, having done nothing, for whatever its view must handle instead."""
        try:
            data = self.decode_json(body)
        except ValueError:
            return False
        if not isinstance(data, dict):
            return False
        query, variables, extensions = data.get("query"), data.get("variables"), data.get("extensions")
        if not isinstance(query, str) or "subscription" in query:
            return False
        if not isinstance(variables, dict | None) or not isinstance(extensions, dict | None):
            return False
        request = Request(scope)
        request._body = body  # read already: a context reading it gets it
        sub_response = await self.get_sub_response(request)
        context = await self.get_context(request, response=sub_response)
        try:
            result = await self.schema.execute(
                query,
                root_value=None,
                variable_values=variables,
                context_value=context,
                operation_name=data.get("operationName"),
                allowed_operation_types=_POST_OPERATIONS,
                operation_extensions=extensions,
            )
        except (CannotGetOperationTypeError, InvalidOperationTypeError, MissingQueryError):
            return False  # refused before anything ran: the view words the 400
        response_data = await self.process_result(request, result)
        if result.errors:
            self._handle_errors(result.errors, response_data)
        response = self.create_response(response_data=response_data, sub_response=sub_response)
        await response(scope, _replay(b""), send)
        return True

    def decode_json(self, data: str | bytes) -> object:
        # orjson first (several times faster); what it refuses (NaN, integers past 64 bits, lone
        # surrogates) goes to the standard json strawberry uses, so every body reads as before.
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            return json.loads(data)

    def encode_json(self, data: object) -> str:
        # orjson: several times faster than the standard json strawberry uses. A str, not
        # bytes: strawberry would send bytes over WebSocket as binary frames.
        return orjson.dumps(data).decode()

    async def get_context(self, request: Request | WebSocket, response: Any) -> RequestContext:
        runtime: Runtime = request.app.state.runtime
        identity: Identity = request.scope.get("identity", ANONYMOUS)
        context = self._make_context(runtime, identity, request)
        if isinstance(response, Response):
            context.response_headers = response.headers
        return context


_POST_OPERATIONS = OperationType.from_http("POST")  # strawberry's own set: query, mutation, subscription


def _plain_json(scope: Scope) -> bool:
    """A JSON body (any charset) and no streamed answer asked for (multipart/mixed, event streams)."""
    content_type = accept = b""
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value
        elif name == b"accept":
            accept = value
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" and b"multipart" not in accept and b"event-stream" not in accept


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client left: nothing to answer
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    """``receive`` for a body read already: the body, then a disconnect (as a server would say)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


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
                identity = await runtime.identify(token) if token else ANONYMOUS
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
        verifier = TokenVerifier(public_key or JwksClient(settings.jwks_url).get, settings.service_secret, name)
        states = AccountStates()
        runtime = Runtime(name=name, settings=settings, db=db, redis=redis, verifier=verifier, account_states=states)
        app.state.runtime = runtime
        telemetry.count_statements(runtime)
        try:
            if on_startup:
                await on_startup(runtime)
            async with contextlib.AsyncExitStack() as parts:
                await parts.enter_async_context(following_changes(states, settings))
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
