"""Order events end to end: outbox → relay → Redis Stream → hub → graphql-transport-ws subscribers.

Real PostgreSQL and Redis, real WebSocket clients (``gql``) against the orders
subgraph. Fault tests run on a stack of their own, with a dedicated Redis they
can restart and the relay as a separate process they can kill.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from gql.transport.exceptions import TransportError
from sqlalchemy import func, select

from deploy.embedded import EmbeddedRedis
from deploy.stack import PROJECT_ROOT, Stack, ThreadedStack
from subgraphs.kit.auth import mint_internal_token
from subgraphs.kit.db import Database
from subgraphs.kit.outbox import record_event
from subgraphs.kit.websocket import REVOCATION_CHECK_SECONDS
from subgraphs.orders.models import outbox
from tests.integration.helpers import admin_token, data, login, register
from tests.integration.shop_helpers import pay_order
from tests.support.graphql import gql
from tests.support.subscriptions import Feed, subscription
from tests.support.wait import until

EVENT = "id type occurredAt order { id number status total { amount currencyCode } items { quantity product { id } } }"
ORDER_EVENTS = f"subscription($after: ID) {{ orderEvents(after: $after) {{ {EVENT} }} }}"
ORDER_UPDATED = f"subscription($id: ID!) {{ orderUpdated(id: $id) {{ {EVENT} }} }}"
SALES_STATS = """
    subscription($window: Int) {
        salesStats(windowMinutes: $window) {
            windowMinutes orderCount revenue { amount currencyCode } averageOrderValue { amount }
            topProducts { quantity revenue { amount } product { id } }
        }
    }
"""
LOGIN = "mutation($input: LoginInput!) { login(input: $input) { accessToken userErrors { code } } }"
REGISTER = (
    "mutation($input: RegisterInput!) { register(input: $input) { accessToken user { id } userErrors { code } } }"
)
CREATE_PRODUCT = """
    mutation($input: CreateProductInput!) { createProduct(input: $input) { product { id } userErrors { code } } }
"""
ADD_TO_CART = "mutation($input: AddToCartInput!) { addToCart(input: $input) { userErrors { code message } } }"
CHECKOUT = """
    mutation($input: CheckoutInput!) { checkout(input: $input) { order { id status } userErrors { code message } } }
"""
SET_STATUS = """
    mutation($input: UpdateOrderStatusInput!) {
        updateOrderStatus(input: $input) { order { status } userErrors { code message } }
    }
