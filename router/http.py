"""Starlette app serving the federated graph over GraphQL-over-HTTP.

Entry points:

- ``create_app(supergraph_sdl: str, settings: Settings | None = None) -> Starlette``
  builds the ASGI app (settings default to ``Settings.from_env()``).
- ``serve(supergraph_path: str, host: str = "127.0.0.1", port: int = 4000) -> None``
  (synchronous, blocks) reads the supergraph file and runs the app with uvicorn.

Routes: POST/GET ``/graphql`` (GET for queries only; GraphiQL when a browser
asks for HTML; its assets on ``/graphiql/…``, router/graphiql.py), ``/health``.
Subscriptions (router/subscriptions.py): WebSocket
``/graphql`` (graphql-transport-ws), and POST/GET ``/graphql`` with
``Accept: text/event-stream`` (graphql-sse) or ``multipart/mixed;subscriptionSpec``.
Responses are ``application/graphql-response+json``
when the client accepts it (request errors -> 400) else ``application/json``
(request errors -> 200, as legacy clients expect). Malformed requests are 400,
bad tokens 401; nothing a client sends yields a 500 or a stack trace.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from router import graphiql, telemetry
from router.auth import AuthError, Identity, InternalTokens, JWKSVerifier, bearer
from router.config import Settings
from router.pipeline import Pipeline, RequestError
from router.streams import respond as stream_response
from router.subscriptions import CLIENT_ADDRESS_HEADER, SSE, Caller, SubscriptionService, stream_mode, token_expiry
from router.supergraph import Supergraph
from router.ws import serve as serve_websocket

log = logging.getLogger("shopgraph.router")

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"

__all__ = ["Settings", "Supergraph", "create_app", "serve"]


class _Bad(Exception):
    def __init__(
        self, status: int, message: str, code: str = "BAD_REQUEST", headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.headers = headers or {}


def _address(connection: Request | WebSocket) -> str:
    return connection.client.host if connection.client else "unknown"


def _media_type(request: Request) -> str | None:
    accept = request.headers.get("accept", "")
    if not accept:
        return JSON
    for part in accept.split(","):
        mt = part.split(";")[0].strip().lower()
        if mt == GRAPHQL_RESPONSE:
            return GRAPHQL_RESPONSE
        if mt in (JSON, "*/*", "application/*"):
            return JSON
    return None


def _respond(body: dict[str, Any], status: int, media: str, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=f"{media}; charset=utf-8", headers=headers)


class GraphQLEndpoint:
    def __init__(self, pipeline: Pipeline, settings: Settings) -> None:
        self.pipeline = pipeline
        self.settings = settings
        self.verifier: JWKSVerifier | None = None
        self.tokens = InternalTokens(settings.service_secret) if settings.service_secret else None

    async def handle(self, request: Request) -> Response:
        stream = stream_mode(request.headers.get("accept", ""))
        media = GRAPHQL_RESPONSE if stream == SSE else _media_type(request) or (JSON if stream else None)
        if (
            (request.method == "GET" and media is None)
            or (
                request.method == "GET"
                and "text/html" in request.headers.get("accept", "")
                and "query" not in request.query_params
            )
        ) and self.settings.graphiql:
            return HTMLResponse(graphiql.page(request))
        if media is None:
            return _respond(
                {"errors": [{"message": f"Not acceptable: use application/json or {GRAPHQL_RESPONSE}"}]}, 406, JSON
            )
        try:
            params = await self._params(request)
            return await self._execute(request, params, media, stream)
        except _Bad as b:
            return _respond(
                {"errors": [{"message": str(b), "extensions": {"code": b.code}}]}, b.status, media, b.headers
            )
        except RequestError as e:
            status = e.status if media == GRAPHQL_RESPONSE or e.status >= 500 else 200
            return _respond({"errors": e.errors}, status, media)
        except AuthError as e:
            return _respond(
                {"errors": [{"message": str(e), "extensions": {"code": "UNAUTHENTICATED"}}]},
                401,
                media,
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        except Exception:  # never leak a stack trace to clients
            log.exception("unexpected error while serving a GraphQL request")
            return _respond(
                {"errors": [{"message": "Internal server error", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]},
                500,
                media,
            )

    async def _params(self, request: Request) -> dict[str, Any]:
        if request.method == "GET":
            qp = request.query_params
            params: dict[str, Any] = {"query": qp.get("query"), "operationName": qp.get("operationName") or None}
            for k in ("variables", "extensions"):
                raw = qp.get(k)
                if raw:
                    try:
                        params[k] = orjson.loads(raw)
                    except orjson.JSONDecodeError as e:
                        raise _Bad(400, f"The '{k}' parameter is not valid JSON.") from e
            return self._check(params)
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        length = request.headers.get("content-length")
        limit = self.settings.max_body_bytes
        if length and length.isdigit() and int(length) > limit:
            raise _Bad(413, f"Request body exceeds {limit} bytes.", "PAYLOAD_TOO_LARGE")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise _Bad(413, f"Request body exceeds {limit} bytes.", "PAYLOAD_TOO_LARGE")
        if ctype == "application/graphql":
            return self._check({"query": body.decode("utf-8", "replace")})
        if ctype not in (JSON, GRAPHQL_RESPONSE, ""):
            raise _Bad(415, f"Unsupported content type {ctype!r}; send application/json.", "UNSUPPORTED_MEDIA_TYPE")
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise _Bad(400, "The request body is not valid JSON.") from e
        if not isinstance(parsed, dict):
            raise _Bad(400, "The request body must be a JSON object (batching is not supported).")
        return self._check(parsed)

    @staticmethod
    def _check(params: dict[str, Any]) -> dict[str, Any]:
        q = params.get("query")
        if not isinstance(q, str) or not q.strip():
            raise _Bad(400, "The request has no 'query' string.")
        if params.get("operationName") is not None and not isinstance(params["operationName"], str):
            raise _Bad(400, "'operationName' must be a string.")
        v = params.get("variables")
        if v is not None and not isinstance(v, dict):
            raise _Bad(400, "'variables' must be a JSON object.")
        return params

    async def _execute(self, request: Request, params: dict[str, Any], media: str, stream: str | None) -> Response:
        identity = await self._identity(request)
        p = self.pipeline.prepare(params["query"], params.get("operationName"))
        if request.method == "GET" and p.op.kind != "query" and not (stream and p.op.kind == "subscription"):
            raise _Bad(
                405,
                f"Can only perform a {p.op.kind} operation from a POST request.",
                "METHOD_NOT_ALLOWED",
                {"Allow": "POST"},
            )
        variables = params.get("variables")
        self.pipeline.coerce(p, variables)
        if p.op.kind == "subscription" or stream == SSE:
            if stream is None:
                raise RequestError(
                    [
                        {
                            "message": "Subscriptions need a streaming transport: WebSocket "
                            "(graphql-transport-ws), Accept: text/event-stream or "
                            'Accept: multipart/mixed;subscriptionSpec="1.0".',
                            "extensions": {"code": "OPERATION_NOT_SUPPORTED"},
                        }
                    ]
                )
            token = bearer(request.headers.get("authorization"))
            caller = Caller(identity, token_expiry(token) if identity and token else None, _address(request))
            return stream_response(stream, self.subscriptions, p, variables, caller)
        headers = {"content-type": JSON, "accept": JSON}
        if self.tokens is not None:
            headers["authorization"] = self.tokens.header(identity)
            headers[CLIENT_ADDRESS_HEADER] = _address(request)
        body = await self.pipeline.run(p, dict(variables) if variables else None, headers)
        return _respond(body, 200, media)

    async def _identity(self, request: Request) -> Identity | None:
        return await self.verify(bearer(request.headers.get("authorization")))

    async def caller(self, token: str | None) -> Caller:
        """A WebSocket's caller, from the token of its connection_init."""
        identity = await self.verify(token)
        return Caller(identity, token_expiry(token) if identity and token else None)

    async def verify(self, token: str | None) -> Identity | None:
        if token is None:
            return None
        if self.verifier is None:
            if not self.settings.jwks_url:
                return None  # no JWKS configured: tokens are not interpreted
            self.verifier = JWKSVerifier(self.settings.jwks_url, self.pipeline_client, self.settings.jwks_min_refetch)
        return await self.verifier.verify(token)

    pipeline_client: httpx.AsyncClient
    subscriptions: SubscriptionService


