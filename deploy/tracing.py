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
"""

from __future__ import annotations

import atexit
import os


def tracing_configured() -> bool:
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def setup_tracing(service_name: str) -> bool:
    """Install the tracer provider and the library instrumentations; False when tracing is off."""
    if not tracing_configured():
        return False
    # Imported only when tracing is on: the SDK and exporter cost ~0.3 s of every start-up.
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or service_name})
    provider = TracerProvider(resource=resource)  # the sampler comes from OTEL_TRACES_SAMPLER(_ARG)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    atexit.register(provider.shutdown)  # flush what is still batched
    AsyncPGInstrumentor().instrument()  # type: ignore[no-untyped-call]
    RedisInstrumentor().instrument()
    return True
