"""OpenTelemetry for a Shopgraph process: off unless an OTLP endpoint is configured.

Configured by the standard variables only: ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) turns tracing on and says where spans go
(OTLP over HTTP/protobuf, batched); ``OTEL_TRACES_SAMPLER`` /
``OTEL_TRACES_SAMPLER_ARG`` choose the sampling (e.g. ``parentbased_traceidratio``
and ``0.1``: a tenth of new traces, and whatever the caller decided for the
rest); ``OTEL_SERVICE_NAME`` overrides the service name (``shopgraph-router``,
``shopgraph-<subgraph>``, ``shopgraph-relay``); ``OTEL_SDK_DISABLED=true`` turns it
off. With tracing on, asyncpg and redis calls become spans too, and the router
and subgraph apps add their ASGI middleware (``router.telemetry``,
``subgraphs.kit.telemetry``). Call ``setup_tracing`` before building the app.

Every process samples through :class:`QuietRoots`: a span with no parent that is a
plain client call (SQL, Redis, a subgraph fetch outside any request: a relay's poll,
a consumer's blocking read, a sweeper's pass) starts no trace; requests, event
deliveries and consumers still do. The apps leave ``/health``, ``/ready`` and
``/metrics`` untraced (``UNTRACED_URLS`` in ``router.telemetry`` and ``kit.telemetry``).
``shopgraph dev`` runs the router and the four subgraphs in one process:
``setup_tracing(..., per_service=True)`` gives each its own ``service.name``
(:func:`as_service` wraps each app), so Jaeger shows the same services as in
production.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import os
from collections.abc import Iterator, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes
from starlette.types import ASGIApp, Receive, Scope, Send

# The service the code running now belongs to (``as_service``), in a process serving several.
_service: contextvars.ContextVar[str | None] = contextvars.ContextVar("shopgraph_trace_service", default=None)


def tracing_configured() -> bool:
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def trust_client_sampling() -> bool:
    """``SHOPGRAPH_TRUST_CLIENT_SAMPLING``: does the router follow a client's ``traceparent``
    sampled flag? Off by default: a client forcing every request into the exporter costs the
    collector and the router (issue 18, finding 18); the trace id is kept either way."""
    return os.environ.get("SHOPGRAPH_TRUST_CLIENT_SAMPLING", "").strip().lower() in ("1", "true", "yes", "on")


def edge_sampler() -> Any:
    """The configured sampler's own decision for every trace, whatever a remote parent says:
    ``OTEL_TRACES_SAMPLER_ARG`` (a ratio, default 1) on the trace id, for root spans and remote
    parents alike; a local parent's decision is kept (spans of one request agree)."""
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    try:
        ratio = float(os.environ.get("OTEL_TRACES_SAMPLER_ARG") or 1.0)
    except ValueError:
        ratio = 1.0
    own = TraceIdRatioBased(min(max(ratio, 0.0), 1.0))
    return ParentBased(root=own, remote_parent_sampled=own, remote_parent_not_sampled=own)


def quiet_roots(inner: Any) -> Any:
    """``inner`` (a sampler), except that a client span without a parent is dropped."""
    from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult

    class QuietRoots(Sampler):
        """No trace starts at a bare SQL/Redis/HTTP client call: background loops poll all the time
        (a relay's ``SELECT … FOR UPDATE SKIP LOCKED``, a hub's ``XREAD``), and each poll was a
        trace of its own (~80 a minute in an idle ``dev``). Their work for a request or an event
        keeps its parent and is sampled as that parent was."""

        def should_sample(
            self,
            parent_context: Context | None,
            trace_id: int,
            name: str,
            kind: SpanKind | None = None,
            attributes: Attributes = None,
            links: Sequence[Link] | None = None,
            trace_state: Any = None,
        ) -> SamplingResult:
            parent = trace.get_current_span(parent_context).get_span_context()
            if not parent.is_valid and kind == SpanKind.CLIENT:
                return SamplingResult(Decision.DROP)
            decided: SamplingResult = inner.should_sample(
                parent_context, trace_id, name, kind, attributes, links, trace_state
            )
            return decided

        def get_description(self) -> str:
            return f"QuietRoots{{{inner.get_description()}}}"

    return QuietRoots()


