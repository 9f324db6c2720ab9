"""ASGI app of the orders subgraph."""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.websockets import WebSocket

from subgraphs.kit.app import create_app as create_subgraph_app
from subgraphs.kit.auth import Identity
from subgraphs.kit.config import Settings
from subgraphs.kit.context import RequestContext, Runtime

from .events import order_events
from .schema import schema
from .sweeper import PENDING_CHECKOUT_SECONDS, SWEEP_INTERVAL_SECONDS, stock_sweeper
from .types import OrdersContext


def make_context(runtime: Runtime, identity: Identity, request: Request | WebSocket) -> RequestContext:
    return OrdersContext(runtime=runtime, identity=identity, request=request)


def _seconds(name: str, default: float) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, not {text!r}") from None
    if not value > 0:
        raise ValueError(f"{name} must be positive, not {text!r}")
    return value


def create_app(settings: Settings) -> Starlette:
    sweeper = stock_sweeper(
        interval=_seconds("SHOPGRAPH_ORDERS_SWEEP_SECONDS", SWEEP_INTERVAL_SECONDS),
        pending_older_than=_seconds("SHOPGRAPH_ORDERS_PENDING_CHECKOUT_SECONDS", PENDING_CHECKOUT_SECONDS),
    )
    return create_subgraph_app(
        name="orders",
        schema=schema,
        settings=settings,
        make_context=make_context,
        background=[order_events, sweeper],
    )
