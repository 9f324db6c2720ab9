"""The notifications worker recovers stream entries it never got (issue 16).

Against the running stack (real PostgreSQL, Redis, the relay, the orders subgraph) and a real SMTP
server: an order is paid while the worker is stopped, and its events then vanish from the orders
stream (what a Redis restarted empty, or a stream trimmed past a stopped worker, does). When the
next order's events arrive, their ``prev`` shows the hole; the worker asks orders for the missing
events (``orderEventsBetween``, internal) and the lost order's confirmation is sent, once, with its
total, beside the next order's; the recovery is logged and counted. Asked by anyone but the worker,
the internal field is refused. The users stream too: a password reset whose entry the stream lost
is asked of users (``accountEventsBetween``) and its link still mailed.
"""

from __future__ import annotations

import logging
from typing import cast

import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from deploy.devmail import MailSink
from deploy.stack import ThreadedStack
from tests.integration.helpers import admin_token, register
from tests.integration.notify_helpers import deliveries, eventually, order_key, paid_order, worker
from tests.support.graphql import gql

pytestmark = pytest.mark.asyncio(loop_scope="function")


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_paid_order_whose_events_the_stream_lost_is_still_confirmed(
    stack: ThreadedStack, demo_accounts: dict[str, tuple[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "shopgraph.notifications")
    admin = await admin_token(stack, demo_accounts)
    key = f"{stack.settings.redis_prefix}orders:events"
    redis = aioredis.from_url(stack.settings.redis_url)
    recovered_before = counter("shopgraph_notify_events_recovered_total", stream="orders")
    try:
        async with MailSink() as sink:
            async with worker(stack, sink):  # the worker's position: past a first order
                first, _, _ = await paid_order(stack, admin)
                await sink.wait_for(lambda m: first.email in m.recipients)
            # Stopped: an order is placed and paid, and its events leave the stream unread.
            lost_shopper, lost, _ = await paid_order(stack, admin, prices=("19.90",), quantities=(3,))
            lost_entries = await eventually(lambda: _paid_in_stream(redis, key, lost["id"]))
            assert await redis.xdel(key, *lost_entries) == len(lost_entries)
            async with worker(stack, sink):
                next_shopper, after, _ = await paid_order(stack, admin)
                await sink.wait_for(lambda m: next_shopper.email in m.recipients)
                mail = await sink.wait_for(lambda m: lost_shopper.email in m.recipients)
    finally:
        await redis.aclose()
    assert lost["number"] in mail.subject and "59.70 USD" in mail.subject
    assert "Total: 59.70 USD" in mail.text
    assert len(sink.to(lost_shopper.email)) == 1 and len(sink.to(next_shopper.email)) == 1
    (row,) = await deliveries(stack, order_key(lost, "order_confirmation"))
    assert row["status"] == "sent"
    assert counter("shopgraph_notify_events_recovered_total", stream="orders") >= recovered_before + 2
    said = [r.getMessage() for r in caplog.records if "recovered" in r.getMessage()]
    assert said and all("from orders" in line for line in said), said
    assert not [r for r in caplog.records if "their mail is not sent" in r.getMessage()]
    assert after["number"] != lost["number"]


async def _paid_in_stream(redis: aioredis.Redis, key: str, order_id: str) -> list[bytes] | None:
    """The order's entries once its order.paid is in the stream (the relay publishes in order)."""
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], await redis.xrange(key, "-", "+"))
    mine = [(entry_id, fields) for entry_id, fields in entries if fields.get(b"aggregate") == order_id.encode()]
    if not any(fields.get(b"type") == b"order.paid" for _, fields in mine):
        return None
    return [entry_id for entry_id, _ in mine]


async def test_a_reset_link_whose_event_the_stream_lost_is_still_mailed(stack: ThreadedStack) -> None:
    """The users stream likewise: a reset requested while the worker was stopped, its entry gone."""
    key = f"{stack.settings.redis_prefix}users:events"
    redis = aioredis.from_url(stack.settings.redis_url)
    first, lost, after = [await register(stack) for _ in range(3)]
    try:
        async with MailSink() as sink:
            async with worker(stack, sink):
                await _reset(stack, first.email)
                await sink.wait_for(lambda m: first.email in m.recipients)
            await _reset(stack, lost.email)
            entries = await eventually(lambda: _resets_in_stream(redis, key, lost.id))
            assert await redis.xdel(key, *entries) == len(entries)
            async with worker(stack, sink):
                await _reset(stack, after.email)
                await sink.wait_for(lambda m: after.email in m.recipients)
                mail = await sink.wait_for(lambda m: lost.email in m.recipients)
    finally:
        await redis.aclose()
    assert [u for u in mail.links if "/reset-password?token=" in u], mail.links
    assert len(sink.to(lost.email)) == 1


async def _reset(stack: ThreadedStack, email: str) -> None:
    query = "mutation($email: String!) { requestPasswordReset(input: {email: $email}) { ok } }"
    answer = await gql(stack.url("users"), query, {"email": email})
    assert answer["data"]["requestPasswordReset"]["ok"], answer


async def _resets_in_stream(redis: aioredis.Redis, key: str, user_id: str) -> list[bytes] | None:
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], await redis.xrange(key, "-", "+"))
    mine = [entry_id for entry_id, fields in entries if fields.get(b"aggregate") == user_id.encode()]
    return mine or None


@pytest.mark.parametrize("field", ["orderEventsBetween", "accountEventsBetween"])
async def test_the_replay_fields_are_internal(stack: ThreadedStack, field: str) -> None:
    query = f'query {{ {field}(after: "0", upto: "10") {{ id }} }}'
    through_router = await gql(stack.urls.get("router") or stack.start_router(), query)
    assert through_router.get("errors"), through_router  # not in the public graph
    subgraph = "orders" if field.startswith("order") else "users"
    direct = await gql(stack.url(subgraph), query)  # no service identity: refused
    assert direct.get("errors") and (direct.get("data") or {}).get(field) is None, direct
