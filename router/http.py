"""Starlette app serving the federated graph: the HTTP and WebSocket transports.

Entry points:

- ``create_app(supergraph_sdl: str, settings: Settings | None = None) -> Starlette``
  builds the ASGI app (settings default to ``Settings.from_env()``; checked first).
- ``serve(config: str | None, supergraph: str | None, host, port) -> None``
  (blocking) loads the YAML configuration, reads the supergraph and runs uvicorn.

Routes: POST/GET ``/graphql`` (GET for queries only; GraphiQL when a browser
asks for HTML; its assets on ``/graphiql/…``, router/graphiql.py), WebSocket
``/graphql`` (graphql-transport-ws, router/ws.py), ``Accept: text/event-stream``
or ``multipart/mixed;subscriptionSpec`` streams (router/streams.py),
``/health`` (alive) and ``/ready`` (supergraph loaded, every subgraph reachable);
the storefront's build on every other path (router/storefront.py).

This module only adapts: bytes become a GraphQLRequest and a Client, the
pipeline does the rest, and its RouterError becomes a response in one place
(:func:`_failure`). Before that, browser protections: CORS (configured origins;
preflights answered) and CSRF prevention as Apollo Router does it — a request a
browser could send without a preflight (no Content-Type or a simple one:
text/plain, form types; GET) is refused unless it carries one of the
configured headers (``apollo-require-preflight``, ``x-apollo-operation-name``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Send
from starlette.websockets import WebSocket

from router import (
    edge_metrics,
    errors,
    graphiql,
    metrics,
    redis_pool,
    session_cookie,
    shopper_address,
    storefront,
    telemetry,
)
from router.auth import Caller, bearer_of
from router.config import ConfigError, Settings, load, not_allowed, subgraph_urls
from router.connection_limits import Limits
from router.entity_cache import response_policy
from router.errors import GRAPHQL_RESPONSE, JSON, RouterError
from router.incremental import accepts_defer, defer_response
from router.pipeline import Pipeline
from router.plan import EXPOSE_PLAN_HEADER, plan_extension
from router.request import Client, GraphQLRequest, bad, from_params, from_query_string
from router.shopper_address import ShopperSigner
from router.streams import respond as stream_response
from router.subscriptions import SSE, SubscriptionService, stream_mode
from router.supergraph import Supergraph
from router.ws import WebSocketApp
from router.ws import serve as serve_websocket
from router.ws_frames import SERVER_OPTIONS

log = logging.getLogger("shopgraph.router")

__all__ = ["ConfigError", "Settings", "Supergraph", "create_app", "serve"]

# What `shopgraph dev` allows cross-origin: pages served from this machine.
LOCALHOST_ORIGINS = r"https?://(localhost|127\.0\.0\.1|\[::1\])(:\d+)?"
# Content types a browser sends cross-origin without a preflight.
_SIMPLE_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"})
# Client headers never propagated, whatever the rules say.
_NEVER_PROPAGATED = frozenset({"authorization", "cookie", "host", "content-length", "content-type", "connection"})


def _address(connection: Request | WebSocket, signer: ShopperSigner | None = None) -> str:
    """Who to count the request against: the connection's address, or the shopper the router's
    own page renderer asks for (router/shopper_address.py)."""
    vouched = connection.headers.get(shopper_address.HEADER)
    if vouched and signer is not None and (shopper := signer.verify(vouched)):
        return shopper
    return connection.client.host if connection.client else "unknown"


def _client(connection: Request | WebSocket, signer: ShopperSigner | None = None) -> Client:
    headers = {k: v for k, v in connection.headers.items() if k not in _NEVER_PROPAGATED}
    return Client(bearer_of(connection.headers), _address(connection, signer), headers)


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


def _respond(body: bytes, status: int, media: str, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status_code=status, media_type=f"{media}; charset=utf-8", headers=headers)


@contextlib.contextmanager
def _nothing() -> Iterator[list[str]]:
    yield []


def _failure(e: RouterError, media: str) -> Response:
    """The one place a refused request becomes an HTTP response."""
    return _respond(errors.body(e), errors.http_status(e, media), media, e.headers)


class GraphQLEndpoint:
    def __init__(
        self, pipeline: Pipeline, subscriptions: SubscriptionService, settings: Settings, signer: ShopperSigner
    ) -> None:
        self.pipeline = pipeline
        self.signer = signer
        self.subscriptions = subscriptions
        self.settings = settings
        self.csrf_headers = tuple(h.lower() for h in settings.csrf_required_headers)

    async def handle(self, request: Request) -> Response:
        stream = stream_mode(request.headers.get("accept", ""))
        media = GRAPHQL_RESPONSE if stream == SSE else _media_type(request) or (JSON if stream else None)
        if self.settings.graphiql and request.method == "GET" and "query" not in request.query_params:
            accept = request.headers.get("accept", "")
            if media is None or ("text/html" in accept and "extensions" not in request.query_params):
                return graphiql.page(request, plan=self.settings.expose_query_plan)
        if media is None:
            e = RouterError.of(f"Not acceptable: use application/json or {GRAPHQL_RESPONSE}", "BAD_REQUEST", 406)
            return _failure(e, JSON)
        try:
            self._csrf(request)
            graphql_request = await self._request(request)
            # The plan and this request's planning and fetch timings (GraphiQL's plan panel): only when
            # configured (query_plan.expose: off by default and in deploy/router.yaml) and asked for.
            expose = self.settings.expose_query_plan and request.headers.get(EXPOSE_PLAN_HEADER) == "true"
            client = _client(request, self.signer)
            cookie_name, cookie_graph = self.settings.session_cookie, self.settings.session_cookie_subgraph
            relayed = cookie_name is not None and cookie_graph is not None and request.method == "POST"
            if relayed:
                cookie = session_cookie.value_in(request.headers.get("cookie"), str(cookie_name))
                client = dataclasses.replace(client, session_cookie=cookie)
            with telemetry.recording_timings(expose) as timings:
                ready = await self.pipeline.prepare(graphql_request, client, streaming=stream is not None)
                if stream is not None:
                    return stream_response(stream, self.subscriptions, ready)
                if (
                    ready.p.plan.deferred
                    and not ready.p.introspection
                    and accepts_defer(request.headers.get("accept", ""))
                ):
                    return defer_response(self.pipeline, ready)
                with (
                    response_policy() as policy,
                    session_cookie.relaying(str(cookie_name), str(cookie_graph)) if relayed else _nothing() as cookies,
                ):
                    body = await self.pipeline.execute(ready)
            if expose:
                body.setdefault("extensions", {}).update(plan_extension(ready.p.plan) | timings.extension())
            headers = None
            # A CDN can only key GET URLs and persisted queries: only they say what may be cached.
            if request.method == "GET" or "persistedQuery" in (graphql_request.extensions or {}):
                cacheable = policy() if ready.p.op.kind == "query" and not body.get("errors") else None
                headers = {"cache-control": cacheable.header if cacheable is not None else "no-store"}
            response = _respond(orjson.dumps(body), 200, media, headers)
            for set_cookie in cookies:
                response.headers.append("set-cookie", set_cookie)
            return response
        except RouterError as e:
            return _failure(e, media)
        except ClientDisconnect:  # gone while sending its body: nobody to answer, nothing went wrong here
            log.info("client disconnected before its request body arrived")
            return Response(status_code=499)
        except Exception:  # never leak a stack trace to clients
            log.exception("unexpected error while serving a GraphQL request")
            return _failure(RouterError.of("Internal server error", "INTERNAL_SERVER_ERROR", 500), media)

    def _csrf(self, request: Request) -> None:
        if not self.settings.csrf:
            return
        ctype = request.headers.get("content-type")
        if ctype is not None and ctype.split(";")[0].strip().lower() not in _SIMPLE_TYPES:
            return  # a browser preflights this
        if any(h in request.headers for h in self.csrf_headers):
            return
        raise RouterError.of(
            "This operation has been blocked as a potential Cross-Site Request Forgery (CSRF). Please either "
            "specify a 'content-type' header (with a mime-type that is not one of "
            "application/x-www-form-urlencoded, multipart/form-data, text/plain) or provide one of the following "
            f"headers: {', '.join(self.csrf_headers)}",
            "CSRF_PREVENTION",
        )

    async def _request(self, request: Request) -> GraphQLRequest:
        if request.method == "GET":
            return from_query_string(request.query_params)
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        limit = self.settings.max_body_bytes
        length = request.headers.get("content-length")
        too_large = RouterError.of(f"Request body exceeds {limit} bytes.", "PAYLOAD_TOO_LARGE", 413)
        if length and length.isdigit() and int(length) > limit:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
        body = b"".join(chunks)
        if ctype == "application/graphql":
            return from_params({"query": body.decode("utf-8", "replace")})
        if ctype not in (JSON, GRAPHQL_RESPONSE, ""):
            raise RouterError.of(
                f"Unsupported content type {ctype!r}; send application/json.", "UNSUPPORTED_MEDIA_TYPE", 415
            )
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise bad("The request body is not valid JSON.") from e
        return from_params(parsed)


class _AdminServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the public server handles signals and stops this one


async def _elsewhere(_: Request) -> Response:
    return PlainTextResponse("Not found", status_code=404)


async def _start_admin(listen: str) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    """The admin listener (``admin.listen``): ``/metrics``, off the public port."""
    host, _, port = listen.rpartition(":")
    app = Starlette(routes=telemetry.metrics_routes())
    server = _AdminServer(
        uvicorn.Config(app, host=host.strip("[]"), port=int(port), log_config=None, access_log=False, lifespan="off")
    )
    task = asyncio.create_task(server.serve(), name="admin-listener")
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError(f"admin.listen: cannot listen on {listen}")
        await asyncio.sleep(0.01)
    log.info("metrics served on http://%s/metrics", listen)
    return server, task


def _origin_allowed(settings: Settings, origin: str, host: str | None) -> bool:
    """May a browser page from ``origin`` open a WebSocket here (cross-site WebSocket hijacking)?"""
    if origin in settings.cors_origins:
        return True
    if settings.cors_origin_regex and re.fullmatch(settings.cors_origin_regex, origin):
        return True
    return host is not None and origin.split("://", 1)[-1] == host


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


async def _read_source(source: str, client: httpx.AsyncClient) -> str:
    if _is_url(source):
        r = await client.get(source, timeout=10.0)
        r.raise_for_status()
        return r.text
    return await asyncio.to_thread(Path(source).read_text, encoding="utf-8")


def _urls_of(sdl: str, settings: Settings) -> dict[str, str]:
    return subgraph_urls(Supergraph(sdl), settings)


async def _watch(
    pipeline: Pipeline,
    subscriptions: SubscriptionService,
    source: str,
    client: httpx.AsyncClient,
    every: float,
    allowed: tuple[str, ...],
) -> None:
    """Hot reload: a changed supergraph (file or URL) is loaded and swapped in atomically, if
    every subgraph URL it names is allowed (``allowed``: URL prefixes): a supergraph pointing a
    subgraph elsewhere would send that address the callers' identities."""
    failed: str | None = None  # a text that did not load: not retried until it changes
    while True:
        await asyncio.sleep(every)
        try:
            sdl = await _read_source(source, client)
        except (OSError, httpx.HTTPError):
            continue  # being replaced, or the URL is down: keep the current one
        if sdl in (pipeline.schema.sdl, failed):
            continue
        try:
            outside = not_allowed(await asyncio.to_thread(_urls_of, sdl, pipeline.settings), allowed)
            if outside:
                failed = sdl
                edge_metrics.SUPERGRAPH_RELOADS.labels("refused").inc()
                log.error(
                    "supergraph from %s refused: subgraph URLs outside subgraphs.allowed_urls (%s); "
                    "still serving the previous one",
                    source,
                    ", ".join(outside),
                )
                continue
            await pipeline.reload(sdl)
        except Exception:
            failed = sdl
            edge_metrics.SUPERGRAPH_RELOADS.labels("invalid").inc()
            log.exception("supergraph from %s not loaded; still serving the previous one", source)
            continue
        edge_metrics.SUPERGRAPH_RELOADS.labels("loaded").inc()
        subscriptions.pool.urls = pipeline.schema.urls  # new subscriptions go to the new URLs
        log.warning("supergraph reloaded from %s", source)


