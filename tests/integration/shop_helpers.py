"""Helpers for the cart and orders integration tests: carts, checkouts, orders, and SQL reads.

Everything a test *does* goes through the running subgraphs over HTTP. SQL is
only used to assert on what was stored (the outbox, row counts) and, in the
query-count tests, to insert many orders quickly as test setup.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from deploy.stack import ThreadedStack
from subgraphs.kit.db import Database
from tests.integration.helpers import Account, create_product, data, register
from tests.support.graphql import gql

T = TypeVar("T")

USER_ERRORS = "userErrors { code field message }"
CART_FIELDS = """
    id updatedAt totalQuantity
    subtotal { amount currencyCode }
    items { id quantity available product { id } unitPrice { amount currencyCode } lineTotal { amount currencyCode } }
"""
CART = f"{{ cart {{ {CART_FIELDS} }} }}"
CART_PAYLOAD = f"cart {{ {CART_FIELDS} }} {USER_ERRORS}"
ADD_TO_CART = f"mutation($input: AddToCartInput!) {{ addToCart(input: $input) {{ {CART_PAYLOAD} }} }}"
UPDATE_CART_ITEM = f"mutation($input: UpdateCartItemInput!) {{ updateCartItem(input: $input) {{ {CART_PAYLOAD} }} }}"
REMOVE_FROM_CART = f"mutation($input: RemoveFromCartInput!) {{ removeFromCart(input: $input) {{ {CART_PAYLOAD} }} }}"
CLEAR_CART = f"mutation {{ clearCart {{ {CART_PAYLOAD} }} }}"
COMPLETE_CHECKOUT = """
    mutation($input: CompleteCheckoutInput!) { completeCheckout(input: $input) { removed } }
"""

ORDER_FIELDS = """
    id number status createdAt updatedAt itemCount
    subtotal { amount currencyCode } total { amount currencyCode }
    shippingAddress { name line1 line2 city region postalCode country phone }
    items { id sku name quantity product { id } unitPrice { amount currencyCode } lineTotal { amount currencyCode } }
    user { id }
"""
ORDER_PAYLOAD = f"order {{ {ORDER_FIELDS} }} {USER_ERRORS}"
CHECKOUT = f"mutation($input: CheckoutInput!) {{ checkout(input: $input) {{ {ORDER_PAYLOAD} }} }}"
CANCEL_ORDER = f"mutation($input: CancelOrderInput!) {{ cancelOrder(input: $input) {{ {ORDER_PAYLOAD} }} }}"
UPDATE_ORDER_STATUS = (
    f"mutation($input: UpdateOrderStatusInput!) {{ updateOrderStatus(input: $input) {{ {ORDER_PAYLOAD} }} }}"
)
ORDER_BY_ID = f"query($id: ID!) {{ order(id: $id) {{ {ORDER_FIELDS} }} }}"
ORDER_BY_NUMBER = f"query($number: String!) {{ order(number: $number) {{ {ORDER_FIELDS} }} }}"
MY_ORDERS = "query($first: Int) { orders(first: $first) { totalCount edges { node { id number status } } } }"
ALL_ORDERS = """
    query($first: Int, $status: OrderStatus) {
        allOrders(first: $first, status: $status) { totalCount edges { node { id status user { id } } } }
    }
