"""What the router tells operators: access log, Prometheus metrics, OpenTelemetry traces.

``instrument(app)`` is called once by ``router.http.create_app``. It adds:

- ``/metrics`` (Prometheus text format, ``router.metrics``), and ``/ready`` unless the app
  has its own (503 until the lifespan has bound the subgraph client);
- an ASGI middleware that gives every request an id (``X-Request-ID`` from the
  client when it looks like one, else a new one; echoed in the response and
  forwarded to subgraphs), times it, counts it by operation name and outcome,
  and writes one access-log line (logger ``shopgraph.router.access``, INFO);
- when tracing is on (``deploy.tracing`` installed an SDK tracer provider because
  ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set), the OpenTelemetry ASGI middleware (one
  server span per request, parent taken from a client's ``traceparent``), a
  ``plan`` span on plan-cache misses and a client span per subgraph request whose
  context goes to the subgraph as W3C ``traceparent``.

The request path reports to it explicitly: the pipeline names the operation and
its outcome (:func:`note_operation`, :func:`note_outcome`) and plans inside
:func:`planning`; the executor sends each subgraph request through
:func:`observed_fetch`. Without a request in flight (tests calling the pipeline
directly) those calls only count.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from opentelemetry import propagate, trace
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from router import metrics
from router.subgraph_client import SubgraphTimeout

access_log = logging.getLogger("shopgraph.router.access")
tracer = trace.get_tracer("shopgraph.router")

REQUEST_ID_HEADER = "x-request-id"
# Probes and scrapes: several a second per pod, nothing an operator reads the access log for.
_UNLOGGED = frozenset({"/health", "/ready", "/metrics"})
# Regular expressions searched in the URL (OpenTelemetry's ExcludeList), comma-separated.
UNTRACED_URLS = "/health$,/ready$,/metrics$"
_VALID_REQUEST_ID = re.compile(r"^[-_.:A-Za-z0-9]{1,128}$")


@dataclass
class _Exchange:
    """What the request path learned about the request in flight (for its log line and metrics)."""

    request_id: str
    operation: str | None = None
    kind: str = "unknown"
    outcome: str | None = None


_current: contextvars.ContextVar[_Exchange | None] = contextvars.ContextVar("shopgraph_router_exchange", default=None)


def tracing_enabled() -> bool:
    """An SDK tracer provider is installed (``deploy.tracing``), not the API's default no-op."""
    return not isinstance(trace.get_tracer_provider(), (trace.ProxyTracerProvider, trace.NoOpTracerProvider))


def current_request_id() -> str | None:
    exchange = _current.get()
    return exchange.request_id if exchange else None


def instrument(app: Starlette, *, public_metrics: bool = True) -> None:
    """``public_metrics``: ``/metrics`` on the app itself (False: an admin listener serves it)."""
    _install_log_record_ids()
    metrics.OPEN_SUBSCRIPTIONS.set_function(lambda: float(app.state.subscriptions.active))
    if public_metrics:
        # First: the storefront's page route (router/storefront.py) takes every path left over.
        app.router.routes.insert(0, Route("/metrics", _metrics, methods=["GET"]))
    app.add_middleware(_AccessLog)
    if tracing_enabled():
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

        # Added last, so it runs first: the access log line carries the request's trace id. Probes and
        # scrapes start no trace (several a second per pod would bury the requests).
        app.add_middleware(OpenTelemetryMiddleware, excluded_urls=UNTRACED_URLS, exclude_spans=["receive", "send"])


async def _metrics(_: Request) -> Response:
    # Rendered off the event loop: a scrape of a large registry must not hold every request up.
    return Response(await asyncio.to_thread(generate_latest), media_type=CONTENT_TYPE_LATEST)


def metrics_routes() -> list[Route]:
    """The routes of the admin listener (``admin.listen``): ``/metrics``."""
    return [Route("/metrics", _metrics, methods=["GET"])]