async def _reachable(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> bool:
    try:
        r = await client.post(url, content=b'{"query":"{__typename}"}', headers=headers, timeout=2.0)
    except httpx.HTTPError:
        return False
    return r.status_code < 500


def create_app(supergraph_sdl: str, settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    settings.check()
    redis = (
        redis_pool.connect(settings.redis_url, settings.redis_max_connections, settings.redis_pool_wait)
        if settings.redis_url
        else None
    )
    pipeline = Pipeline(supergraph_sdl, settings, redis)
    settings.check_subgraphs(pipeline.schema.supergraph)
    subscriptions = SubscriptionService(pipeline, settings)
    signer = ShopperSigner(settings.service_secret)
    endpoint = GraphQLEndpoint(pipeline, subscriptions, settings, signer)
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        limits = httpx.Limits(max_connections=512, max_keepalive_connections=256, keepalive_expiry=30)
        async with httpx.AsyncClient(limits=limits, http2=False, trust_env=False) as client:
            pipeline.bind(client)
            await pipeline.ready()  # a document worker has loaded the supergraph before the first request
            state["client"] = client
            watcher = None
            source, every = settings.supergraph_path, settings.supergraph_poll
            if source and every > 0:
                # Without an allow-list, a reload may not send requests anywhere the router did not start with.
                allowed = settings.allowed_subgraph_urls or tuple(pipeline.schema.urls.values())
                watcher = asyncio.create_task(_watch(pipeline, subscriptions, source, client, every, allowed))
            admin = await _start_admin(settings.admin_listen) if settings.admin_listen else None
            follower = None
            if pipeline.entity_cache is not None:
                streams = {f"{settings.redis_prefix}{name}:events": name for name in settings.entity_cache_streams}
                follower = asyncio.create_task(pipeline.entity_cache.follow(streams), name="entity-cache-events")
            try:
                yield
            finally:
                if watcher is not None:
                    watcher.cancel()
                if follower is not None:
                    follower.cancel()
                if admin is not None:
                    admin[0].should_exit = True
                    await admin[1]
                pipeline.close()
                await subscriptions.close()
                if redis is not None:
                    await redis.aclose()

    async def websocket(ws: WebSocket, send: Send) -> None:
        origin = ws.headers.get("origin")
        if origin is not None and not _origin_allowed(settings, origin, ws.headers.get("host")):
            await ws.close(1008)  # a page from another site: refused before the handshake completes
            return
        try:
            client = _client(ws)
        except RouterError:
            client = Client(None, _address(ws))  # connection_init carries the token instead
        await serve_websocket(ws, send, subscriptions, client)

    async def health(_: Request) -> Response:
        return _respond(orjson.dumps({"status": "ok"}), 200, JSON)

    async def ready(_: Request) -> Response:
        schema = pipeline.schema
        client: httpx.AsyncClient = state["client"]
        headers = pipeline.auth.headers(Caller())
        names = [schema.names.get(g, g) for g in schema.urls]
        ok = await asyncio.gather(*(_reachable(client, url, headers[g]) for g, url in schema.urls.items()))
        status = {n: "ok" if up else "unreachable" for n, up in zip(names, ok, strict=True)}
        body = {"status": "ready" if all(ok) else "unavailable", "subgraphs": status}
        return _respond(orjson.dumps(body), 200 if all(ok) else 503, JSON)

    middleware = [
        Middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_origin_regex=settings.cors_origin_regex,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=list(settings.cors_allow_headers),
            allow_credentials=settings.cors_allow_credentials,
            max_age=settings.cors_max_age,
        )
    ]
    app = Starlette(
        routes=[
            Route("/graphql", endpoint.handle, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", WebSocketApp(websocket)),
            Route("/health", health, methods=["GET"]),
            Route("/ready", ready, methods=["GET"]),
            *graphiql.routes(settings.graphiql),
            # /metrics on the admin listener: here a 404, not the storefront's page for an unknown path
            *([Route("/metrics", _elsewhere, methods=["GET", "HEAD"])] if settings.admin_listen else []),
            # last: its page route takes every remaining path
            *storefront.routes(
                settings.storefront_img_src,
                script_src=settings.storefront_script_src,
                frame_src=settings.storefront_frame_src,
                connect_src=settings.storefront_connect_src,
                signer=signer,
            ),
        ],
        middleware=middleware,
        lifespan=lifespan,
    )
    app.state.pipeline = pipeline
    app.state.connection_limits = Limits(settings.max_connections_per_address, settings.header_timeout)
    app.state.subscriptions = subscriptions
    if settings.manifest_path:  # operation names as metric labels: the manifest's only
        ops = orjson.loads(Path(settings.manifest_path).read_bytes()).get("operations", [])
        metrics.only_operations(frozenset(str(op["name"]) for op in ops if op.get("name")))
    # access log, /metrics (on the admin listener when there is one), traces (router/telemetry.py)
    telemetry.instrument(app, public_metrics=settings.admin_listen is None)
    return app


def serve(config: str | None, supergraph: str | None, host: str = "127.0.0.1", port: int = 4000) -> None:
    """Run the router (blocking): settings from ``config`` (YAML) and the environment."""

    settings = load(config)
    if supergraph is not None:
        settings = dataclasses.replace(settings, supergraph_path=supergraph)
    if not settings.supergraph_path:
        raise ConfigError("no supergraph: pass --supergraph or set supergraph.path in the configuration")
    settings.check()
    source = settings.supergraph_path
    try:
        sdl = (
            httpx.get(source, timeout=10.0).raise_for_status().text
            if _is_url(source)
            else Path(source).read_text(encoding="utf-8")
        )
    except (OSError, httpx.HTTPError) as e:
        raise ConfigError(f"supergraph.path: cannot read {source}: {e}") from e
    app = create_app(sdl, settings)
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
        **proxy_options(settings.trusted_proxies),
        **SERVER_OPTIONS,
    )


def proxy_options(trusted: tuple[str, ...]) -> dict[str, Any]:
    """uvicorn's proxy settings: X-Forwarded-* believed from ``trusted`` only (uvicorn's own
    default believes 127.0.0.1, so any local client could pick the address it is counted by)."""
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": list(trusted) or None}
