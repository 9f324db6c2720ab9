"""The notifications worker against the running stack: real PostgreSQL, Redis Streams, the orders
and users subgraphs, and a real SMTP server (aiosmtpd on 127.0.0.1, a free port).

Events come from the real path (a mutation → the outbox → the relay → the stream) wherever
it exists today (``order.paid``, ``order.shipped``, ``order.cancelled``,
``account.password_reset_requested``).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from typing import TYPE_CHECKING

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from deploy.devmail import MailSink
from deploy.stack import ThreadedStack
from tests.integration.helpers import admin_token, register
from tests.integration.notify_helpers import deliveries, eventually, notifications_db, order_key, paid_order, worker
from tests.integration.shop_helpers import CARD_DECLINED, pay_order, place_order, product, set_status, sql
from tests.support.graphql import gql

if TYPE_CHECKING:
    StreamFields = dict[
        bytes | bytearray | memoryview[int] | str | int | float, bytes | bytearray | memoryview[int] | str | int | float
    ]

pytestmark = pytest.mark.asyncio(loop_scope="function")


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_confirmation_mail_has_the_lines_and_the_total(
    stack: ThreadedStack, demo_accounts: dict[str, tuple[str, str]]
) -> None:
    admin = await admin_token(stack, demo_accounts)
    sent_before = counter("shopgraph_mails_sent_total", template="order_confirmation")
    async with MailSink() as sink, worker(stack, sink):
        shopper, order, products = await paid_order(stack, admin, prices=("12.50", "3.99"), quantities=(2, 1))
        mail = await sink.wait_for(lambda m: shopper.email in m.recipients)
    assert order["number"] in mail.subject and "28.99 USD" in mail.subject
    for item, quantity, price, line_total in zip(products, (2, 1), ("12.50", "3.99"), ("25.00", "3.99"), strict=True):
        assert f"{quantity} x {item['name']} ({item['sku']}) at {price} USD: {line_total} USD" in mail.text
        assert item["name"] in mail.html and f"{line_total} USD" in mail.html
    assert "Total: 28.99 USD" in mail.text and "Subtotal: 28.99 USD" in mail.text
    assert "<strong>28.99 USD</strong>" in mail.html
    assert f"/orders/{order['number']}" in mail.text
    assert str(mail.message["Message-ID"]).endswith("@shopgraph.notifications>")
    (row,) = await deliveries(stack, order_key(order, "order_confirmation"))
    assert (row["status"], row["attempts"], row["recipient"]) == ("sent", 1, shopper.email)
    assert counter("shopgraph_mails_sent_total", template="order_confirmation") >= sent_before + 1
    # Exactly one mail for this order: creating it (order.created) sends nothing.
    assert len(sink.to(shopper.email)) == 1


async def test_a_redelivered_event_sends_once(stack: ThreadedStack, demo_accounts: dict[str, tuple[str, str]]) -> None:
    admin = await admin_token(stack, demo_accounts)
    async with MailSink() as sink:
        async with worker(stack, sink):
            shopper, order, _ = await paid_order(stack, admin)
            await sink.wait_for(lambda m: shopper.email in m.recipients)
        (row,) = await deliveries(stack, order_key(order, "order_confirmation"))
        # The stream delivers the event again (at least once): the position is moved back before it.
        async with notifications_db(stack) as conn:
            await conn.execute("UPDATE stream_cursors SET last_id = $1 WHERE stream = 'orders'", row["event_id"] - 1)
        # And the order is reported paid a second time under a new event id (a repeated saga step):
        # written through the orders outbox, as orders writes it.
        await _record_order_event(stack, order["id"], "order.paid")
        async with worker(stack, sink) as running:
            await eventually(lambda: _cursor_past(stack, row["event_id"] + 1))
            await asyncio.sleep(0.3)  # room for a wrong second send
            assert running is not None
    assert len(sink.to(shopper.email)) == 1
    assert len(await deliveries(stack, order_key(order, "order_confirmation"))) == 1


async def _cursor_past(stack: ThreadedStack, event_id: int) -> bool:
    async with notifications_db(stack) as conn:
        return bool(await conn.fetchval("SELECT last_id >= $1 FROM stream_cursors WHERE stream = 'orders'", event_id))


async def _record_order_event(stack: ThreadedStack, order_id: str, event_type: str) -> int:
    """An event of a real order written to the orders outbox the way orders writes its own (same payload keys)."""
    from sqlalchemy import select

    from subgraphs.kit.outbox import record_event
    from subgraphs.orders.models import order_items, orders, outbox
    from tests.integration.shop_helpers import sql

    async with sql(stack, "orders") as conn:
        order = (await conn.execute(select(orders).where(orders.c.id == uuid.UUID(order_id)))).one()
        lines = (await conn.execute(select(order_items).where(order_items.c.order_id == order.id))).all()
        payload = {
            "order_id": str(order.id),
            "number": f"SG-{order.number}",
            "user_id": str(order.user_id),
            "currency": order.currency,
            "subtotal_minor": order.subtotal_minor,
            "total_minor": order.total_minor,
            "lines": [
                {"name": li.name, "sku": li.sku, "quantity": li.quantity, "unit_price_minor": li.unit_price_minor}
                for li in lines
            ],
        }
        return await record_event(conn, outbox, event_type, order.id, payload)


async def test_smtp_down_retries_with_backoff_then_sends(
    stack: ThreadedStack, demo_accounts: dict[str, tuple[str, str]]
) -> None:
    admin = await admin_token(stack, demo_accounts)
    sink = await MailSink().start()
    await sink.stop()  # its port, with nobody listening
    failures_before = counter("shopgraph_mail_failures_total", template="order_confirmation", kind="transient")
    async with worker(stack, sink, backoff_seconds=0.1):
        shopper, order, _ = await paid_order(stack, admin)
        key = order_key(order, "order_confirmation")
        waits: dict[int, float] = {}  # attempt -> the wait it was given

        async def failing() -> bool:
            rows = await deliveries(stack, key)
            if rows and rows[0]["status"] == "pending" and rows[0]["attempts"] and rows[0]["last_attempt_at"]:
                wait = (rows[0]["next_attempt_at"] - rows[0]["last_attempt_at"]).total_seconds()
                waits[rows[0]["attempts"]] = wait
            return len(waits) >= 3

        await eventually(failing, step=0.01)
        assert "Connect" in (await deliveries(stack, key))[0]["last_error"]
        await sink.start()  # the server is back, on the same port
        mail = await sink.wait_for(lambda m: shopper.email in m.recipients)
    assert order["number"] in mail.subject
    attempts = sorted(waits)
    assert all(waits[a] < waits[b] for a, b in itertools.pairwise(attempts)), waits
    for attempt in attempts:  # 0.1 s doubling per attempt, up to 20% more
        assert 0.1 * 2 ** (attempt - 1) <= waits[attempt] <= 0.1 * 2 ** (attempt - 1) * 1.2 + 0.01, waits
    (row,) = await deliveries(stack, key)
    assert row["status"] == "sent" and row["attempts"] >= 4
    assert len(sink.to(shopper.email)) == 1
    assert counter("shopgraph_mail_failures_total", template="order_confirmation", kind="transient") >= (
        failures_before + 3
    )


async def test_dead_letter_after_the_last_attempt(
    stack: ThreadedStack, demo_accounts: dict[str, tuple[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    admin = await admin_token(stack, demo_accounts)
    dead_before = counter("shopgraph_mails_dead_lettered_total", template="order_confirmation")
    caplog.set_level(logging.WARNING, "shopgraph.notifications")
    async with MailSink() as sink, worker(stack, sink, max_attempts=3):
        sink.refuse_with = "451 4.3.0 Try again later"  # transient: retried, three times in all
        shopper, order, _ = await paid_order(stack, admin)
        key = order_key(order, "order_confirmation")

        async def dead() -> bool:
            rows = await deliveries(stack, key)
            return bool(rows) and rows[0]["status"] == "dead"

        await eventually(dead)
        sink.refuse_with = "550 5.1.1 No such mailbox"  # permanent: no retry at all
        other, other_order, _ = await paid_order(stack, admin)
        other_key = order_key(other_order, "order_confirmation")
        await eventually(lambda: _status_is(stack, other_key, "dead"))
        sink.refuse_with = None
        await asyncio.sleep(0.5)  # a dead message is never tried again
    (row,) = await deliveries(stack, key)
    assert row["attempts"] == 3 and "451" in row["last_error"]
    (other_row,) = await deliveries(stack, other_key)
    assert other_row["attempts"] == 1 and "550" in other_row["last_error"]
    async with notifications_db(stack) as conn:
        letters = await conn.fetch(
            "SELECT * FROM dead_letters WHERE delivery_id = ANY($1::bigint[]) ORDER BY id", [row["id"], other_row["id"]]
        )
    assert [(d["idempotency_key"], d["attempts"], d["recipient"]) for d in letters] == [
        (key, 3, shopper.email),
        (other_key, 1, other.email),
    ]
    assert sink.to(shopper.email) == [] and sink.to(other.email) == []
    assert counter("shopgraph_mails_dead_lettered_total", template="order_confirmation") >= dead_before + 2
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and "dead-lettered" in r.getMessage()]
    assert any(key in r.getMessage() for r in errors) and any(other_key in r.getMessage() for r in errors)


async def _status_is(stack: ThreadedStack, key: str, status: str) -> bool:
    rows = await deliveries(stack, key)
    return bool(rows) and rows[0]["status"] == status


PREFERENCES = """
    mutation($input: UpdateMailPreferencesInput!) {
        updateMailPreferences(input: $input) { user { orderUpdateEmails } userErrors { code } }
    }