"""

ADDRESS: dict[str, Any] = {
    "name": "Ada Lovelace",
    "line1": "12 Analytical Row",
    "line2": "Flat 3",
    "city": "London",
    "region": None,
    "postalCode": "N1 9GU",
    "country": "gb",
    "phone": "+44 20 7946 0000",
}


def entities_query(selection: str) -> str:
    return f"query($reps: [_Any!]!) {{ _entities(representations: $reps) {{ {selection} }} }}"


async def gather_limited(jobs: list[Awaitable[T]], limit: int = 25) -> list[T]:
    """``asyncio.gather`` with at most ``limit`` jobs in flight (registrations hash passwords)."""
    gate = asyncio.Semaphore(limit)

    async def one(job: Awaitable[T]) -> T:
        async with gate:
            return await job

    return list(await asyncio.gather(*(one(j) for j in jobs)))


async def customers(stack: ThreadedStack, n: int, client: httpx.AsyncClient | None = None) -> list[Account]:
    """``n`` new signed-in customers, registered in parallel."""
    return await gather_limited([register(stack, client=client) for _ in range(n)])


async def product(stack: ThreadedStack, admin: str, *, price: str = "10.00", stock: int = 5) -> dict[str, Any]:
    """A new active product with a unique SKU."""
    return await create_product(stack, admin, price=price, stock=stock)


# --- cart ------------------------------------------------------------------------------


async def cart_call(
    stack: ThreadedStack,
    token: str | None,
    query: str,
    variables: dict[str, Any] | None = None,
    client: httpx.AsyncClient | None = None,
) -> dict[str, Any]:
    """Run a cart mutation; return its payload (``cart`` + ``userErrors``)."""
    payload: dict[str, Any] = next(
        iter(data(await gql(stack.url("cart"), query, variables, token, client=client)).values())
    )
    return payload


async def add_to_cart(
    stack: ThreadedStack, token: str, product_id: str, quantity: int = 1, client: httpx.AsyncClient | None = None
) -> dict[str, Any]:
    return await cart_call(
        stack, token, ADD_TO_CART, {"input": {"productId": product_id, "quantity": quantity}}, client=client
    )


async def fill_cart(stack: ThreadedStack, token: str, lines: dict[str, int]) -> dict[str, Any]:
    """Add each product id with its quantity; every add must succeed. Returns the last cart."""
    cart: dict[str, Any] = {}
    for product_id, quantity in lines.items():
        payload = await add_to_cart(stack, token, product_id, quantity)
        assert payload["userErrors"] == [], payload
        cart = payload["cart"]
    return cart


async def get_cart(stack: ThreadedStack, token: str, client: httpx.AsyncClient | None = None) -> dict[str, Any]:
    cart: dict[str, Any] = data(await gql(stack.url("cart"), CART, None, token, client=client))["cart"]
    return cart


def lines_of(cart: dict[str, Any]) -> dict[str, int]:
    """product id -> quantity of a cart as the graph returns it."""
    return {item["product"]["id"]: item["quantity"] for item in cart["items"]}


# --- orders ----------------------------------------------------------------------------


async def checkout(
    stack: ThreadedStack,
    token: str,
    key: str | None = None,
    address: dict[str, Any] | None = None,
    client: httpx.AsyncClient | None = None,
) -> dict[str, Any]:
    """The checkout payload (``order`` + ``userErrors``)."""
    variables = {"input": {"idempotencyKey": key or uuid.uuid4().hex, "shippingAddress": address or ADDRESS}}
    payload: dict[str, Any] = data(await gql(stack.url("orders"), CHECKOUT, variables, token, client=client))[
        "checkout"
    ]
    return payload


async def place_order(stack: ThreadedStack, token: str, lines: dict[str, int]) -> dict[str, Any]:
    """Fill the cart with ``lines`` and check out; the order must be placed."""
    await fill_cart(stack, token, lines)
    payload = await checkout(stack, token)
    assert payload["userErrors"] == [], payload
    order: dict[str, Any] = payload["order"]
    return order


async def set_status(stack: ThreadedStack, token: str, order_id: str, status: str) -> dict[str, Any]:
    """The full ``updateOrderStatus`` result (``errors`` for a refused caller)."""
    variables = {"input": {"orderId": order_id, "status": status}}
    return await gql(stack.url("orders"), UPDATE_ORDER_STATUS, variables, token)


async def cancel(stack: ThreadedStack, token: str, order_id: str) -> dict[str, Any]:
    payload: dict[str, Any] = data(
        await gql(stack.url("orders"), CANCEL_ORDER, {"input": {"orderId": order_id}}, token)
    )["cancelOrder"]
    return payload


async def order_by_id(stack: ThreadedStack, token: str, order_id: str) -> dict[str, Any] | None:
    order: dict[str, Any] | None = data(await gql(stack.url("orders"), ORDER_BY_ID, {"id": order_id}, token))["order"]
    return order


# --- SQL (assertions and bulk set-up only) ---------------------------------------------------


@asynccontextmanager
async def sql(stack: ThreadedStack, schema: str) -> AsyncIterator[AsyncConnection]:
    """A transaction on ``schema`` through an engine of the test's own (not the subgraph's, so its
    statement counter stays untouched)."""
    db = Database(stack.settings.database_url_for(schema), schema, pool_size=1)
    try:
        async with db.transaction() as conn:
            yield conn
    finally:
        await db.dispose()


async def orders_containing(stack: ThreadedStack, product_id: str) -> int:
    """How many orders have a line of this product."""
    async with sql(stack, "orders") as conn:
        query = text("SELECT count(DISTINCT order_id) FROM order_items WHERE product_id = :p")
        return int((await conn.execute(query, {"p": uuid.UUID(product_id)})).scalar_one())


async def orders_of(stack: ThreadedStack, user_id: str) -> int:
    async with sql(stack, "orders") as conn:
        query = text("SELECT count(*) FROM orders WHERE user_id = :u")
        return int((await conn.execute(query, {"u": uuid.UUID(user_id)})).scalar_one())


async def insert_orders(stack: ThreadedStack, user_ids: list[uuid.UUID], per_user: int, items_per_order: int) -> None:
    """``per_user`` PENDING_PAYMENT orders of ``items_per_order`` lines each for every user, straight into the orders
    schema (bulk test set-up; the checkout path has tests of its own)."""
    async with sql(stack, "orders") as conn:
        order_ids = (
            (
                await conn.execute(
                    text(
                        """
                    INSERT INTO orders (user_id, idempotency_key, reservation_id, currency,
                                        subtotal_minor, total_minor, shipping_address, created_at)
                    SELECT u, 'bulk-' || gen_random_uuid(), gen_random_uuid(), 'USD',
                           :per * 250, :per * 250, '{"name": "Bulk", "line1": "1 Main St", "city": "Springfield",
                           "postal_code": "12345", "country": "US"}'::jsonb,
                           now() - make_interval(secs => g)
                    FROM unnest(CAST(:users AS uuid[])) AS u, generate_series(1, :n) AS g
                    RETURNING id
                    """
                    ),
                    {"users": user_ids, "n": per_user, "per": items_per_order},
                )
            )
            .scalars()
            .all()
        )
        await conn.execute(
            text(
                """
                INSERT INTO order_items (order_id, position, product_id, variant_id, sku, name,
                                         unit_price_minor, quantity)
                SELECT o, p, gen_random_uuid(), gen_random_uuid(), 'BULK-' || p, 'Bulk item ' || p, 250, 1
                FROM unnest(CAST(:orders AS uuid[])) AS o, generate_series(0, :per - 1) AS p
                """
            ),
            {"orders": list(order_ids), "per": items_per_order},
        )


def statements(stack: ThreadedStack, subgraph: str) -> int:
    """SQL statements the subgraph's own engine has run so far."""
    count: int = stack.apps[subgraph].state.runtime.db.statements.count
    return count