class _AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _UNLOGGED:
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
        exchange = _Exchange(given if _VALID_REQUEST_ID.match(given) else uuid.uuid4().hex)
        token = _current.set(exchange)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", exchange.request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            try:
                self._log(scope, exchange, status, started)
            finally:
                # After the line is written: the record factory gives it this request's id. (Reset first,
                # the id of a request whose context leaked into this one — uvicorn creates the next
                # request's task on a keep-alive connection from the previous one's context after a
                # large body — was added to the record and the ``extra`` id raised KeyError: line lost.)
                _current.reset(token)

    @staticmethod
    def _log(scope: Scope, exchange: _Exchange, status: int, started: float) -> None:
        seconds = time.perf_counter() - started
        graphql = exchange.operation is not None or exchange.outcome is not None
        if graphql:
            operation = metrics.operation_label(exchange.operation)
            outcome = exchange.outcome or _outcome_of(status)
            metrics.REQUESTS.labels(operation, exchange.kind, outcome).inc()
            if status != 200 or "text/event-stream" not in _header(scope, b"accept"):
                metrics.REQUEST_SECONDS.labels(operation, exchange.kind).observe(seconds)
        path = _printable_path(scope)
        access_log.info(
            "%s %s %d %.1fms",
            scope["method"],
            path,
            status,
            seconds * 1000,
            extra={
                "http_method": scope["method"],
                "http_path": path,
                "http_status": status,
                "duration_ms": round(seconds * 1000, 2),
                "client": scope["client"][0] if scope.get("client") else None,
                "operation": exchange.operation,
                "operation_kind": exchange.kind if graphql else None,
                "outcome": (exchange.outcome or _outcome_of(status)) if graphql else None,
            },
        )


def _printable_path(scope: Scope) -> str:
    """The path as the client sent it (still percent-encoded: a ``%0A`` stays ``%0A`` and cannot
    start a forged line in a text log); control characters escaped in any case."""
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else str(scope["path"])
    return path if path.isprintable() else path.encode("unicode_escape").decode("ascii")


def _header(scope: Scope, name: bytes) -> str:
    return next((v.decode("latin-1") for k, v in scope["headers"] if k == name), "")


def _outcome_of(status: int) -> str:
    if status == 401:
        return "unauthenticated"
    if status >= 500:
        return "internal_error"
    if status >= 400:
        return "request_error"
    return "ok"


# -- what the request path reports -------------------------------------------------------


def note_operation(name: str | None, kind: str) -> None:
    """The request in flight runs this operation (for its log line and metrics)."""
    exchange = _current.get()
    if exchange is not None:
        exchange.operation, exchange.kind = name, kind


def note_outcome(outcome: str) -> None:
    """ok, graphql_error, request_error or unauthenticated."""
    exchange = _current.get()
    if exchange is not None:
        exchange.outcome = outcome


def note_authorization(refused: list[str], by_directive: Counter[str], rejected: bool) -> None:
    """Fields the authorization directives refused (their coordinates): counted by directive,
    and named on the request's span."""
    action = "rejected" if rejected else "null"
    for directive, n in by_directive.items():
        metrics.AUTHZ_REFUSALS.labels(directive, action).inc(n)
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute("shopgraph.authorization.refused", sorted(set(refused)))
        span.set_attribute("shopgraph.authorization.directives", sorted(by_directive))
        span.set_attribute("shopgraph.authorization.action", action)


@contextmanager
def planning(operation_name: str | None) -> Iterator[None]:
    """A plan-cache miss: counted, and a ``plan`` span when tracing."""
    metrics.PLANS.inc()
    started = time.perf_counter()
    try:
        with tracer.start_as_current_span("plan", attributes={"graphql.operation.name": operation_name or ""}):
            yield
    finally:
        seconds = time.perf_counter() - started
        metrics.PLAN_SECONDS.observe(seconds)
        timings = _timings.get()
        if timings is not None:
            timings.planning_ms = round(seconds * 1000, 3)


# (status, reason, body, ...): what the subgraph client answers
Answer = TypeVar("Answer", bound=tuple[Any, ...])