"""
CANCEL = "mutation($input: CancelOrderInput!) { cancelOrder(input: $input) { order { status } userErrors { code } } }"
ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "12 Analytical Row",
    "city": "London",
    "postalCode": "N1 9GU",
    "country": "GB",
}


# --- shop actions over HTTP --------------------------------------------------------------------


def _data(result: dict[str, Any]) -> dict[str, Any]:
    assert not result.get("errors"), result
    payload: dict[str, Any] = result["data"]
    return payload


async def _payload(url: str, query: str, variables: dict[str, Any], token: str) -> dict[str, Any]:
    payload: dict[str, Any] = next(iter(_data(await gql(url, query, variables, token)).values()))
    assert payload["userErrors"] == [], payload
    return payload


@pytest.fixture(scope="module")
async def admin(stack: ThreadedStack, demo_accounts: dict[str, tuple[str, str]]) -> str:
    email, password = demo_accounts["ADMIN"]
    return str(
        (await _payload(stack.url("users"), LOGIN, {"input": {"email": email, "password": password}}, ""))[
            "accessToken"
        ]
    )


async def _customer(stack: ThreadedStack) -> tuple[str, str]:
    """(user id, access token) of a new customer."""
    variables = {
        "input": {
            "email": f"events-{uuid.uuid4().hex[:12]}@example.com",
            "password": "correct-horse-battery",
            "name": "Ev",
        }
    }
    payload = await _payload(stack.url("users"), REGISTER, variables, "")
    return payload["user"]["id"], payload["accessToken"]


async def _product(stack: ThreadedStack, admin: str, price: str = "12.50") -> str:
    sku = f"EV-{uuid.uuid4().hex[:10]}".upper()
    variables = {"input": {"sku": sku, "name": f"Event product {sku}", "price": price, "stock": 1000}}
    return str((await _payload(stack.url("catalog"), CREATE_PRODUCT, variables, admin))["product"]["id"])


async def _checkout(stack: ThreadedStack, token: str, product_id: str, quantity: int = 2) -> str:
    await _payload(stack.url("cart"), ADD_TO_CART, {"input": {"productId": product_id, "quantity": quantity}}, token)
    variables = {"input": {"idempotencyKey": uuid.uuid4().hex, "shippingAddress": ADDRESS}}
    return str((await _payload(stack.url("orders"), CHECKOUT, variables, token))["order"]["id"])


async def _set_status(stack: ThreadedStack, admin: str, order_id: str, status: str) -> None:
    await _payload(stack.url("orders"), SET_STATUS, {"input": {"orderId": order_id, "status": status}}, admin)


# --- events straight through the outbox ------------------------------------------------------------


async def _newest_event(db: Database) -> int:
    async with db.read() as conn:
        return int((await conn.execute(select(func.coalesce(func.max(outbox.c.id), 0)))).scalar_one())


async def _emit(db: Database, order_id: uuid.UUID | None = None, event_type: str = "order.paid") -> int:
    """One event through ``record_event`` in a transaction of its own (for an order row that does not exist)."""
    order_id = order_id or uuid.uuid4()
    payload = {
        "type": event_type,
        "orderId": str(order_id),
        "number": "SG-1",
        "userId": str(uuid.uuid4()),
        "status": "PAID",
        "total": {"amount": "10.00", "currencyCode": "USD"},
        "items": [{"productId": str(uuid.uuid4()), "quantity": 1, "unitPrice": "10.00"}],
    }
    async with db.transaction() as conn:
        return await record_event(conn, outbox, event_type, order_id, payload)


async def _burst(db: Database, count: int, *, producers: int = 4, pause: float = 0.0) -> list[int]:
    """``count`` events from ``producers`` concurrent writers; their ids."""
    ids: list[int] = []

    async def producer(n: int) -> None:
        for _ in range(n):
            ids.append(await _emit(db))
            if pause:
                await asyncio.sleep(pause)

    share = [count // producers + (1 if i < count % producers else 0) for i in range(producers)]
    await asyncio.gather(*(producer(n) for n in share))
    return ids


async def _unpublished(db: Database) -> int:
    async with db.read() as conn:
        query = select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
        return int((await conn.execute(query)).scalar_one())


def _ids(results: list[dict[str, Any]], field: str = "orderEvents") -> list[int]:
    return [int(r[field]["id"]) for r in results]


def _admin_token(settings_secret: str) -> str:
    """What the router forwards for a signed-in administrator."""
    return mint_internal_token(settings_secret, "router", user_id=uuid.uuid4(), role="ADMIN")


@pytest.fixture
async def orders_db(stack: ThreadedStack) -> AsyncIterator[Database]:
    db = Database(stack.settings.database_url_for("orders"), "orders", pool_size=5)
    yield db
    await db.dispose()


# --- the shop's own events ---------------------------------------------------------------------


async def test_lifecycle_events_arrive_in_order(stack: ThreadedStack, admin: str, orders_db: Database) -> None:
    _, customer = await _customer(stack)
    product = await _product(stack, admin)
    after = await _newest_event(orders_db)
    async with subscription(stack.url("orders"), ORDER_EVENTS, {"after": str(after)}, admin) as feed:
        paid_then_shipped = await _checkout(stack, customer, product)
        await pay_order(stack, admin, paid_then_shipped)
        await _set_status(stack, admin, paid_then_shipped, "SHIPPED")
        cancelled = await _checkout(stack, customer, product, quantity=1)
        await _payload(stack.url("orders"), CANCEL, {"input": {"orderId": cancelled}}, customer)
        results = [r["orderEvents"] for r in await feed.wait(5)]
    ours = [(e["order"]["id"], e["type"], e["order"]["status"]) for e in results]
    assert ours == [
        (paid_then_shipped, "CREATED", "PENDING_PAYMENT"),
        (paid_then_shipped, "PAID", "PAID"),
        (paid_then_shipped, "SHIPPED", "SHIPPED"),
        (cancelled, "CREATED", "PENDING_PAYMENT"),
        (cancelled, "CANCELLED", "CANCELLED"),
    ]
    ids = [int(e["id"]) for e in results]
    assert ids == sorted(ids) and len(set(ids)) == 5
    first = results[0]["order"]
    assert first["total"] == {"amount": "25.00", "currencyCode": "USD"}
    assert first["items"] == [{"quantity": 2, "product": {"id": product}}]


async def test_resume_after_delivers_exactly_the_missed_events(stack: ThreadedStack, orders_db: Database) -> None:
    token = _admin_token(stack.settings.service_secret)
    start = await _newest_event(orders_db)
    emitted = [await _emit(orders_db) for _ in range(10)]
    async with subscription(stack.url("orders"), ORDER_EVENTS, {"after": str(emitted[3])}, token) as feed:
        assert _ids(await feed.wait(6)) == emitted[4:]
        more = [await _emit(orders_db) for _ in range(5)]
        assert _ids(await feed.wait(11)) == emitted[4:] + more
    async with subscription(stack.url("orders"), ORDER_EVENTS, {"after": str(start)}, token) as feed:
        assert _ids(await feed.wait(15)) == emitted + more


async def test_dropped_subscriber_resumes_complete_in_order(stack: ThreadedStack, orders_db: Database) -> None:
    token = _admin_token(stack.settings.service_secret)
    start = await _newest_event(orders_db)
    received: list[int] = []
    producing = asyncio.create_task(_burst(orders_db, 120, pause=0.002))
    cursor = start
    for _ in range(3):  # drop the connection three times mid-burst, resume from the last id seen
        async with subscription(stack.url("orders"), ORDER_EVENTS, {"after": str(cursor)}, token) as feed:
            got = _ids(await feed.wait(20))
        received += got
        cursor = got[-1]
    emitted = sorted(await asyncio.wait_for(producing, 60))
    async with subscription(stack.url("orders"), ORDER_EVENTS, {"after": str(cursor)}, token) as feed:
        received += _ids(await feed.wait(len(emitted) - len(received)))
    assert received == emitted


async def test_order_updated_sends_the_current_state_then_changes(stack: ThreadedStack, admin: str) -> None:
    _, customer = await _customer(stack)
    order_id = await _checkout(stack, customer, await _product(stack, admin))
    async with subscription(stack.url("orders"), ORDER_UPDATED, {"id": order_id}, customer) as feed:
        assert [r["orderUpdated"]["type"] for r in await feed.wait(1)] == ["CREATED"]
        await pay_order(stack, admin, order_id)
        await _payload(stack.url("orders"), CANCEL, {"input": {"orderId": order_id}}, customer)
        results = await feed.wait(3)
        assert await feed.wait_end(10) is None  # cancelled: nothing more can happen, so it completes
    assert [(r["orderUpdated"]["type"], r["orderUpdated"]["order"]["status"]) for r in results] == [
        ("CREATED", "PENDING_PAYMENT"),
        ("PAID", "PAID"),
        ("CANCELLED", "CANCELLED"),
    ]


async def test_sales_stats_pushes_new_figures_after_an_order_is_paid(stack: ThreadedStack, admin: str) -> None:
    _, customer = await _customer(stack)
    product = await _product(stack, admin, price="7.25")
    async with subscription(stack.url("orders"), SALES_STATS, {"window": 5}, admin) as feed:
        before = (await feed.wait(1))[0]["salesStats"]
        order_id = await _checkout(stack, customer, product, quantity=3)
        # Revenue counts paid orders: a placed one changes nothing until it is paid.
        await pay_order(stack, admin, order_id)
        count = 2
        while (after := (await feed.wait(count, within=15))[-1]["salesStats"])["orderCount"] == before["orderCount"]:
            count += 1
    assert after["windowMinutes"] == 5
    assert after["orderCount"] == before["orderCount"] + 1
    assert float(after["revenue"]["amount"]) == pytest.approx(float(before["revenue"]["amount"]) + 21.75)
    assert {"quantity": 3, "revenue": {"amount": "21.75"}, "product": {"id": product}} in after["topProducts"]


# --- authorisation -----------------------------------------------------------------------------


async def _refused(url: str, query: str, variables: dict[str, Any], token: str | None) -> BaseException | None:
    async with subscription(url, query, variables, token) as feed:
        return await feed.wait_end(15)


def _codes(error: BaseException | None) -> str:
    return repr(error)


async def test_customers_cannot_follow_others_or_admin_streams(stack: ThreadedStack, admin: str) -> None:
    _, owner = await _customer(stack)
    _, other = await _customer(stack)
    order_id = await _checkout(stack, owner, await _product(stack, admin))
    url = stack.url("orders")
    assert "FORBIDDEN" in _codes(await _refused(url, ORDER_UPDATED, {"id": order_id}, other))
    assert "FORBIDDEN" in _codes(await _refused(url, ORDER_EVENTS, {}, other))
    assert "FORBIDDEN" in _codes(await _refused(url, SALES_STATS, {}, other))
    for query, variables in ((ORDER_EVENTS, {}), (ORDER_UPDATED, {"id": order_id}), (SALES_STATS, {})):
        assert "UNAUTHENTICATED" in _codes(await _refused(url, query, variables, None))


async def test_a_bad_token_closes_the_connection_with_a_reason(stack: ThreadedStack) -> None:
    error = await _refused(stack.url("orders"), ORDER_EVENTS, {}, "not-a-token")
    assert isinstance(error, TransportError | OSError), error
    assert "4401" in repr(error) or "Invalid token" in repr(error.__cause__ or error), repr(error)


async def test_the_connection_closes_when_the_token_expires(stack: ThreadedStack, orders_db: Database) -> None:
    token = mint_internal_token(stack.settings.service_secret, "router", user_id=uuid.uuid4(), role="ADMIN", ttl=2)
    after = await _newest_event(orders_db)
    async with subscription(stack.url("orders"), ORDER_EVENTS, {"after": str(after)}, token) as feed:
        event = await _emit(orders_db)
        assert _ids(await feed.wait(1)) == [event]
        error = await feed.wait_end(15)
    assert error is not None and ("4401" in repr(error) or "expired" in repr(error.__cause__)), repr(error)


async def test_the_connection_closes_when_the_admin_is_demoted(
    stack: ThreadedStack, orders_db: Database, demo_accounts: dict[str, tuple[str, str]]
) -> None:
    """An open orderEvents stream of an admin ends within seconds of the demotion, not at the token's expiry."""
    admin = await admin_token(stack, demo_accounts)
    account = await register(stack)
    set_role = "mutation($i: SetUserRoleInput!) { setUserRole(input: $i) { userErrors { code } } }"
    promote = {"i": {"userId": account.id, "role": "ADMIN"}}
    assert data(await gql(stack.url("users"), set_role, promote, admin))["setUserRole"]["userErrors"] == []
    promoted = await login(stack, account.email, account.password)
    after = await _newest_event(orders_db)
    async with subscription(stack.url("orders"), ORDER_EVENTS, {"after": str(after)}, promoted.access_token) as feed:
        event = await _emit(orders_db)
        assert _ids(await feed.wait(1)) == [event]
        demote = {"i": {"userId": account.id, "role": "CUSTOMER"}}
        assert data(await gql(stack.url("users"), set_role, demote, admin))["setUserRole"]["userErrors"] == []
        error = await feed.wait_end(REVOCATION_CHECK_SECONDS * 3)
    assert error is not None and ("4401" in repr(error) or "revoked" in repr(error.__cause__)), repr(error)