async def fewest_statements(
    stack: ThreadedStack, subgraphs: tuple[str, ...], run: Callable[[], Awaitable[T]], repeats: int = 5
) -> tuple[T, dict[str, int]]:
    """Run ``run`` ``repeats`` times; return its last result and, per subgraph, the fewest SQL statements
    one run issued. Background work (an outbox relay, say) can only add statements, never remove any,
    so the minimum is what the request itself costs (five runs: under load one run can take as long
    as a relay's poll interval, and three runs once all met a poll)."""
    fewest: dict[str, int] = {}
    result: T | None = None
    for _ in range(repeats):
        before = {s: statements(stack, s) for s in subgraphs}
        result = await run()
        for s in subgraphs:
            fewest[s] = min(fewest.get(s, 1 << 30), statements(stack, s) - before[s])
    assert result is not None
    return result, fewest


# --- paying (the only way an order becomes PAID: through its payment) --------------------------

PAYMENT_OF_ORDER = """
    query($reps: [_Any!]!) {
      _entities(representations: $reps) { ... on Order { payment { status nextActionUrl } } }
    }
"""
CARD_OK = "4242 4242 4242 4242"
CARD_DECLINED = "4000 0000 0000 0002"


async def payment_of(stack: ThreadedStack, token: str, order_id: str) -> dict[str, Any] | None:
    """The order's payment as the payments subgraph resolves it (``status``, ``nextActionUrl``)."""
    reps = [{"__typename": "Order", "id": order_id}]
    entity = data(await gql(stack.url("payments"), PAYMENT_OF_ORDER, {"reps": reps}, token))["_entities"][0]
    payment: dict[str, Any] | None = entity["payment"]
    return payment


async def pay_order(
    stack: ThreadedStack, token: str, order_id: str, card: str = CARD_OK, *, until: str = "PAID"
) -> dict[str, Any]:
    """Pay ``order_id`` on the test provider's page with ``card`` (``token``: the shopper's or an
    administrator's) and wait for the saga to move the order to ``until``; the order then."""
    payment = await eventually(lambda: payment_of(stack, token, order_id))
    url = str(payment["nextActionUrl"])
    form = {"secret": httpx.URL(url).params["secret"], "card_number": card, "exp": "12/34", "cvc": "123"}
    async with httpx.AsyncClient(timeout=30) as client:
        answer = await client.post(url.split("?", 1)[0], data=form | {"return_to": "/orders"})
    assert answer.status_code in (200, 303), answer.text

    async def moved() -> dict[str, Any] | None:
        order = await order_by_id(stack, token, order_id)
        return order if order is not None and order["status"] == until else None

    return await eventually(moved)


async def eventually(check: Callable[[], Awaitable[T | None]], within: float = 30.0, step: float = 0.05) -> T:
    """``check()``'s first truthy result, polled until ``within`` seconds have passed."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {within}s: {check}")
        await asyncio.sleep(step)
