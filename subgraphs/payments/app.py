"""ASGI app of the payments subgraph: GraphQL, the providers' webhooks, the test provider's pages."""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.websockets import WebSocket

from subgraphs.kit.app import create_app as create_subgraph_app
from subgraphs.kit.auth import Identity
from subgraphs.kit.config import Settings
from subgraphs.kit.context import RequestContext, Runtime

from .config import PaymentsSettings
from .events import payments_runtime
from .metrics import WEBHOOKS
from .providers import InvalidWebhook
from .providers.test import TestProvider
from .schema import schema
from .service import Payments
from .types import PaymentsContext

log = logging.getLogger("shopgraph.payments")

MAX_WEBHOOK_BYTES = 256 * 1024


def make_context(runtime: Runtime, identity: Identity, request: Request | WebSocket) -> RequestContext:
    return PaymentsContext(runtime=runtime, identity=identity, request=request)


def _service(request: Request) -> Payments:
    runtime: Runtime = request.app.state.runtime
    return runtime.get(Payments)


async def webhook(request: Request) -> Response:
    """``POST /webhooks/{provider}``: verified by the provider, applied once per event id."""
    service = _service(request)
    name = request.path_params["provider"]
    if name != service.provider.name:
        return JSONResponse({"error": f"this service uses the {service.provider.name} provider"}, 404)
    body = await request.body()
    if len(body) > MAX_WEBHOOK_BYTES:
        WEBHOOKS.labels(name, "invalid").inc()
        return JSONResponse({"error": "payload too large"}, 413)
    try:
        result = await service.webhook(body, request.headers)
    except InvalidWebhook as exc:
        WEBHOOKS.labels(name, "invalid").inc()
        log.warning("refused a %s webhook: %s", name, exc)
        return JSONResponse({"error": f"invalid webhook: {exc}"}, 400)
    if result == "unknown":
        return JSONResponse({"result": result}, 404)  # the provider retries: the intent may not be recorded yet
    return JSONResponse({"result": result})


async def test_pages(request: Request) -> Response:
    """The test provider's card and 3-D Secure pages (404 unless it is this app's provider)."""
    provider = _service(request).provider
    if not isinstance(provider, TestProvider):
        return JSONResponse({"error": "the test provider is not in use"}, 404)
    if request.url.path.endswith("/3ds"):
        return await provider.challenge_page(request)
    return await provider.card_page(request)


def create_app(settings: Settings) -> Starlette:
    config = PaymentsSettings.from_env(settings)
    return create_subgraph_app(
        name="payments",
        schema=schema,
        settings=settings,
        make_context=make_context,
        routes=[
            Route("/webhooks/{provider}", webhook, methods=["POST"]),
            Route("/pay/test/{ref}", test_pages, methods=["GET", "POST"]),
            Route("/pay/test/{ref}/3ds", test_pages, methods=["GET", "POST"]),
        ],
        background=[payments_runtime(config)],
    )