# --- faults: relay killed, Redis restarted -------------------------------------------------------


@contextlib.asynccontextmanager
async def _live_events(stack: ThreadedStack, db: Database, token: str) -> AsyncIterator[tuple[Feed, int]]:
    """An orderEvents subscription known to be live: it has received a marker event (whose id comes too)."""
    after = await _newest_event(db)
    async with subscription(stack.url("orders"), ORDER_EVENTS, {"after": str(after)}, token) as feed:
        marker = await _emit(db)
        assert _ids(await feed.wait(1)) == [marker]
        yield feed, marker


class _Relay:
    """``shopgraph relay`` as a child process (the apps' own relay is off)."""

    def __init__(self, stack: Stack, redis_url: str) -> None:
        assert stack.settings is not None
        self.env = os.environ | {
            "DATABASE_URL": stack.settings.database_url_for("orders"),
            "REDIS_URL": redis_url,
            "SHOPGRAPH_REDIS_PREFIX": stack.settings.redis_prefix,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "deploy.cli", "relay"],
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


class _FaultStack:
    def __init__(self, stack: ThreadedStack, redis: EmbeddedRedis, relay: _Relay) -> None:
        self.stack = stack
        self.redis = redis
        self.relay = relay

    def restart_redis(self, down_seconds: float = 0.5) -> None:
        """Stop Redis and start an empty one on the same port."""
        port = self.redis.port
        self.redis.stop()
        time.sleep(down_seconds)
        self.redis = EmbeddedRedis(port=port)
        self.redis.start()