"""


async def test_preference_off_stops_shipping_mail_not_transactional_mail(
    stack: ThreadedStack, demo_accounts: dict[str, tuple[str, str]]
) -> None:
    from tests.integration.helpers import register

    admin = await admin_token(stack, demo_accounts)
    opted_out = await register(stack)
    result = await gql(stack.url("users"), PREFERENCES, {"input": {"orderUpdateEmails": False}}, opted_out.access_token)
    assert result["data"]["updateMailPreferences"] == {"user": {"orderUpdateEmails": False}, "userErrors": []}
    async with MailSink() as sink, worker(stack, sink):
        _, quiet, _ = await paid_order(stack, admin, shopper=opted_out)
        keen, loud, _ = await paid_order(stack, admin)
        for order in (quiet, loud):
            shipped = await set_status(stack, admin, order["id"], "SHIPPED")
            assert shipped["data"]["updateOrderStatus"]["userErrors"] == []
        await sink.wait_for(lambda m: keen.email in m.recipients and "on its way" in m.subject)
        await eventually(lambda: _status_is(stack, order_key(quiet, "order_shipped"), "suppressed"))
    quiet_mail = sink.to(opted_out.email)
    assert [m.subject for m in quiet_mail] == [f"Your order {quiet['number']} is confirmed — 28.99 USD"]
    loud_mail = [m.subject for m in sink.to(keen.email)]
    assert loud_mail == [
        f"Your order {loud['number']} is confirmed — 28.99 USD",
        f"Your order {loud['number']} is on its way",
    ]
    shipping = sink.to(keen.email)[1]
    assert shipping.message["List-Unsubscribe"] == f"<{stack.settings.public_url}/account>"
    assert "turn them off" in shipping.text


async def test_restart_resumes_without_loss_or_duplicates(
    stack: ThreadedStack, demo_accounts: dict[str, tuple[str, str]]
) -> None:
    admin = await admin_token(stack, demo_accounts)
    async with MailSink() as sink:
        async with worker(stack, sink):
            first, _, _ = await paid_order(stack, admin)
            await sink.wait_for(lambda m: first.email in m.recipients)
        # Stopped: events keep coming.
        while_down = [await paid_order(stack, admin) for _ in range(3)]
        async with worker(stack, sink):
            for shopper, _, _ in while_down:
                await sink.wait_for(lambda m, s=shopper: s.email in m.recipients)  # type: ignore[misc]
            await asyncio.sleep(0.3)
    assert len(sink.to(first.email)) == 1
    for shopper, order, _ in while_down:
        assert [m.subject.split(" is ")[0] for m in sink.to(shopper.email)] == [f"Your order {order['number']}"]


def _entry(event_id: int, prev: int, event_type: str, aggregate: uuid.UUID, payload: dict[str, object]) -> StreamFields:
    """A stream entry exactly as ``kit.relay`` writes it."""
    import json
    from datetime import UTC, datetime

    return {
        "type": event_type,
        "aggregate": str(aggregate),
        "payload": json.dumps(payload),
        "created": datetime.now(UTC).isoformat(),
        "prev": str(prev),
    }


async def test_payment_saga_events_of_the_contract(stack: ThreadedStack, caplog: pytest.LogCaptureFixture) -> None:
    """``order.payment_failed``, ``order.cancelled`` with a reason and ``order.refunded`` (the payments
    work emits them; orders does not yet): entries of the contract's shape on a real Redis stream of
    their own (the orders stream's ids belong to its relay), read by the same worker code."""
    import redis.asyncio as aioredis

    from tests.integration.helpers import register

    shopper = await register(stack)
    order_id = uuid.uuid4()
    base = {
        "order_id": str(order_id),
        "number": "SG-990001",
        "user_id": shopper.id,
        "currency": "EUR",
        "subtotal_minor": 4200,
        "total_minor": 4200,
        "lines": [{"name": "Teapot", "sku": "TEA-1", "quantity": 2, "unit_price_minor": 2100}],
    }
    stream = f"contract{uuid.uuid4().hex[:8]}"
    key = f"{stack.settings.redis_prefix}{stream}:events"
    events = [
        (1, 0, "order.created", base | {"status": "PENDING_PAYMENT"}),
        (2, 1, "order.payment_failed", base),
        (3, 2, "order.cancelled", base | {"reason": "payment_declined"}),
        (4, 3, "order.refunded", base | {"amount_minor": 500, "currency": "EUR"}),
        (5, 4, "order.paid", {**base, "lines": None}),  # a producer's bug: nothing to confirm
        # 6 and 7 never reach the stream (trimmed, or Redis restarted empty)
        (8, 7, "order.paid", base),
    ]
    redis = aioredis.from_url(stack.settings.redis_url)
    caplog.set_level(logging.WARNING, "shopgraph.notifications")
    gaps_before = counter("shopgraph_notify_stream_gaps_total", stream=stream)
    try:
        for event_id, prev, event_type, payload in events:
            await redis.xadd(key, _entry(event_id, prev, event_type, order_id, payload), id=f"{event_id}-0")
        async with MailSink() as sink, worker(stack, sink, streams=(stream,)):
            await eventually(lambda: _count_to(sink, shopper.email, 3))
            await asyncio.sleep(0.3)
    finally:
        await redis.delete(key)
        await redis.aclose()
    by_subject = {m.subject: m for m in sink.to(shopper.email)}
    # The declined payment and the cancel it causes make one mail, not two.
    assert len(sink.to(shopper.email)) == 3
    assert set(by_subject) == {
        "The payment for order SG-990001 did not go through",
        "A refund of 5.00 EUR for order SG-990001",
        "Your order SG-990001 is confirmed — 42.00 EUR",
    }
    failed = by_subject["The payment for order SG-990001 did not go through"]
    assert "42.00 EUR" in failed.text and "was cancelled and its items were put back on sale" in failed.text
    assert "2 x Teapot (TEA-1) at 21.00 EUR: 42.00 EUR" in failed.text
    assert "(order total 42.00 EUR)" in by_subject["A refund of 5.00 EUR for order SG-990001"].text
    # The bad order.paid is a dead letter at once; it does not hold back the good one after it.
    rows = await deliveries(stack, f"{stream}:5:%")
    assert [(r["status"], r["template"]) for r in rows] == [("dead", "order_confirmation")]
    assert "lines" in rows[0]["last_error"]
    assert counter("shopgraph_notify_stream_gaps_total", stream=stream) == gaps_before + 2
    assert any("lost events 6..7" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)


async def test_a_declined_payment_sends_one_mail_once(
    stack: ThreadedStack, demo_accounts: dict[str, tuple[str, str]]
) -> None:
    """Declined by the provider (the real saga: payment.failed → order.cancelled, reason
    payment_declined): one payment-failed mail saying the order was cancelled, not a second
    cancellation mail; and the events delivered again send nothing more."""
    admin = await admin_token(stack, demo_accounts)
    shopper = await register(stack)
    item = await product(stack, admin, price="9.00", stock=3)
    async with MailSink() as sink:
        async with worker(stack, sink):
            order = await place_order(stack, shopper.access_token, {item["id"]: 2})
            await pay_order(stack, shopper.access_token, order["id"], CARD_DECLINED, until="CANCELLED")
            mail = await sink.wait_for(lambda m: shopper.email in m.recipients)
            await eventually(lambda: _cursor_past_order(stack, order["id"], "order.cancelled"))
            await asyncio.sleep(0.3)  # room for a wrong second mail
        assert mail.subject == f"The payment for order {order['number']} did not go through"
        assert "18.00 USD" in mail.text and "was declined, so nothing was charged" in mail.text
        assert "was cancelled and its items were put back on sale" in mail.text
        (row,) = await deliveries(stack, order_key(order, "payment_failed"))
        assert row["status"] == "sent"
        assert await deliveries(stack, order_key(order, "order_cancelled")) == []
        # Redelivery: the stream position moved back before the order's events.
        async with notifications_db(stack) as conn:
            await conn.execute("UPDATE stream_cursors SET last_id = $1 WHERE stream = 'orders'", row["event_id"] - 1)
        async with worker(stack, sink):
            await eventually(lambda: _cursor_past(stack, row["event_id"]))
            await asyncio.sleep(0.3)
    assert len(sink.to(shopper.email)) == 1
    assert len(await deliveries(stack, order_key(order, "payment_failed"))) == 1


async def _cursor_past_order(stack: ThreadedStack, order_id: str, event_type: str) -> bool:
    """The worker has read the order's ``event_type`` event (the orders stream's position is past it)."""
    async with sql(stack, "orders") as conn:
        query = text("SELECT max(id) FROM outbox WHERE aggregate_id = :o AND event_type = :t")
        event_id = (await conn.execute(query, {"o": uuid.UUID(order_id), "t": event_type})).scalar_one()
    return event_id is not None and await _cursor_past(stack, event_id)


async def _count_to(sink: MailSink, email: str, n: int) -> bool:
    return len(sink.to(email)) >= n


async def test_two_workers_side_by_side_send_each_message_once(
    stack: ThreadedStack, demo_accounts: dict[str, tuple[str, str]]
) -> None:
    """Replicas: both read both streams and both send; the cursor row and the leases keep each
    message to one of them."""
    admin = await admin_token(stack, demo_accounts)
    async with MailSink() as sink, worker(stack, sink), worker(stack, sink):
        placed = await asyncio.gather(*(paid_order(stack, admin) for _ in range(6)))
        for shopper, _, _ in placed:
            await sink.wait_for(lambda m, s=shopper: s.email in m.recipients)  # type: ignore[misc]
        await asyncio.sleep(0.5)  # room for a second copy
    for shopper, order, _ in placed:
        assert len(sink.to(shopper.email)) == 1, shopper.email
        (row,) = await deliveries(stack, order_key(order, "order_confirmation"))
        assert (row["status"], row["attempts"]) == ("sent", 1)
