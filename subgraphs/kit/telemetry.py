"""What a subgraph tells operators: metrics, request ids in logs, traces, error log levels.

- ``instrument(app, name)`` (called by the app factory): ``/metrics``, a middleware
  that takes the router's ``X-Request-ID`` (or makes one) for every log line of the
  request, and — when tracing is on (``deploy.tracing``) — the OpenTelemetry ASGI
  middleware, which continues the router's trace from its ``traceparent``
  (SQL and Redis spans come from the asyncpg and redis instrumentations).
- Events: ``with_trace_context`` stores the writing transaction's trace context in
  an outbox event's payload (``kit.outbox.record_event``), and ``event_arrived``
  (``kit.streams``, for each event reaching a process's hub) measures its lag and,
  when tracing is on, records a ``deliver <event type>`` span linked to that
  context: the checkout's trace leads to the delivery of the event it caused.
- ``OperationTelemetry`` (a schema extension every subgraph gets from
  ``kit.schema``): counts and times operations, and logs the errors a client
  caused (``UNAUTHENTICATED``, ``FORBIDDEN``, ``BAD_USER_INPUT``, validation…)
  once at INFO without a traceback. Unexpected errors are logged once, at ERROR
  with their traceback, by ``kit.errors.MaskUnexpectedErrors``; strawberry's own
  per-error ERROR log (with a traceback even for an expected ``FORBIDDEN``) is off.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import re
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from opentelemetry import propagate, trace
from opentelemetry.util.types import AnyValue
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry.extensions import SchemaExtension

from . import metrics

if TYPE_CHECKING:  # kit.outbox imports this module
    from .outbox import OutboxEvent

log = logging.getLogger("shopgraph.requests")
tracer = trace.get_tracer("shopgraph.subgraphs")
# The key under which an outbox event's payload carries its writer's W3C trace context.
TRACE_KEY = "_traceparent"
# Regular expressions searched in the URL (OpenTelemetry's ExcludeList), comma-separated.
UNTRACED_URLS = "/health$,/ready$,/metrics$"
_VALID_REQUEST_ID = re.compile(r"^[-_.:A-Za-z0-9]{1,128}$")
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("shopgraph_request_id", default=None)


def tracing_enabled() -> bool:
    """An SDK tracer provider is installed (``deploy.tracing``), not the API's default no-op."""
    return not isinstance(trace.get_tracer_provider(), (trace.ProxyTracerProvider, trace.NoOpTracerProvider))


def instrument(app: Starlette, name: str) -> None:
    _install_log_record_ids()

    async def serve_metrics(request: Request) -> Response:
        runtime = getattr(request.app.state, "runtime", None)
        if runtime is not None:
            pool: Any = runtime.db.engine.pool
            metrics.DB_POOL_CHECKED_OUT.labels(name).set(pool.checkedout())
            metrics.DB_POOL_SIZE.labels(name).set(pool.size())
            metrics.DB_POOL_OVERFLOW.labels(name).set(pool.overflow())
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.router.routes.append(Route("/metrics", serve_metrics, methods=["GET"]))
    app.add_middleware(_RequestId)
    if tracing_enabled():
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

        # Probes and scrapes start no trace (several a second per pod would bury the requests).
        app.add_middleware(OpenTelemetryMiddleware, excluded_urls=UNTRACED_URLS, exclude_spans=["receive", "send"])


def count_statements(runtime: Any) -> None:
    """Count ``runtime``'s SQL statements by subgraph (called once its database exists)."""
    child = metrics.SQL_STATEMENTS.labels(runtime.name)
    runtime.db.statements.observers.append(lambda _sql: child.inc())


def current_request_id() -> str | None:
    """The id of the request being served (the router's ``X-Request-ID``), None outside one: logs
    carry it, and query-count tests tell a request's statements from background work's with it."""
    return _request_id.get()