@pytest.fixture(scope="module")
def faults() -> Iterator[_FaultStack]:
    """users + orders on a Redis of their own, published by a standalone relay."""
    redis = EmbeddedRedis()
    redis.start()
    stack = Stack(
        subgraphs=("users", "orders"),
        fresh_database=True,
        settings_overrides={"redis_url": redis.url, "outbox_relay": False},
    )
    fault: _FaultStack | None = None
    try:
        with stack.start_in_thread() as running:
            fault = _FaultStack(running, redis, _Relay(stack, redis.url))
            fault.relay.start()
            try:
                yield fault
            finally:
                fault.relay.stop()
    finally:
        (fault.redis if fault else redis).stop()


@pytest.fixture
async def fault_db(faults: _FaultStack) -> AsyncIterator[Database]:
    db = Database(faults.stack.settings.database_url_for("orders"), "orders", pool_size=5)
    yield db
    await db.dispose()


async def test_relay_killed_mid_burst_loses_and_repeats_nothing(faults: _FaultStack, fault_db: Database) -> None:
    token = _admin_token(faults.stack.settings.service_secret)
    async with _live_events(faults.stack, fault_db, token) as (feed, marker):
        producing = asyncio.create_task(_burst(fault_db, 200, pause=0.02))
        await feed.wait(30)
        faults.relay.kill()  # SIGKILL: no clean-up, maybe between XADD and marking rows published
        await until(lambda: _unpublished(fault_db), what="events waiting for a relay")
        faults.relay.start()
        emitted = [marker, *sorted(await asyncio.wait_for(producing, 60))]
        received = _ids(await feed.wait(201, within=60))
        # A last event, delivered in order after everything before it: a duplicate would come first.
        fence = await _emit(fault_db)
        assert _ids(await feed.wait(202, within=60)) == [*received, fence]
    assert received == emitted


