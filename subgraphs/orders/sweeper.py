"""The stock sweeper: gives back catalog stock that no order keeps, in the background.

Two kinds of stock can be left held by a fault: a checkout that reserved and then
never wrote its order (its ``pending_checkouts`` row outlives it), and a cancelled
order whose release did not get through after the cancel committed
(``stock_released_at`` still NULL). Each orders process runs one sweeper; the
passes claim rows with ``FOR UPDATE SKIP LOCKED``, so replicas share the work,
and catalog's release is idempotent per reservation, so a repeat is harmless.
A catalog outage only delays the release to a later pass.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

from subgraphs.kit.context import Runtime
from subgraphs.kit.periodic import periodically

from .saga import Saga, orders_service
from .service import Orders

log = logging.getLogger("shopgraph.orders.sweeper")

# Seconds between passes (env SHOPGRAPH_ORDERS_SWEEP_SECONDS, read in app.py).
SWEEP_INTERVAL_SECONDS = 30.0
# A pending checkout this old has been abandoned: a live one writes its order within
# seconds (env SHOPGRAPH_ORDERS_PENDING_CHECKOUT_SECONDS).
PENDING_CHECKOUT_SECONDS = 300.0
# Orders past their payment deadline one reconciler pass takes (env SHOPGRAPH_ORDERS_RECONCILE_BATCH).
RECONCILE_BATCH = 100


async def sweep_once(
    runtime: Runtime, pending_older_than: float = PENDING_CHECKOUT_SECONDS, reconcile_batch: int = RECONCILE_BATCH
) -> None:
    orders: Orders = orders_service(runtime)
    # The saga's reconciler first: the orders it gives up on have their stock released below if
    # catalog cannot take it back now.
    reconciled = await Saga(orders).reconcile(limit=reconcile_batch)
    if reconciled.paid or reconciled.abandoned or reconciled.declined:
        log.warning("reconciler: %s", reconciled)
    result = await orders.sweep(pending_older_than=pending_older_than)
    if result.checkouts_released or result.cancels_released:
        log.info("sweeper: %s", result)


def stock_sweeper(
    interval: float = SWEEP_INTERVAL_SECONDS,
    pending_older_than: float = PENDING_CHECKOUT_SECONDS,
    reconcile_batch: int = RECONCILE_BATCH,
) -> Callable[[Runtime], AbstractAsyncContextManager[None]]:
    """A ``background`` part for the orders app: sweeps every ``interval`` seconds while it runs."""

    @contextlib.asynccontextmanager
    async def run(runtime: Runtime) -> AsyncIterator[None]:
        async with periodically(
            "orders-stock-sweeper", interval, lambda: sweep_once(runtime, pending_older_than, reconcile_batch), log
        ):
            yield

    return run