def create_app(supergraph_sdl: str, settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    pipeline = Pipeline(supergraph_sdl, settings)
    endpoint = GraphQLEndpoint(pipeline, settings)
    subscriptions = endpoint.subscriptions = SubscriptionService(pipeline, settings, endpoint.tokens)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        limits = httpx.Limits(max_connections=512, max_keepalive_connections=256, keepalive_expiry=30)
        async with httpx.AsyncClient(limits=limits, http2=False, trust_env=False) as client:
            pipeline.bind(client)
            endpoint.pipeline_client = client
            yield
            pipeline.close()
            await subscriptions.close()

    async def websocket(ws: WebSocket) -> None:
        await serve_websocket(ws, subscriptions, endpoint.caller)

    async def health(_: Request) -> Response:
        return _respond({"status": "ok", "subgraphs": sorted(pipeline.urls)}, 200, JSON)

    app = Starlette(
        routes=[
            Route("/graphql", endpoint.handle, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", websocket),
            Route("/health", health, methods=["GET"]),
            *(graphiql.routes() if settings.graphiql else []),
        ],
        lifespan=lifespan,
    )
    app.state.pipeline = pipeline
    app.state.subscriptions = subscriptions
    telemetry.instrument(app)  # access log, /metrics, traces (router/telemetry.py)
    return app


def serve(supergraph_path: str, host: str = "127.0.0.1", port: int = 4000) -> None:
    """Run the router (blocking) on the supergraph file, settings from env."""
    import uvicorn

    with open(supergraph_path, encoding="utf-8") as fh:
        sdl = fh.read()
    app = create_app(sdl, Settings.from_env())
    gc.freeze()  # the schema and plans are long-lived: keep them out of GC scans
    # log_config=None: uvicorn logs through the process logging (JSON lines from `shopgraph router`).
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        log_config=None,
        access_log=False,
        loop="uvloop",
        http="httptools",
    )
