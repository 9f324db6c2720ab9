"""Sales over time for the admin dashboard: paid orders and revenue per bucket over the last hour,
day or week, in one statement whatever the window (every bucket is listed, empty ones as zero).

Counted as ``stats.py`` counts its sliding window: orders created in the bucket that were paid for
(paid, shipped, delivered), in the shop's currency. Buckets are aligned to UTC (``date_bin`` from
2000-01-01T00:00Z); the last one is the bucket ``now()`` falls in, still filling.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum

from sqlalchemy import ARRAY, DateTime, Interval, String, Text, bindparam, func, literal_column, select

from subgraphs.kit.db import Database, Read

from .models import orders
from .stats import PAID_STATUSES

ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)
MAX_POINTS = 400


class Window(Enum):
    HOUR = timedelta(hours=1)
    DAY = timedelta(days=1)
    WEEK = timedelta(days=7)


class Bucket(Enum):
    MINUTE = timedelta(minutes=1)
    FIVE_MINUTES = timedelta(minutes=5)
    FIFTEEN_MINUTES = timedelta(minutes=15)
    HOUR = timedelta(hours=1)
    SIX_HOURS = timedelta(hours=6)
    DAY = timedelta(days=1)


DEFAULT_BUCKET = {Window.HOUR: Bucket.MINUTE, Window.DAY: Bucket.HOUR, Window.WEEK: Bucket.SIX_HOURS}


class SeriesError(ValueError):
    """A window and bucket that make no series (a bucket wider than the window, or too many points)."""


@dataclass(frozen=True)
class SalesPointFigures:
    start: datetime
    orders: int
    revenue_minor: int


def points_of(window: Window, bucket: Bucket) -> int:
    """How many buckets the window spans (the last one still filling)."""
    if bucket.value > window.value:
        raise SeriesError(f"a {bucket.name} bucket is wider than a {window.name} window")
    count = int(window.value / bucket.value)
    if count > MAX_POINTS:
        raise SeriesError(f"a {window.name} window in {bucket.name} buckets is {count} points (at most {MAX_POINTS})")
    return count


@functools.cache
def _series() -> Read:
    step = bindparam("step", type_=Interval)
    origin = bindparam("origin", type_=DateTime(timezone=True))
    last = func.date_bin(step, func.now(), origin)
    first = last - bindparam("span", type_=Interval)  # from the first bucket's start to the last's
    starts = select(func.generate_series(first, last, step).label("start")).subquery("s")
    start = func.date_bin(step, orders.c.created_at, origin).label("start")
    binned = (
        select(start, func.count().label("orders"), func.sum(orders.c.total_minor).label("revenue"))
        .where(
            orders.c.created_at >= first,
            orders.c.status == func.any(bindparam("statuses", type_=ARRAY(Text))),
            orders.c.currency == bindparam("currency", type_=String),
        )
        .group_by(start)
        .subquery("b")
    )
    return Read(
        select(
            starts.c.start,
            func.coalesce(binned.c.orders, literal_column("0")).label("orders"),
            func.coalesce(binned.c.revenue, literal_column("0")).label("revenue"),
        )
        .select_from(starts.outerjoin(binned, binned.c.start == starts.c.start))
        .order_by(starts.c.start)
    )


async def sales_series(db: Database, window: Window, bucket: Bucket, currency: str) -> list[SalesPointFigures]:
    """The window's buckets, oldest first: one statement."""
    rows = await db.fetch(
        _series(),
        step=bucket.value,
        origin=ORIGIN,
        span=bucket.value * (points_of(window, bucket) - 1),
        statuses=list(PAID_STATUSES),
        currency=currency,
    )
    return [SalesPointFigures(r["start"], int(r["orders"]), int(r["revenue"])) for r in rows]
