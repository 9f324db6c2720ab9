"""The order saga under faults: orders, payments, the relay and the notifications worker killed
(SIGKILL) at random points during 50 checkouts, run as compose.yaml runs them
(tests/support/compose_processes.py), the worker sending to an SMTP sink of the test's own
(aiosmtpd on 127.0.0.1, a free port).

Afterwards every order is paid-and-captured or cancelled-and-released (never
both), every captured payment belongs to a paid order (or was refunded in full
with its order cancelled), the product's stock is its initial stock minus
the quantities of the paid orders, and every paid order had exactly one
confirmation mail (a cancelled one none).
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from deploy.devmail import CaughtMail, MailSink
from deploy.embedded import backing_services
from deploy.stack import create_database, delete_redis_keys, drop_database
from subgraphs.kit.db import async_url
from tests.support.compose_processes import ComposeProcesses
from tests.support.payments import CARD_DECLINED, CARD_OK

CHECKOUTS = 50
CONCURRENCY = 6
# A killed service is back once its process has started again (seconds on a quiet machine).
RETRY_SECONDS = 180
STOCK = 500
VICTIMS = ("orders", "payments", "relay", "notifications")
EXTRA_KILLS = 2
# Short saga deadlines: unpaid orders are given up within seconds, quiet payments looked up.
SAGA = {
    "SHOPGRAPH_ORDERS_PAYMENT_SECONDS": "6",
    "SHOPGRAPH_ORDERS_SWEEP_SECONDS": "0.5",
    "SHOPGRAPH_ORDERS_PENDING_CHECKOUT_SECONDS": "3",
    "SHOPGRAPH_PAYMENTS_RECONCILE_SECONDS": "0.5",
    "SHOPGRAPH_PAYMENTS_STALE_SECONDS": "1",
}
ADDRESS = {"name": "Chaos Shopper", "line1": "1 Fault Lane", "city": "Leeds", "postalCode": "LS1 1AA", "country": "GB"}
CHECKOUT = """
mutation($i: CheckoutInput!) {
  checkout(input: $i) { order { id status payment { nextActionUrl status } } userErrors { code message } }
}
"""
ORDER = "query($id: ID!) { order(id: $id) { id status payment { nextActionUrl status } } }"


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeProcesses]:
    with backing_services() as (server_url, redis_url):
        database_url = asyncio.run(create_database(server_url))
        prefix = f"shopgraph_test_{secrets.token_hex(6)}:"
        # No defaults for these in compose (it refuses to start without them); the demo profile seeds the
        # admin this test signs in as and the catalog it buys from.
        shell = {"SHOPGRAPH_SERVICE_SECRET": secrets.token_hex(32), "POSTGRES_PASSWORD": secrets.token_hex(12)}
        processes = ComposeProcesses(
            database_url,
            redis_url,
            prefix,
            tmp_path_factory.mktemp("saga-faults"),
            shell,
            profiles=frozenset({"demo"}),
            # orders and payments with the short deadlines. The shipped router runs safelisted
            # storefront operations only; this client is a script of its own operations (the
            # safelist has its test in test_compose_processes).
            changes={"orders": SAGA, "payments": SAGA, "router": {"SHOPGRAPH_SAFELIST": "allow"}},
        )
        try:
            with processes:
                yield processes
        finally:
            asyncio.run(drop_database(database_url))
            asyncio.run(delete_redis_keys(redis_url, prefix))


async def _call(url: str, query: str, variables: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(timeout=15, trust_env=False) as client:
        response = await client.post(url, json={"query": query, "variables": variables}, headers=headers)
    body: dict[str, Any] = response.json()
    return body


async def _retry(url: str, query: str, variables: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    """A client that retries (the same request, the same idempotency key) while a service is down."""
    deadline = time.monotonic() + RETRY_SECONDS
    while True:
        try:
            body = await _call(url, query, variables, token)
            if "errors" not in body:
                return body["data"]  # type: ignore[no-any-return]
            last: object = body["errors"]
        except (httpx.HTTPError, ValueError) as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"no answer within {RETRY_SECONDS} s: {last}")
        await asyncio.sleep(0.3)


class Chaos:
    """Kills a random participant now and then and starts it again (SIGKILL: no clean shutdown).

    ``changes``: the environment each one is started again with (the saga's deadlines, the SMTP sink)."""

    def __init__(self, shop: ComposeProcesses, seed: int, changes: dict[str, dict[str, str]]) -> None:
        self.shop = shop
        self.random = random.Random(seed)
        self.kills: list[str] = []
        self.changes = changes

    async def run(self, done: asyncio.Event) -> None:
        """Each of orders, payments, the relay and the notifications worker once, in a random order
        at random points, then a few more while the checkouts are still running."""
        plan = list(VICTIMS)
        self.random.shuffle(plan)
        plan += [self.random.choice(VICTIMS) for _ in range(EXTRA_KILLS)]
        for number, victim in enumerate(plan):
            await asyncio.sleep(self.random.uniform(0.3, 2.0))
            if number >= len(VICTIMS) and done.is_set():
                return
            instance = self.shop.instances.pop(victim)
            instance.process.kill()
            instance.process.wait()
            self.kills.append(victim)
            await asyncio.sleep(self.random.uniform(0.2, 1.5))
            await self._restart(victim)

    async def _restart(self, victim: str) -> None:
        changes = self.changes.get(victim, {})
        for attempt in range(3):
            try:
                await asyncio.to_thread(self.shop.start, victim, changes=changes)
                return
            except AssertionError:
                if attempt == 2:
                    raise
                self.shop.instances.pop(victim, None)


async def _one(router: str, token: str, product: str, rng: random.Random) -> tuple[str, int, str]:
    quantity = rng.randint(1, 3)
    add = "mutation($i: AddToCartInput!) { addToCart(input: $i) { userErrors { code } } }"
    added = await _retry(router, add, {"i": {"productId": product, "quantity": quantity}}, token)
    assert added["addToCart"]["userErrors"] == [], added
    key = secrets.token_hex(8)
    got = (await _retry(router, CHECKOUT, {"i": {"idempotencyKey": key, "shippingAddress": ADDRESS}}, token))[
        "checkout"
    ]
    assert got["userErrors"] == [], got
    order = got["order"]
    plan = rng.choices(["pay", "decline", "abandon"], weights=[6, 2, 2])[0]
    if plan == "abandon":
        return order["id"], quantity, plan
    deadline = time.monotonic() + 30
    while order["payment"] is None or order["payment"]["nextActionUrl"] is None:  # payments was down at checkout
        if time.monotonic() > deadline or (order["payment"] and order["payment"]["status"] != "PENDING"):
            return order["id"], quantity, "abandon"
        await asyncio.sleep(0.3)
        order = (await _retry(router, ORDER, {"id": order["id"]}, token))["order"]
    url = order["payment"]["nextActionUrl"]
    card = CARD_OK if plan == "pay" else CARD_DECLINED
    form = {"secret": httpx.URL(url).params["secret"], "card_number": card, "cvc": "123", "return_to": "/orders"}
    while time.monotonic() < deadline:
        try:
            async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
                answer = await client.post(url.split("?")[0], data=form)
            if answer.status_code in (200, 303):
                break
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.3)
    return order["id"], quantity, plan


