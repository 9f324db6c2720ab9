"""The sales dashboard's history through the router: ``salesSeries(window:, bucket:)`` lists every
bucket of the last hour, day or week (empty ones as zero) with the paid orders placed in it and
their revenue, in one SQL statement whatever the window; administrators only.

Orders are written straight into the orders schema five days back (a bucket no other test writes
to), and the test compares that bucket before and after, so orders placed by other tests at the
same time do not matter.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from deploy.stack import ThreadedStack
from tests.e2e.storefront import Storefront
from tests.integration.shop_helpers import fewest_statements, sql

SERIES = """
query($window: SalesWindow!, $bucket: SalesBucket) {
  salesSeries(window: $window, bucket: $bucket) {
    window bucket points { start orders revenue { amount currencyCode } }
  }
}
"""
AGE = timedelta(days=5)


async def _series(ours: Storefront, token: str | None, window: str, bucket: str | None = None) -> dict[str, Any]:
    return (
        await ours.send("SalesSeries", {"window": window}, token)
        if bucket is None
        else await _raw(ours, token, {"window": window, "bucket": bucket})
    )


async def _raw(ours: Storefront, token: str | None, variables: dict[str, Any]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await ours.client.post(ours.url, json={"query": SERIES, "variables": variables}, headers=headers)
    assert response.status_code < 500, response.text
    body: dict[str, Any] = response.json()
    return body


async def _insert(stack: ThreadedStack, user: uuid.UUID, at: datetime, rows: list[tuple[str, int]]) -> None:
    async with sql(stack, "orders") as conn:
        for status, total in rows:
            await conn.execute(
                text(
                    "INSERT INTO orders (user_id, status, idempotency_key, reservation_id, currency, subtotal_minor,"
                    " shipping_minor, total_minor, shipping_address, created_at, updated_at, refunded_minor)"
                    " VALUES (:user, :status, :key, gen_random_uuid(), 'USD', :total, 0, :total,"
                    " CAST('{}' AS jsonb), :at, now(), 0)"
                ),
                {"user": user, "status": status, "key": f"series-{uuid.uuid4()}", "total": total, "at": at},
            )


async def _delete(stack: ThreadedStack, user: uuid.UUID) -> None:
    async with sql(stack, "orders") as conn:
        await conn.execute(text("DELETE FROM orders WHERE user_id = :user"), {"user": user})


def _point_at(series: dict[str, Any], at: datetime) -> dict[str, Any]:
    starts = [datetime.fromisoformat(p["start"]) for p in series["points"]]
    [index] = [i for i, start in enumerate(starts) if start <= at < start + (starts[1] - starts[0])]
    point: dict[str, Any] = series["points"][index]
    return point


async def test_the_series_lists_every_bucket_and_counts_paid_orders(
    stack: ThreadedStack, ours: Storefront, demo_accounts: dict[str, tuple[str, str]]
) -> None:
    admin = await ours.login(*demo_accounts["ADMIN"])
    hour = (await ours.data("SalesSeries", {"window": "HOUR"}, admin.access_token))["salesSeries"]
    assert (hour["window"], hour["bucket"], len(hour["points"])) == ("HOUR", "MINUTE", 60)
    starts = [datetime.fromisoformat(p["start"]) for p in hour["points"]]
    assert all(b - a == timedelta(minutes=1) for a, b in itertools.pairwise(starts))
    assert starts[-1] <= datetime.now(UTC) < starts[-1] + timedelta(minutes=2)  # the last bucket is now's
    assert all(p["revenue"]["currencyCode"] == "USD" and p["orders"] >= 0 for p in hour["points"])

    user = uuid.uuid4()
    at = datetime.now(UTC) - AGE
    before = (await ours.data("SalesSeries", {"window": "WEEK"}, admin.access_token))["salesSeries"]
    assert (before["bucket"], len(before["points"])) == ("SIX_HOURS", 28)
    try:
        # Two paid orders, one shipped; an unpaid and a cancelled one do not count.
        await _insert(
            stack,
            user,
            at,
            [("PAID", 1250), ("SHIPPED", 999), ("PENDING_PAYMENT", 5000), ("CANCELLED", 7000), ("PAID", 1)],
        )
        after = (await ours.data("SalesSeries", {"window": "WEEK"}, admin.access_token))["salesSeries"]
        was, now = _point_at(before, at), _point_at(after, at)
        assert now["start"] == was["start"]
        assert now["orders"] - was["orders"] == 3
        assert Decimal(now["revenue"]["amount"]) - Decimal(was["revenue"]["amount"]) == Decimal("22.50")

        # One statement whatever the window: the minutes of an hour, the hours of a day, a week.
        for window in ("HOUR", "DAY", "WEEK"):

            async def read(w: str = window) -> dict[str, Any]:
                return await ours.data("SalesSeries", {"window": w}, admin.access_token)

            series, counted = await fewest_statements(stack, ("orders",), read)
            assert counted["orders"] == 1, (window, counted)
            assert len(series["salesSeries"]["points"]) == {"HOUR": 60, "DAY": 24, "WEEK": 28}[window]
    finally:
        await _delete(stack, user)

    chosen = await _series(ours, admin.access_token, "DAY", "FIFTEEN_MINUTES")
    assert not chosen.get("errors") and len(chosen["data"]["salesSeries"]["points"]) == 96
    for window, bucket in (("HOUR", "DAY"), ("WEEK", "MINUTE")):
        refused = await _series(ours, admin.access_token, window, bucket)
        assert refused["data"] is None
        assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", refused


async def test_only_administrators_read_the_series(ours: Storefront) -> None:
    shopper = await ours.register()
    for token in (shopper.access_token, None):
        refused = await ours.send("SalesSeries", {"window": "HOUR"}, token)
        assert refused.get("data") is None, refused
        assert refused["errors"][0]["extensions"]["code"] in {"UNAUTHORIZED_FIELD_OR_TYPE", "UNAUTHENTICATED"}