def as_service(app: ASGIApp, service_name: str) -> ASGIApp:
    """``app`` with its spans (and those of its lifespan's background tasks) under ``service_name``,
    in a process whose tracer provider is per service (``setup_tracing(per_service=True)``)."""

    async def with_service(scope: Scope, receive: Receive, send: Send) -> None:
        token = _service.set(service_name)
        try:
            await app(scope, receive, send)
        finally:
            _service.reset(token)

    return with_service


@contextlib.contextmanager
def service(service_name: str) -> Iterator[None]:
    """What starts inside (tasks too) traces as ``service_name`` (see :func:`as_service`)."""
    token = _service.set(service_name)
    try:
        yield
    finally:
        _service.reset(token)


def _provider(service_name: str, sampler: Any) -> Any:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}), sampler=sampler)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    atexit.register(provider.shutdown)  # flush what is still batched
    return provider


class _PerService(trace.TracerProvider):
    """Tracers whose spans go to the provider of the service running now (``as_service``), one
    ``service.name`` (resource) each; outside any service, to ``default``'s. Used by ``dev``."""

    def __init__(self, default: str, sampler: Any) -> None:
        self._default = default
        self._sampler = sampler
        self._providers: dict[str, Any] = {}

    def provider(self) -> Any:
        name = _service.get() or self._default
        found = self._providers.get(name)
        if found is None:
            found = self._providers[name] = _provider(name, self._sampler)
        return found

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes = None,
    ) -> trace.Tracer:
        return _ServiceTracer(self, (instrumenting_module_name, instrumenting_library_version, schema_url, attributes))

    def shutdown(self) -> None:
        for provider in self._providers.values():
            provider.shutdown()


class _ServiceTracer(trace.Tracer):
    def __init__(self, owner: _PerService, args: tuple[Any, ...]) -> None:
        self._owner = owner
        self._args = args
        self._tracers: dict[int, trace.Tracer] = {}

    def _tracer(self) -> trace.Tracer:
        provider = self._owner.provider()
        found = self._tracers.get(id(provider))
        if found is None:
            found = self._tracers[id(provider)] = provider.get_tracer(*self._args)
        return found

    def start_span(self, *args: Any, **kwargs: Any) -> trace.Span:
        return self._tracer().start_span(*args, **kwargs)

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        return self._tracer().start_as_current_span(*args, **kwargs)


def setup_tracing(service_name: str, *, edge: bool = False, per_service: bool = False) -> bool:
    """Install the tracer provider and the library instrumentations; False when tracing is off.

    ``edge``: this process takes requests from clients (the router): their ``traceparent``
    sampled flag is not followed unless ``SHOPGRAPH_TRUST_CLIENT_SAMPLING`` says so.
    ``per_service``: the process serves several services (``dev``), each app wrapped in
    :func:`as_service`; ``service_name`` names what runs outside them."""
    if not tracing_configured():
        return False
    # Imported only when tracing is on: the SDK and exporter cost ~0.3 s of every start-up.
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.trace.sampling import _get_from_env_or_default

    # The configured sampler (OTEL_TRACES_SAMPLER(_ARG)), or the edge's own decision.
    sampler = quiet_roots(edge_sampler() if edge and not trust_client_sampling() else _get_from_env_or_default())
    name = os.environ.get("OTEL_SERVICE_NAME") or service_name
    provider: trace.TracerProvider = _PerService(name, sampler) if per_service else _provider(name, sampler)
    trace.set_tracer_provider(provider)
    AsyncPGInstrumentor().instrument()  # type: ignore[no-untyped-call]
    RedisInstrumentor().instrument()
    return True
