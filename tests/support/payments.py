"""Helpers for the payment saga's tests: a stack with short saga deadlines, shoppers, paying by card."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from subgraphs.kit.db import async_url
from tests.integration.helpers import CREATE_PRODUCT, LOGIN, REGISTER, STRONG_PASSWORD, unique_email, unique_sku
from tests.integration.shop_helpers import ADD_TO_CART, ADDRESS
from tests.support.graphql import gql

# Reconcilers that act within a test (read when the apps are built); an order's payment deadline is
# long enough for a loaded machine, and a test that wants it passed moves it (``expire``).
SAGA_ENV = {
    "SHOPGRAPH_ORDERS_PAYMENT_SECONDS": "120",
    "SHOPGRAPH_ORDERS_SWEEP_SECONDS": "0.5",
    "SHOPGRAPH_PAYMENTS_RECONCILE_SECONDS": "0.5",
    "SHOPGRAPH_PAYMENTS_STALE_SECONDS": "1",
}

CARD_OK = "4242 4242 4242 4242"
CARD_DECLINED = "4000 0000 0000 0002"
CARD_3DS = "4000 0027 6000 3184"

PAYMENT_FIELDS = """
    id status provider providerReference methodSummary clientSecret nextActionUrl failureReason
    amount { amount currencyCode } captured { amount currencyCode } refunded { amount currencyCode }
    history { kind amount { amount } detail }
"""
CHECKOUT_PAY = f"""
mutation($input: CheckoutInput!) {{
  checkout(input: $input) {{
    order {{ id number status total {{ amount currencyCode }} payment {{ {PAYMENT_FIELDS} }} }}
    userErrors {{ code field message }}
  }}
}}
"""
ORDER_PAYMENT = f"query($id: ID!) {{ order(id: $id) {{ id status payment {{ {PAYMENT_FIELDS} }} }} }}"
STOCK = "query($id: ID!) { product(id: $id) { stock } }"
REFUND = f"""
mutation($input: RefundPaymentInput!) {{
  refundPayment(input: $input) {{ payment {{ {PAYMENT_FIELDS} }} userErrors {{ code field message }} }}
}}
"""
CANCEL = """
mutation($input: CancelOrderInput!) {
  cancelOrder(input: $input) { order { id status } userErrors { code message } }
}
"""
ORDER_UPDATED = "subscription($id: ID!) { orderUpdated(id: $id) { id type order { id status } } }"


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


async def data(url: str, query: str, variables: dict[str, Any] | None = None, token: str | None = None) -> Any:
    async with httpx.AsyncClient(timeout=60) as client:
        result = await gql(url, query, variables, token, client=client)
    assert "errors" not in result, result
    return result["data"]


async def admin_token(url: str, accounts: list[tuple[str, str, str]]) -> str:
    email, password = next((e, p) for role, e, p in accounts if role == "ADMIN")
    login = (await data(url, LOGIN, {"input": {"email": email, "password": password}}))["login"]
    return str(login["accessToken"])


async def new_product(url: str, admin: str, stock: int, price: str = "12.50") -> str:
    variables = {"input": {"sku": unique_sku("PAY"), "name": "Paid Kettle", "price": price, "stock": stock}}
    created = (await data(url, CREATE_PRODUCT, variables, admin))["createProduct"]
    assert created["userErrors"] == [], created
    return str(created["product"]["id"])


async def shopper(url: str) -> str:
    variables = {"input": {"email": unique_email("pay"), "password": STRONG_PASSWORD, "name": "Payer"}}
    return str((await data(url, REGISTER, variables))["register"]["accessToken"])


async def stock_of(url: str, product_id: str) -> int:
    return int((await data(url, STOCK, {"id": product_id}))["product"]["stock"])


async def checkout(url: str, token: str, product_id: str, quantity: int) -> dict[str, Any]:
    added = await data(url, ADD_TO_CART, {"input": {"productId": product_id, "quantity": quantity}}, token)
    assert added["addToCart"]["userErrors"] == [], added
    variables = {"input": {"idempotencyKey": str(uuid.uuid4()), "shippingAddress": ADDRESS}}
    payload = (await data(url, CHECKOUT_PAY, variables, token))["checkout"]
    assert payload["userErrors"] == [], payload
    order: dict[str, Any] = payload["order"]
    return order


async def pay(next_action_url: str, card: str, *, client: httpx.AsyncClient | None = None) -> httpx.Response:
    """Post the test provider's card form as a browser would (no redirects followed)."""
    secret = httpx.URL(next_action_url).params["secret"]
    form = {"secret": secret, "card_number": card, "exp": "12/34", "cvc": "123", "return_to": "/orders"}
    if client is not None:
        return await client.post(next_action_url.split("?", 1)[0], data=form)
    async with httpx.AsyncClient(timeout=30) as own:
        return await own.post(next_action_url.split("?", 1)[0], data=form)


async def eventually(check: Callable[[], Awaitable[Any]], within: float = 30.0, every: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy; its last value, or AssertionError."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(every)
    raise AssertionError(f"not reached within {within}s (last: {last!r})")


async def order_payment(url: str, token: str, order_id: str) -> dict[str, Any]:
    order: dict[str, Any] = (await data(url, ORDER_PAYMENT, {"id": order_id}, token))["order"]
    return order


async def sql(database_url: str, schema: str, query: str, **params: Any) -> list[Any]:
    engine = create_async_engine(async_url(database_url), connect_args={"server_settings": {"search_path": schema}})
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(query), params)).all())
    finally:
        await engine.dispose()


async def expire(database_url: str, *order_ids: str) -> None:
    """Move the orders' payment deadline into the past (what waiting for it would do), in one statement."""
    engine = create_async_engine(async_url(database_url), connect_args={"server_settings": {"search_path": "orders"}})
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE orders SET payment_due_at = now() - interval '1 second' "
                    "WHERE id = ANY(CAST(:ids AS uuid[]))"
                ),
                {"ids": list(order_ids)},
            )
    finally:
        await engine.dispose()