async def test_redis_restart_loses_nothing(faults: _FaultStack, fault_db: Database) -> None:
    token = _admin_token(faults.stack.settings.service_secret)
    async with _live_events(faults.stack, fault_db, token) as (feed, marker):
        producing = asyncio.create_task(_burst(fault_db, 100, pause=0.02))
        await feed.wait(20)
        await asyncio.to_thread(faults.restart_redis)  # comes back empty: nothing is kept on disk
        emitted = [marker, *sorted(await asyncio.wait_for(producing, 60))]
        received = _ids(await feed.wait(101, within=60))
        fence = await _emit(fault_db)  # delivered in order: a duplicate would come before it
        assert _ids(await feed.wait(102, within=60)) == [*received, fence]
    assert received == emitted
    # A subscriber arriving after the restart resumes from PostgreSQL, not the emptied stream.
    async with subscription(faults.stack.url("orders"), ORDER_EVENTS, {"after": str(marker - 1)}, token) as feed:
        assert _ids(await feed.wait(101)) == emitted


async def test_multipart_http_subscriptions_are_authorised_too(stack: ThreadedStack) -> None:
    """The subgraph also streams subscriptions over multipart HTTP; the same rules apply."""
    customer = mint_internal_token(stack.settings.service_secret, "router", user_id=uuid.uuid4(), role="CUSTOMER")
    headers = {"Authorization": f"Bearer {customer}", "Accept": 'multipart/mixed;subscriptionSpec="1.0"'}
    async with httpx.AsyncClient(timeout=15) as client:
        response = await client.post(
            stack.url("orders"), json={"query": "subscription { orderEvents { id } }"}, headers=headers
        )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("multipart/mixed")
    assert '"FORBIDDEN"' in response.text and '"orderEvents"' not in response.text.split("errors")[0]


async def test_a_subscription_over_plain_http_is_a_clear_400(stack: ThreadedStack, admin: str) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(
            stack.url("orders"),
            json={"query": "subscription { orderEvents { id } }"},
            headers={"Authorization": f"Bearer {admin}"},
        )
    assert response.status_code == 400
    assert "multipart" in response.text and "WebSocket" in response.text