async def observed_fetch(
    subgraph: str,
    url: str,
    headers: dict[str, str],
    post: Callable[[dict[str, str]], Awaitable[Answer]],
) -> Answer:
    """One subgraph request: timed and counted by subgraph, a client span whose context goes
    along as ``traceparent``, and the request id as ``X-Request-ID``."""
    headers = dict(headers)
    request_id = current_request_id()
    if request_id is not None:
        headers[REQUEST_ID_HEADER] = request_id
    started = time.perf_counter()
    outcome: int | str = "connection"
    with tracer.start_as_current_span(
        f"fetch {subgraph}", kind=trace.SpanKind.CLIENT, attributes={"shopgraph.subgraph": subgraph, "url.full": url}
    ) as span:
        propagate.inject(headers)
        try:
            result = await post(headers)
            outcome = result[0]
        except SubgraphTimeout:
            outcome = "timeout"
            metrics.FETCH_ERRORS.labels(subgraph, "timeout").inc()
            raise
        except Exception:
            metrics.FETCH_ERRORS.labels(subgraph, "connection").inc()
            raise
        finally:
            ended = time.perf_counter()
            metrics.FETCH_SECONDS.labels(subgraph).observe(ended - started)
            timings = _timings.get()
            if timings is not None:
                timings.fetches.append(
                    {
                        "service": subgraph,
                        "startMs": timings.since(started),
                        "durationMs": round((ended - started) * 1000, 3),
                        "status": outcome,
                    }
                )
        span.set_attribute("http.response.status_code", result[0])
        if result[0] >= 400:
            metrics.FETCH_ERRORS.labels(subgraph, "http_status").inc()
    return result


# -- a request's own timings, for GraphiQL's plan panel ------------------------------------------

# The key of the response extension (beside ``apolloQueryPlan``) holding them.
TIMINGS_EXTENSION = "shopgraphTimings"


@dataclass
class _Timings:
    """What one request's fetches, cache lookups and planning took (``recording_timings``)."""

    started: float = field(default_factory=time.perf_counter)
    planning_ms: float | None = None
    fetches: list[dict[str, Any]] = field(default_factory=list)
    cache: list[dict[str, Any]] = field(default_factory=list)

    def since(self, moment: float) -> float:
        return round((moment - self.started) * 1000, 3)

    def extension(self) -> dict[str, Any]:
        return {
            TIMINGS_EXTENSION: {
                "totalMs": self.since(time.perf_counter()),
                "planningMs": self.planning_ms,
                "fetches": sorted(self.fetches, key=lambda f: f["startMs"]),
                "entityCache": self.cache,
            }
        }


_timings: contextvars.ContextVar[_Timings | None] = contextvars.ContextVar("shopgraph_router_timings", default=None)


@contextmanager
def recording_timings(enabled: bool = True) -> Iterator[_Timings]:
    """Record the request's per-fetch timings, cache lookups and planning time while the block runs
    (the router adds them to the response for GraphiQL when ``query_plan.expose`` is on and the
    client asks with ``Apollo-Expose-Query-Plan: true``). Tasks started inside share the record.
    Not ``enabled``: nothing is recorded (the record stays empty)."""
    timings = _Timings()
    if not enabled:
        yield timings
        return
    token = _timings.set(timings)
    try:
        yield timings
    finally:
        _timings.reset(token)


def note_cache_lookup(subgraph: str, hits: int, misses: int, bypassed: bool = False) -> None:
    """An entity-cache lookup: counted, and recorded for the request's timings."""
    if bypassed:
        metrics.ENTITY_CACHE.labels(subgraph, "bypassed").inc(misses)
    else:
        metrics.ENTITY_CACHE.labels(subgraph, "hit").inc(hits)
        metrics.ENTITY_CACHE.labels(subgraph, "miss").inc(misses)
    timings = _timings.get()
    if timings is not None:
        timings.cache.append({"service": subgraph, "hits": hits, "misses": misses, "bypassed": bypassed})


# -- log lines carry the request id ---------------------------------------------------------


def _install_log_record_ids() -> None:
    factory = logging.getLogRecordFactory()
    if getattr(factory, "_shopgraph_router", False):
        return

    def record_with_request_id(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        exchange = _current.get()
        if exchange is not None and not hasattr(record, "request_id"):
            record.request_id = exchange.request_id
        return record

    record_with_request_id._shopgraph_router = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(record_with_request_id)