@contextlib.contextmanager
def outgoing_call(target: str, headers: dict[str, str]) -> Iterator[None]:
    """A call to another subgraph (``kit.service_client``): a client span, its context sent as
    ``traceparent`` in ``headers`` (so the callee's request joins this trace), and the request id."""
    request_id = _request_id.get()
    if request_id is not None:
        headers["X-Request-ID"] = request_id
    with tracer.start_as_current_span(
        f"call {target}", kind=trace.SpanKind.CLIENT, attributes={"shopgraph.subgraph": target}
    ):
        propagate.inject(headers)
        yield


class _RequestId:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
        token = _request_id.set(given if _VALID_REQUEST_ID.match(given) else uuid.uuid4().hex)
        try:
            await self.app(scope, receive, send)
        finally:
            _request_id.reset(token)


def _install_log_record_ids() -> None:
    factory = logging.getLogRecordFactory()
    if getattr(factory, "_shopgraph_kit", False):
        return

    def record_with_request_id(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        request_id = _request_id.get()
        if request_id is not None and not hasattr(record, "request_id"):
            record.request_id = request_id
        return record

    record_with_request_id._shopgraph_kit = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(record_with_request_id)


@functools.lru_cache(maxsize=4096)
def _metrics_of(subgraph: str, operation: str, kind: str, outcome: str) -> tuple[Any, Any]:
    """The labelled children of the operation metrics (``labels()`` takes a lock and builds a key each
    call; operation names are bounded by ``metrics.operation_label``)."""
    return (
        metrics.OPERATIONS.labels(subgraph, operation, kind, outcome),
        metrics.OPERATION_SECONDS.labels(subgraph, operation),
    )


class OperationTelemetry(SchemaExtension):
    """Listed first in ``kit.schema``, so it sees results after unexpected errors were masked."""

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        context = self.execution_context
        runtime = getattr(context.context, "runtime", None)
        subgraph = runtime.name if runtime is not None else "unknown"
        operation = metrics.operation_label(context.operation_name)
        try:
            kind = context.operation_type.value
        except RuntimeError:  # the document did not parse
            kind = "unknown"
        errors = context.result.errors if context.result is not None else None
        codes = [(e.extensions or {}).get("code") for e in errors or ()]
        outcome = "internal_error" if "INTERNAL_SERVER_ERROR" in codes else "error" if codes else "ok"
        counted, timed = _metrics_of(subgraph, operation, kind, outcome)
        counted.inc()
        timed.observe(time.perf_counter() - started)
        for error, code in zip(errors or (), codes, strict=True):
            if code != "INTERNAL_SERVER_ERROR":
                log.info(
                    "client error %s: %s",
                    code,
                    error.message,
                    extra={"subgraph": subgraph, "operation": context.operation_name, "code": code, "path": error.path},
                )


def with_trace_context(payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` plus the current trace context, when a sampled span is active."""
    if not trace.get_current_span().get_span_context().trace_flags.sampled:
        return payload
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return {**payload, TRACE_KEY: carrier["traceparent"]} if "traceparent" in carrier else payload


def links_to_writer(payload: dict[str, Any]) -> list[trace.Link]:
    """A link to the span that wrote an event (its payload's trace context), if it has one."""
    traceparent = payload.get(TRACE_KEY)
    if not isinstance(traceparent, str):
        return []
    origin = trace.get_current_span(propagate.extract({"traceparent": traceparent})).get_span_context()
    return [trace.Link(origin)] if origin.is_valid else []


def event_arrived(stream: str, event: OutboxEvent) -> None:
    """An event reached this process's hub (from the stream): lag, count, and a linked span."""
    metrics.observe_arrival(stream, event.created_at)
    if TRACE_KEY not in event.payload or not tracing_enabled():
        return
    links = links_to_writer(event.payload)
    attributes: dict[str, AnyValue] = {
        "shopgraph.event.id": event.id,
        "shopgraph.event.type": event.event_type,
        "shopgraph.stream": stream,
    }
    # A new trace of its own (the hub serves every subscriber), linked to the one that wrote the event.
    with tracer.start_as_current_span(
        f"deliver {event.event_type}",
        context=trace.set_span_in_context(trace.INVALID_SPAN),
        kind=trace.SpanKind.CONSUMER,
        links=links,
        attributes=attributes,
    ):
        pass
