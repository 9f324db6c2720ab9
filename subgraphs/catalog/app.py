"""ASGI app of the catalog subgraph (the graph, plus its media routes: media_routes.py)."""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.websockets import WebSocket

from subgraphs.kit.app import create_app as create_subgraph_app
from subgraphs.kit.auth import Identity
from subgraphs.kit.config import Settings
from subgraphs.kit.context import RequestContext, Runtime

from .events import change_events
from .media import Media
from .media_routes import routes as media_routes
from .media_storage import storage_from_env
from .schema import CatalogContext, schema


def make_context(runtime: Runtime, identity: Identity, request: Request | WebSocket) -> RequestContext:
    return CatalogContext(runtime=runtime, identity=identity, request=request)


def media_base_url(settings: Settings) -> str:
    """Where renditions are served from: ``SHOPGRAPH_MEDIA_URL`` (a CDN, say), else this app itself."""
    configured = os.environ.get("SHOPGRAPH_MEDIA_URL", "")
    if configured:
        return configured.rstrip("/")
    own = settings.subgraph_urls.get("catalog", "http://127.0.0.1:4002/graphql")
    return own.rsplit("/graphql", 1)[0]


def create_app(settings: Settings) -> Starlette:
    storage = storage_from_env(settings.database_url_for("catalog"))

    async def start(runtime: Runtime) -> None:
        runtime.parts[Media] = Media(runtime.db, storage, settings.service_secret, media_base_url(settings))

    return create_subgraph_app(
        name="catalog",
        schema=schema,
        settings=settings,
        make_context=make_context,
        routes=media_routes(),
        on_startup=start,
        background=[change_events],
    )
