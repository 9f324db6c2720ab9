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

import contextvars
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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


def instrument(app: Starlette) -> None:
    _install_log_record_ids()
    metrics.OPEN_SUBSCRIPTIONS.set_function(lambda: float(app.state.subscriptions.active))
    # First: the storefront's page route (router/storefront.py) takes every path left over.
    app.router.routes.insert(0, Route("/metrics", _metrics, methods=["GET"]))
    app.add_middleware(_AccessLog)
    if tracing_enabled():
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

        # Added last, so it runs first: the access log line carries the request's trace id.
        app.add_middleware(OpenTelemetryMiddleware, exclude_spans=["receive", "send"])


async def _metrics(_: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


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
            _current.reset(token)
            seconds = time.perf_counter() - started
            graphql = exchange.operation is not None or exchange.outcome is not None
            if graphql:
                operation = metrics.operation_label(exchange.operation)
                outcome = exchange.outcome or _outcome_of(status)
                metrics.REQUESTS.labels(operation, exchange.kind, outcome).inc()
                if status != 200 or "text/event-stream" not in _header(scope, b"accept"):
                    metrics.REQUEST_SECONDS.labels(operation, exchange.kind).observe(seconds)
            access_log.info(
                "%s %s %d %.1fms",
                scope["method"],
                scope["path"],
                status,
                seconds * 1000,
                extra={
                    "request_id": exchange.request_id,
                    "http_method": scope["method"],
                    "http_path": scope["path"],
                    "http_status": status,
                    "duration_ms": round(seconds * 1000, 2),
                    "client": scope["client"][0] if scope.get("client") else None,
                    "operation": exchange.operation,
                    "operation_kind": exchange.kind if graphql else None,
                    "outcome": (exchange.outcome or _outcome_of(status)) if graphql else None,
                },
            )


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


@contextmanager
def planning(operation_name: str | None) -> Iterator[None]:
    """A plan-cache miss: counted, and a ``plan`` span when tracing."""
    metrics.PLANS.inc()
    with tracer.start_as_current_span("plan", attributes={"graphql.operation.name": operation_name or ""}):
        yield


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
    with tracer.start_as_current_span(
        f"fetch {subgraph}", kind=trace.SpanKind.CLIENT, attributes={"shopgraph.subgraph": subgraph, "url.full": url}
    ) as span:
        propagate.inject(headers)
        try:
            result = await post(headers)
        except SubgraphTimeout:
            metrics.FETCH_ERRORS.labels(subgraph, "timeout").inc()
            raise
        except Exception:
            metrics.FETCH_ERRORS.labels(subgraph, "connection").inc()
            raise
        finally:
            metrics.FETCH_SECONDS.labels(subgraph).observe(time.perf_counter() - started)
        span.set_attribute("http.response.status_code", result[0])
        if result[0] >= 400:
            metrics.FETCH_ERRORS.labels(subgraph, "http_status").inc()
    return result


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
