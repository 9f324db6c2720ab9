"""Live sales figures over a sliding window, shared by every subscriber of the same window.

One feed per window length per process: it recomputes (a couple of indexed
queries) when order events arrive, debounced so a burst costs one query, and
when the oldest order in the window is due to slide out; subscribers get the
figures when they change, and a slow one only ever sees the latest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from subgraphs.kit.db import Database
from subgraphs.kit.periodic import stop_task
from subgraphs.kit.streams import EventHub, HubClosed, SubscriberTooSlow

from .models import order_items, orders

log = logging.getLogger("shopgraph.orders.stats")

TOP_PRODUCTS = 5
# Revenue counts orders that were paid for (not merely placed, nor cancelled).
PAID_STATUSES = ("PAID", "SHIPPED", "DELIVERED")
DEBOUNCE_SECONDS = 0.2
MAX_IDLE_SECONDS = 60.0


@dataclass(frozen=True)
class ProductFigures:
    product_id: uuid.UUID
    quantity: int
    revenue_minor: int


@dataclass(frozen=True)
class SalesFigures:
    window_minutes: int
    currency: str
    order_count: int
    revenue_minor: int
    top_products: tuple[ProductFigures, ...]

    @property
    def average_minor(self) -> int:
        """Average order value, rounded half up to the minor unit."""
        if not self.order_count:
            return 0
        return (2 * self.revenue_minor + self.order_count) // (2 * self.order_count)


async def sales_figures(db: Database, window_minutes: int, currency: str) -> tuple[SalesFigures, datetime | None]:
    """The window's figures over paid orders (paid, shipped, delivered) in the shop's currency, and its
    oldest order's time."""
    since = func.now() - timedelta(minutes=window_minutes)
    counted = (orders.c.created_at > since, orders.c.status.in_(PAID_STATUSES), orders.c.currency == currency)
    async with db.read() as conn:
        totals = (
            await conn.execute(
                select(func.count(), func.coalesce(func.sum(orders.c.total_minor), 0), func.min(orders.c.created_at))
                .select_from(orders)
                .where(*counted)
            )
        ).one()
        quantity = func.sum(order_items.c.quantity)
        revenue = func.sum(order_items.c.quantity * order_items.c.unit_price_minor)
        top = (
            await conn.execute(
                select(order_items.c.product_id, quantity, revenue)
                .join(orders, orders.c.id == order_items.c.order_id)
                .where(*counted)
                .group_by(order_items.c.product_id)
                .order_by(quantity.desc(), revenue.desc(), order_items.c.product_id)
                .limit(TOP_PRODUCTS)
            )
        ).all()
    figures = SalesFigures(
        window_minutes=window_minutes,
        currency=currency,
        order_count=int(totals[0]),
        revenue_minor=int(totals[1]),
        top_products=tuple(ProductFigures(r[0], int(r[1]), int(r[2])) for r in top),
    )
    return figures, totals[2]


class _Latest:
    """A one-slot mailbox: the newest figures replace any not yet taken."""

    def __init__(self) -> None:
        self.value: SalesFigures | None = None
        self.ready = asyncio.Event()

    def put(self, value: SalesFigures) -> None:
        self.value = value
        self.ready.set()


class SalesFeed:
    def __init__(self, db: Database, hub: EventHub[Any], window_minutes: int, currency: str) -> None:
        self.db = db
        self.hub = hub
        self.window_minutes = window_minutes
        self.currency = currency
        self.latest: SalesFigures | None = None
        self._mailboxes: set[_Latest] = set()
        self._task: asyncio.Task[None] | None = None

    async def watch(self) -> AsyncIterator[SalesFigures]:
        mailbox = _Latest()
        self._mailboxes.add(mailbox)
        if self.latest is not None:
            mailbox.put(self.latest)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"sales-feed:{self.window_minutes}")
        try:
            while True:
                await mailbox.ready.wait()
                mailbox.ready.clear()
                assert mailbox.value is not None
                yield mailbox.value
        finally:
            self._mailboxes.discard(mailbox)
            if not self._mailboxes:
                await self.stop()

    async def stop(self) -> None:
        task, self._task, self.latest = self._task, None, None
        if task is not None:
            await stop_task(task)

    async def _run(self) -> None:
        changed = asyncio.Event()
        listener = asyncio.create_task(self._listen(changed))
        try:
            while True:
                try:
                    figures, oldest = await sales_figures(self.db, self.window_minutes, self.currency)
                except Exception:
                    log.warning("sales figures failed; retrying", exc_info=True)
                    await asyncio.sleep(1.0)
                    continue
                if figures != self.latest:
                    self.latest = figures
                    for mailbox in self._mailboxes:
                        mailbox.put(figures)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), self._until_slide(oldest))
                if changed.is_set():
                    await asyncio.sleep(DEBOUNCE_SECONDS)  # let a burst settle into one recompute
                    changed.clear()
        finally:
            listener.cancel()

    def _until_slide(self, oldest: datetime | None) -> float:
        """Seconds until the oldest order in the window leaves it (the figures change then)."""
        if oldest is None:
            return MAX_IDLE_SECONDS
        due = oldest + timedelta(minutes=self.window_minutes) - datetime.now(UTC)
        return min(max(due.total_seconds() + 0.05, 0.05), MAX_IDLE_SECONDS)

    async def _listen(self, changed: asyncio.Event) -> None:
        while True:
            try:
                async for _ in self.hub.events():
                    changed.set()
            except SubscriberTooSlow:
                changed.set()
            except HubClosed:
                return


class SalesFeeds:
    """One feed per window length, created on first use."""

    def __init__(self, db: Database, hub: EventHub[Any], currency: str) -> None:
        self.db = db
        self.hub = hub
        self.currency = currency
        self._feeds: dict[int, SalesFeed] = {}

    def watch(self, window_minutes: int) -> AsyncIterator[SalesFigures]:
        feed = self._feeds.get(window_minutes)
        if feed is None:
            feed = self._feeds[window_minutes] = SalesFeed(self.db, self.hub, window_minutes, self.currency)
        return feed.watch()

    async def stop(self) -> None:
        for feed in self._feeds.values():
            await feed.stop()
