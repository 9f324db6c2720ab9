"""ASGI app of the catalog subgraph."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.websockets import WebSocket

from subgraphs.kit.app import create_app as create_subgraph_app
from subgraphs.kit.auth import Identity
from subgraphs.kit.config import Settings
from subgraphs.kit.context import RequestContext, Runtime

from .events import change_events
from .schema import CatalogContext, schema


def make_context(runtime: Runtime, identity: Identity, request: Request | WebSocket) -> RequestContext:
    return CatalogContext(runtime=runtime, identity=identity, request=request)


def create_app(settings: Settings) -> Starlette:
    return create_subgraph_app(
        name="catalog", schema=schema, settings=settings, make_context=make_context, background=[change_events]
    )