async def _rows(database_url: str, schema: str, query: str) -> list[Any]:
    engine = create_async_engine(async_url(database_url), connect_args={"server_settings": {"search_path": schema}})
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(query))).all())
    finally:
        await engine.dispose()


async def test_fifty_checkouts_with_participants_killed_converge(shop: ComposeProcesses) -> None:
    router = shop.url("router")
    sink = await MailSink(limit=CHECKOUTS * 4).start()
    try:
        await _checkouts_under_chaos(shop, router, sink)
    finally:
        await sink.stop()


async def _checkouts_under_chaos(shop: ComposeProcesses, router: str, sink: MailSink) -> None:
    # The worker sends to this test's sink (compose points it at its mail catcher).
    smtp = {"SHOPGRAPH_SMTP_HOST": "127.0.0.1", "SHOPGRAPH_SMTP_PORT": str(sink.port)}
    await asyncio.to_thread(shop.stop, "notifications")
    await asyncio.to_thread(shop.start, "notifications", changes=smtp)
    admin = (
        await _retry(
            router,
            'mutation { login(input: {email: "admin@shopgraph.dev", password: "admin-demo-pass"}) { accessToken } }',
            {},
        )
    )["login"]["accessToken"]
    category = (await _retry(router, "{ categories { id } }", {}))["categories"][0]["id"]
    tag = secrets.token_hex(4).upper()
    create = "mutation($i: CreateProductInput!) { createProduct(input: $i) { product { id } userErrors { code } } }"
    product = {
        "sku": f"CHAOS-{tag}",
        "name": f"Chaos {tag}",
        "description": "Survives.",
        "price": "7.00",
        "stock": STOCK,
        "imageUrl": f"https://img.example/{tag}.jpg",
        "categoryId": category,
    }
    product_id = (await _retry(router, create, {"i": product}, admin))["createProduct"]["product"]["id"]
    register = "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }"
    shoppers = [
        (
            await _retry(
                router,
                register,
                {
                    "i": {
                        "email": f"chaos-{secrets.token_hex(5)}@example.com",
                        "password": "a long chaos secret",
                        "name": "Chaos",
                    }
                },
            )
        )["register"]["accessToken"]
        for _ in range(CONCURRENCY)
    ]
    seed = random.randrange(1 << 30)
    chaos = Chaos(shop, seed, {"orders": SAGA, "payments": SAGA, "notifications": smtp})
    rng = random.Random(seed)
    results: list[tuple[str, int, str]] = []

    async def shopper_loop(token: str, count: int) -> None:
        for _ in range(count):
            results.append(await _one(router, token, product_id, rng))

    per = [CHECKOUTS // CONCURRENCY + (1 if i < CHECKOUTS % CONCURRENCY else 0) for i in range(CONCURRENCY)]
    finished = asyncio.Event()
    chaos_task = asyncio.create_task(chaos.run(finished))
    try:
        await asyncio.gather(*(shopper_loop(t, n) for t, n in zip(shoppers, per, strict=True)))
    finally:
        finished.set()
        await chaos_task
    assert len(results) == CHECKOUTS
    print(f"seed {seed}; killed {chaos.kills}; plans {[p for _, _, p in results]}")

    ids = ", ".join(f"'{order_id}'" for order_id, _, _ in results)
    url = shop.database_url

    async def settled() -> list[Any]:
        return await _rows(
            url, "orders", f"SELECT id, status, stock_released_at, total_minor FROM orders WHERE id IN ({ids})"
        )

    deadline = time.monotonic() + 60
    while True:
        orders = await settled()
        payments = {
            r.order_id: r for r in await _rows(url, "payments", f"SELECT * FROM payments WHERE order_id IN ({ids})")
        }
        done = all(
            (o.status == "PAID" and payments.get(o.id) is not None and payments[o.id].status == "CAPTURED")
            or (
                o.status == "CANCELLED"
                and o.stock_released_at is not None
                and (payments.get(o.id) is None or payments[o.id].captured_minor == payments[o.id].refunded_minor)
                and (
                    payments.get(o.id) is None
                    or payments[o.id].status in ("FAILED", "CANCELLED", "CAPTURED", "PENDING")
                )
            )
            for o in orders
        )
        if done:
            break
        assert time.monotonic() < deadline, [
            (o.status, o.stock_released_at, payments.get(o.id) and payments[o.id].status)
            for o in orders
            if o.status not in ("PAID", "CANCELLED")
        ]
        await asyncio.sleep(0.5)

    quantity = {order_id: q for order_id, q, _ in results}
    paid = [o for o in orders if o.status == "PAID"]
    for order in paid:
        payment = payments[order.id]
        assert (payment.captured_minor, payment.refunded_minor) == (order.total_minor, 0)
    for order in orders:
        if order.status == "CANCELLED" and order.id in payments:
            payment = payments[order.id]
            assert payment.captured_minor == payment.refunded_minor  # nothing kept for a cancelled order
    captures = await _rows(
        url,
        "payments",
        "SELECT payment_id, count(*) AS n FROM payment_history WHERE kind = 'captured' GROUP BY payment_id",
    )
    assert all(r.n == 1 for r in captures)
    stock = (await _rows(url, "catalog", f"SELECT stock FROM products WHERE id = '{product_id}'"))[0].stock
    assert stock == STOCK - sum(quantity[str(o.id)] for o in paid)
    plans = {order_id: plan for order_id, _, plan in results}
    assert all(plans[str(o.id)] == "pay" for o in paid)  # declined and abandoned orders were never paid
    print(f"{len(paid)} paid, {len(orders) - len(paid)} cancelled; {len(chaos.kills)} kills")

    # Mail: exactly one confirmation per paid order, none for a cancelled one. The worker records
    # each message before sending it and sends it with the same Message-ID every attempt: a kill
    # between the SMTP server's "250" and "sent" being recorded resends the same message, which
    # a receiver drops by its Message-ID (the sink counts both, to show it).
    numbers = {
        r.id: f"SG-{r.number}" for r in await _rows(url, "orders", f"SELECT id, number FROM orders WHERE id IN ({ids})")
    }

    def confirmations() -> dict[str, list[CaughtMail]]:
        by_number: dict[str, list[CaughtMail]] = {}
        for mail in sink.mails:
            if "is confirmed" in mail.subject:
                number = mail.subject.split("Your order ", 1)[1].split(" ", 1)[0]
                by_number.setdefault(number, []).append(mail)
        return by_number

    deadline = time.monotonic() + 90
    while not {numbers[o.id] for o in paid} <= set(confirmations()):
        missing = {numbers[o.id] for o in paid} - set(confirmations())
        assert time.monotonic() < deadline, f"no confirmation for {sorted(missing)}"
        await asyncio.sleep(0.5)
    await asyncio.sleep(2)  # room for a wrong second mail
    sent = confirmations()
    cancelled_numbers = {numbers[o.id] for o in orders if o.status == "CANCELLED"}
    assert not cancelled_numbers & set(sent), sorted(cancelled_numbers & set(sent))
    for order in paid:
        mails = sent[numbers[order.id]]
        assert len({str(m.message["Message-ID"]) for m in mails}) == 1, [m.subject for m in mails]
    assert set(sent) == {numbers[o.id] for o in paid}
    resent = sum(len(m) - 1 for m in sent.values())
    print(f"{len(sent)} confirmations for {len(paid)} paid orders ({resent} resent under the same Message-ID)")
