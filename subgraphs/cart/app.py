"""ASGI app of the cart subgraph."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.websockets import WebSocket

from subgraphs.kit.app import create_app as create_subgraph_app
from subgraphs.kit.auth import Identity
from subgraphs.kit.config import Settings
from subgraphs.kit.context import RequestContext, Runtime

from .schema import CartContext, schema


def make_context(runtime: Runtime, identity: Identity, request: Request | WebSocket) -> RequestContext:
    return CartContext(runtime=runtime, identity=identity, request=request)


def create_app(settings: Settings) -> Starlette:
    return create_subgraph_app(name="cart", schema=schema, settings=settings, make_context=make_context)
