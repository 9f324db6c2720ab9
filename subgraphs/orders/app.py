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
from .saga import saga_part
from .schema import schema
from .service import PAYMENT_SECONDS
from .sweeper import PENDING_CHECKOUT_SECONDS, RECONCILE_BATCH, SWEEP_INTERVAL_SECONDS, stock_sweeper
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


def batch(name: str, default: int) -> int:
    """A positive whole number from the environment (the reconciler's per-pass bound)."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, not {text!r}")
    return int(text)


def create_app(settings: Settings) -> Starlette:
    sweeper = stock_sweeper(
        interval=_seconds("SHOPGRAPH_ORDERS_SWEEP_SECONDS", SWEEP_INTERVAL_SECONDS),
        pending_older_than=_seconds("SHOPGRAPH_ORDERS_PENDING_CHECKOUT_SECONDS", PENDING_CHECKOUT_SECONDS),
        reconcile_batch=batch("SHOPGRAPH_ORDERS_RECONCILE_BATCH", RECONCILE_BATCH),
    )
    return create_subgraph_app(
        name="orders",
        schema=schema,
        settings=settings,
        make_context=make_context,
        background=[saga_part(_seconds("SHOPGRAPH_ORDERS_PAYMENT_SECONDS", PAYMENT_SECONDS)), order_events, sweeper],
    )
