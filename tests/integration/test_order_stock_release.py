"""Stock that no order keeps goes back on sale, whatever fails: abandoned checkouts and cancels whose
release did not get through are swept by the orders app's background sweeper.

These tests run on a small stack of their own whose sweeper passes every 0.2 s and treats a pending
checkout as abandoned after 1 s; catalog outages are real refused connections.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Awaitable, Callable, Iterator

import pytest
from sqlalchemy import text

from deploy.stack import Stack, ThreadedStack
from subgraphs.kit.service_client import ServiceClient
from subgraphs.orders.service import RESERVATION_NAMESPACE, Orders
from tests.integration.helpers import data, internal_token, register, stock_of
from tests.integration.shop_helpers import (
    cancel,
    checkout,
    fill_cart,
    get_cart,
    orders_of,
    place_order,
    product,
    sql,
)
from tests.support.graphql import gql
from tests.support.wait import until

SWEEP_SECONDS = 0.2
PENDING_SECONDS = 1.0

RESERVE = """
    mutation($input: ReserveStockInput!) { reserveStock(input: $input) { lines { quantity } userErrors { code } } }
"""


@pytest.fixture(scope="module")
def sweeping() -> Iterator[ThreadedStack]:
    """All four subgraphs on a fresh database, the orders sweeper on a short clock."""
    with pytest.MonkeyPatch.context() as env:  # read by the orders app when it is created
        env.setenv("SHOPGRAPH_ORDERS_SWEEP_SECONDS", str(SWEEP_SECONDS))
        env.setenv("SHOPGRAPH_ORDERS_PENDING_CHECKOUT_SECONDS", str(PENDING_SECONDS))
        running = Stack(fresh_database=True).start_in_thread()
    with running:
        yield running


@pytest.fixture
def admin(sweeping: ThreadedStack) -> str:
    """An administrator as the router forwards one (this stack has no seeded accounts)."""
    return internal_token(sweeping, "router", user_id=str(uuid.uuid4()), role="ADMIN")


async def sweeper_passes(stack: ThreadedStack, passes: int = 2) -> None:
    """Wait until the orders sweeper has run ``passes`` whole passes from now (what it would do, it did).

    Each pass begins with its claim on ``pending_checkouts`` (``FOR UPDATE SKIP LOCKED``), seen
    through the orders database's statement observers: ``passes + 1`` beginnings from now
    hold ``passes`` whole passes."""
    statements = stack.apps["orders"].state.runtime.db.statements
    began: list[str] = []

    def observe(sql: str) -> None:
        if "pending_checkouts" in sql and "SKIP LOCKED" in sql:
            began.append(sql)

    statements.observers.append(observe)
    try:
        await until(lambda: len(began) > passes, what=f"{passes} sweeper passes")
    finally:
        statements.observers.remove(observe)


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 30.0) -> None:
    await until(check, within=within, every=0.1, what="the release")


async def pending_rows(stack: ThreadedStack, reservation_id: uuid.UUID) -> int:
    async with sql(stack, "orders") as conn:
        query = text("SELECT count(*) FROM pending_checkouts WHERE reservation_id = :r")
        return int((await conn.execute(query, {"r": reservation_id})).scalar_one())


async def note_pending(stack: ThreadedStack, reservation_id: uuid.UUID, user_id: str, key: str) -> None:
    """What a checkout writes before it reserves (here: for one that then "dies")."""
    async with sql(stack, "orders") as conn:
        await conn.execute(
            text("INSERT INTO pending_checkouts (reservation_id, user_id, idempotency_key) VALUES (:r, :u, :k)"),
            {"r": reservation_id, "u": uuid.UUID(user_id), "k": key},
        )


async def stock_released_at(stack: ThreadedStack, order_id: str) -> object:
    async with sql(stack, "orders") as conn:
        query = text("SELECT stock_released_at FROM orders WHERE id = :o")
        return (await conn.execute(query, {"o": uuid.UUID(order_id)})).scalar_one()


async def test_an_abandoned_checkout_gives_its_stock_back_and_its_retry_still_works(
    sweeping: ThreadedStack, admin: str
) -> None:
    shopper = await register(sweeping)
    item = await product(sweeping, admin, stock=5)
    await fill_cart(sweeping, shopper.access_token, {item["id"]: 2})
    key = uuid.uuid4().hex
    reservation = uuid.uuid5(RESERVATION_NAMESPACE, f"{shopper.id}:{key}")
    # The checkout noted itself and reserved the stock, then its process died: no order.
    await note_pending(sweeping, reservation, shopper.id, key)
    variables = {"input": {"reservationId": str(reservation), "lines": [{"productId": item["id"], "quantity": 2}]}}
    reserved = data(await gql(sweeping.url("catalog"), RESERVE, variables, internal_token(sweeping, "orders")))
    assert reserved["reserveStock"]["userErrors"] == []
    assert await stock_of(sweeping, admin, item["id"]) == 3

    async def released() -> bool:
        return await stock_of(sweeping, admin, item["id"]) == 5 and await pending_rows(sweeping, reservation) == 0

    await eventually(released)
    assert await orders_of(sweeping, shopper.id) == 0

    # The shopper retries with the same key: catalog takes the released reservation's stock again.
    payload = await checkout(sweeping, shopper.access_token, key)
    assert payload["userErrors"] == []
    assert payload["order"]["items"][0]["quantity"] == 2
    assert await stock_of(sweeping, admin, item["id"]) == 3
    assert (await get_cart(sweeping, shopper.access_token))["items"] == []
    assert await pending_rows(sweeping, reservation) == 0  # deleted with the order's insert
    # The sweeper leaves an order's stock alone.
    await sweeper_passes(sweeping)
    assert await stock_of(sweeping, admin, item["id"]) == 3
    assert await orders_of(sweeping, shopper.id) == 1


async def test_a_leftover_pending_row_of_a_placed_order_is_dropped_without_releasing(
    sweeping: ThreadedStack, admin: str
) -> None:
    """A losing same-key attempt leaves its row behind; the order that won keeps the stock."""
    shopper = await register(sweeping)
    item = await product(sweeping, admin, stock=5)
    await fill_cart(sweeping, shopper.access_token, {item["id"]: 2})
    key = uuid.uuid4().hex
    assert (await checkout(sweeping, shopper.access_token, key))["userErrors"] == []
    reservation = uuid.uuid5(RESERVATION_NAMESPACE, f"{shopper.id}:{key}")
    await note_pending(sweeping, reservation, shopper.id, key)

    async def dropped() -> bool:
        return await pending_rows(sweeping, reservation) == 0

    await eventually(dropped)
    assert await stock_of(sweeping, admin, item["id"]) == 3


async def test_a_failed_attempt_never_releases_the_stock_of_the_order_its_key_placed(
    sweeping: ThreadedStack, admin: str
) -> None:
    """B3: the clean-up of an attempt that lost (or failed) checks that no order holds the reservation."""
    shopper = await register(sweeping)
    item = await product(sweeping, admin, stock=5)
    order = await place_order(sweeping, shopper.access_token, {item["id"]: 2})
    key_of = "SELECT idempotency_key, reservation_id FROM orders WHERE id = :o"
    async with sql(sweeping, "orders") as conn:
        row = (await conn.execute(text(key_of), {"o": uuid.UUID(order["id"])})).one()
    await note_pending(sweeping, row.reservation_id, shopper.id, row.idempotency_key)

    async def give_back() -> None:
        runtime = sweeping.apps["orders"].state.runtime
        orders = Orders(runtime.db, runtime.client("catalog"), runtime.client("cart"))
        await orders._give_back(row.reservation_id)

    sweeping.run(give_back())
    assert await stock_of(sweeping, admin, item["id"]) == 3


async def test_a_cancel_whose_release_fails_is_cancelled_and_released_once_catalog_is_back(
    sweeping: ThreadedStack, admin: str
) -> None:
    shopper = await register(sweeping)
    item = await product(sweeping, admin, stock=5)
    order = await place_order(sweeping, shopper.access_token, {item["id"]: 2})
    assert await stock_of(sweeping, admin, item["id"]) == 3

    runtime = sweeping.apps["orders"].state.runtime
    catalog = runtime.clients["catalog"]
    with socket.socket() as closed:  # bound, never listening: connections to it are refused
        closed.bind(("127.0.0.1", 0))
        down = ServiceClient(
            target="catalog",
            url=f"http://127.0.0.1:{closed.getsockname()[1]}/graphql",
            caller="orders",
            secret=sweeping.settings.service_secret,
        )

        async def point_orders_at(client: ServiceClient) -> None:
            runtime.clients["catalog"] = client

        sweeping.run(point_orders_at(down))
        try:
            payload = await cancel(sweeping, shopper.access_token, order["id"])
            assert payload["userErrors"] == []
            assert payload["order"]["status"] == "CANCELLED"
            await sweeper_passes(sweeping)  # the sweeper tries, and fails, meanwhile
            assert await stock_of(sweeping, admin, item["id"]) == 3
            assert await stock_released_at(sweeping, order["id"]) is None
        finally:
            sweeping.run(point_orders_at(catalog))
            sweeping.run(down.close())

    async def released() -> bool:
        return (
            await stock_of(sweeping, admin, item["id"]) == 5
            and await stock_released_at(sweeping, order["id"]) is not None
        )

    await eventually(released)
    await sweeper_passes(sweeping)  # and only once
    assert await stock_of(sweeping, admin, item["id"]) == 5
    shopper_view = data(
        await gql(
            sweeping.url("orders"), "{ orders(first: 5) { edges { node { status } } } }", None, shopper.access_token
        )
    )
    assert [e["node"]["status"] for e in shopper_view["orders"]["edges"]] == ["CANCELLED"]


async def test_a_cancel_releases_right_away_when_catalog_answers(sweeping: ThreadedStack, admin: str) -> None:
    shopper = await register(sweeping)
    item = await product(sweeping, admin, stock=5)
    order = await place_order(sweeping, shopper.access_token, {item["id"]: 2})
    assert (await cancel(sweeping, shopper.access_token, order["id"]))["userErrors"] == []
    assert await stock_of(sweeping, admin, item["id"]) == 5
    assert await stock_released_at(sweeping, order["id"]) is not None
