"""The orders subgraph end to end: checkout (idempotent, all or nothing), the status lifecycle, who sees what,
and the outbox events written with each change."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from deploy.stack import ThreadedStack
from subgraphs.kit.pagination import encode_cursor
from tests.integration.helpers import (
    Account,
    admin_token,
    data,
    error_codes,
    internal_token,
    register,
    stock_of,
    user_error_codes,
)
from tests.integration.shop_helpers import (
    ADDRESS,
    ALL_ORDERS,
    CHECKOUT,
    MY_ORDERS,
    ORDER_BY_NUMBER,
    add_to_cart,
    cancel,
    checkout,
    customers,
    entities_query,
    eventually,
    fewest_statements,
    fill_cart,
    gather_limited,
    get_cart,
    lines_of,
    order_by_id,
    orders_containing,
    orders_of,
    pay_order,
    payment_of,
    place_order,
    product,
    set_status,
    sql,
)
from tests.support.graphql import gql

UPDATE_PRODUCT = "mutation($input: UpdateProductInput!) { updateProduct(input: $input) { userErrors { code } } }"
ARCHIVE = "mutation($input: ArchiveProductInput!) { archiveProduct(input: $input) { userErrors { code } } }"
ADJUST = "mutation($input: AdjustStockInput!) { adjustStock(input: $input) { userErrors { code } } }"


@pytest.fixture
async def admin(stack: ThreadedStack, demo_accounts: dict[str, tuple[str, str]]) -> str:
    return await admin_token(stack, demo_accounts)


def money(amount: str) -> dict[str, str]:
    return {"amount": amount, "currencyCode": "USD"}


async def snapshot(stack: ThreadedStack, admin: str, shopper: Account, products: list[str]) -> dict[str, Any]:
    """Everything a failed checkout must leave as it was: stock, cart, the shopper's orders."""
    return {
        "stock": [await stock_of(stack, admin, p) for p in products],
        "cart": lines_of(await get_cart(stack, shopper.access_token)),
        "orders": await orders_of(stack, shopper.id),
        "in_orders": [await orders_containing(stack, p) for p in products],
    }


# --- checkout ----------------------------------------------------------------------------


async def test_checkout_turns_the_cart_into_an_order(stack: ThreadedStack, admin: str) -> None:
    shopper = await register(stack)
    a = await product(stack, admin, price="12.34", stock=10)
    b = await product(stack, admin, price="0.10", stock=7)
    await fill_cart(stack, shopper.access_token, {a["id"]: 2, b["id"]: 3})
    # Prices are the catalog's at checkout time, not when the line was added.
    result = await gql(stack.url("catalog"), UPDATE_PRODUCT, {"input": {"id": a["id"], "price": "12.50"}}, admin)
    assert data(result)["updateProduct"]["userErrors"] == []

    payload = await checkout(stack, shopper.access_token)
    assert payload["userErrors"] == []
    order = payload["order"]
    assert re.fullmatch(r"SG-\d{6,}", order["number"]), order["number"]
    assert order["status"] == "PENDING_PAYMENT"
    assert order["user"] == {"id": shopper.id}
    assert (order["subtotal"], order["total"], order["itemCount"]) == (money("25.30"), money("25.30"), 5)
    assert [
        (i["product"]["id"], i["sku"], i["name"], i["quantity"], i["unitPrice"], i["lineTotal"]) for i in order["items"]
    ] == [
        (a["id"], a["sku"], a["name"], 2, money("12.50"), money("25.00")),
        (b["id"], b["sku"], b["name"], 3, money("0.10"), money("0.30")),
    ]
    assert order["shippingAddress"] == {**ADDRESS, "country": "GB"}

    assert [await stock_of(stack, admin, p["id"]) for p in (a, b)] == [8, 4]
    assert (await get_cart(stack, shopper.access_token))["items"] == []
    mine = data(await gql(stack.url("orders"), MY_ORDERS, {"first": 10}, shopper.access_token))["orders"]
    assert mine["totalCount"] == 1
    assert [e["node"] for e in mine["edges"]] == [
        {"id": order["id"], "number": order["number"], "status": "PENDING_PAYMENT"}
    ]
    assert await order_by_id(stack, shopper.access_token, order["id"]) == order
    by_number = data(await gql(stack.url("orders"), ORDER_BY_NUMBER, {"number": order["number"]}, shopper.access_token))
    assert by_number["order"] == order

    # The order keeps the prices and names it was placed with.
    result = await gql(
        stack.url("catalog"), UPDATE_PRODUCT, {"input": {"id": a["id"], "price": "99.00", "name": "Renamed"}}, admin
    )
    assert data(result)["updateProduct"]["userErrors"] == []
    assert await order_by_id(stack, shopper.access_token, order["id"]) == order


async def test_order_numbers_are_unique_and_increasing(stack: ThreadedStack, admin: str) -> None:
    shopper = await register(stack)
    item = await product(stack, admin, stock=10)
    first = await place_order(stack, shopper.access_token, {item["id"]: 1})
    second = await place_order(stack, shopper.access_token, {item["id"]: 1})
    assert int(second["number"].removeprefix("SG-")) > int(first["number"].removeprefix("SG-"))
    mine = data(await gql(stack.url("orders"), MY_ORDERS, {"first": 10}, shopper.access_token))["orders"]
    assert [e["node"]["id"] for e in mine["edges"]] == [second["id"], first["id"]]  # newest first


@pytest.mark.parametrize("number", ["SG-\u00b2", "SG-\u0661\u0662", "SG-\uff11", "SG-1e3", "SG-", "SG-" + "9" * 18])
async def test_odd_order_numbers_are_no_order_not_a_server_error(stack: ThreadedStack, number: str) -> None:
    shopper = await register(stack)
    result = await gql(stack.url("orders"), ORDER_BY_NUMBER, {"number": number}, shopper.access_token)
    assert data(result)["order"] is None


async def test_the_same_idempotency_key_returns_the_same_order(stack: ThreadedStack, admin: str) -> None:
    shopper = await register(stack)
    item = await product(stack, admin, price="5.00", stock=10)
    await fill_cart(stack, shopper.access_token, {item["id"]: 3})
    key = f"key-{uuid.uuid4()}"

    first = await checkout(stack, shopper.access_token, key)
    assert first["userErrors"] == []
    again = await checkout(stack, shopper.access_token, key)
    assert again == first
    # The shopper keeps shopping: the old key with the new cart is another request, refused without a change.
    await fill_cart(stack, shopper.access_token, {item["id"]: 2})
    reused = await checkout(stack, shopper.access_token, key)
    assert (reused["order"], user_error_codes(reused)) == (None, ["IDEMPOTENCY_KEY_REUSED"])
    assert await stock_of(stack, admin, item["id"]) == 7  # taken once
    assert await orders_of(stack, shopper.id) == 1
    assert lines_of(await get_cart(stack, shopper.access_token)) == {item["id"]: 2}

    # Keys belong to a shopper: another shopper's same key is another checkout.
    other = await register(stack)
    await fill_cart(stack, other.access_token, {item["id"]: 1})
    theirs = await checkout(stack, other.access_token, key)
    assert theirs["userErrors"] == []
    assert theirs["order"]["id"] != first["order"]["id"]
    assert await stock_of(stack, admin, item["id"]) == 6


async def test_a_new_key_with_an_empty_cart_is_cart_empty(stack: ThreadedStack, admin: str) -> None:
    shopper = await register(stack)
    item = await product(stack, admin, stock=10)
    await place_order(stack, shopper.access_token, {item["id"]: 2})
    payload = await checkout(stack, shopper.access_token, "a-new-key")
    assert (payload["order"], user_error_codes(payload)) == (None, ["CART_EMPTY"])
    assert await stock_of(stack, admin, item["id"]) == 8
    assert await orders_of(stack, shopper.id) == 1

    never = await register(stack)
    payload = await checkout(stack, never.access_token)
    assert (payload["order"], user_error_codes(payload)) == (None, ["CART_EMPTY"])


async def test_out_of_stock_changes_nothing(stack: ThreadedStack, admin: str) -> None:
    shopper = await register(stack)
    plenty = await product(stack, admin, stock=10)
    scarce = await product(stack, admin, stock=3)
    await fill_cart(stack, shopper.access_token, {plenty["id"]: 4, scarce["id"]: 3})
    # Someone else bought some in the meantime.
    result = await gql(stack.url("catalog"), ADJUST, {"input": {"productId": scarce["id"], "delta": -2}}, admin)
    assert data(result)["adjustStock"]["userErrors"] == []
    ids = [plenty["id"], scarce["id"]]
    before = await snapshot(stack, admin, shopper, ids)
    assert before == {"stock": [10, 1], "cart": {plenty["id"]: 4, scarce["id"]: 3}, "orders": 0, "in_orders": [0, 0]}

    key = "oos-key"
    payload = await checkout(stack, shopper.access_token, key)
    assert payload["order"] is None
    assert user_error_codes(payload) == ["OUT_OF_STOCK"]
    assert scarce["name"] in payload["userErrors"][0]["message"]
    assert await snapshot(stack, admin, shopper, ids) == before  # the other line's stock was not taken either

    # The key was not used up: once restocked, the same key checks out.
    result = await gql(stack.url("catalog"), ADJUST, {"input": {"productId": scarce["id"], "delta": 2}}, admin)
    assert data(result)["adjustStock"]["userErrors"] == []
    payload = await checkout(stack, shopper.access_token, key)
    assert payload["userErrors"] == []
    assert await snapshot(stack, admin, shopper, ids) == {"stock": [6, 0], "cart": {}, "orders": 1, "in_orders": [1, 1]}


async def test_an_archived_product_in_the_cart_stops_the_checkout(stack: ThreadedStack, admin: str) -> None:
    shopper = await register(stack)
    kept, archived = await product(stack, admin), await product(stack, admin)
    await fill_cart(stack, shopper.access_token, {kept["id"]: 1, archived["id"]: 1})
    assert data(await gql(stack.url("catalog"), ARCHIVE, {"input": {"id": archived["id"]}}, admin))
    ids = [kept["id"], archived["id"]]
    before = await snapshot(stack, admin, shopper, ids)
    payload = await checkout(stack, shopper.access_token)
    assert (payload["order"], user_error_codes(payload)) == (None, ["PRODUCT_INACTIVE"])
    assert await snapshot(stack, admin, shopper, ids) == before


@pytest.mark.parametrize(
    ("key", "address", "code", "field"),
    [
        ("", ADDRESS, "INVALID", ["input", "idempotencyKey"]),
        ("   ", ADDRESS, "INVALID", ["input", "idempotencyKey"]),
        ("k" * 201, ADDRESS, "INVALID", ["input", "idempotencyKey"]),
        (None, {**ADDRESS, "country": "GBR"}, "INVALID", ["input", "shippingAddress", "country"]),
        (None, {**ADDRESS, "country": "1X"}, "INVALID", ["input", "shippingAddress", "country"]),
        (None, {**ADDRESS, "name": ""}, "REQUIRED", ["input", "shippingAddress", "name"]),
        (None, {**ADDRESS, "line1": "  "}, "REQUIRED", ["input", "shippingAddress", "line1"]),
        (None, {**ADDRESS, "city": ""}, "REQUIRED", ["input", "shippingAddress", "city"]),
        (None, {**ADDRESS, "postalCode": ""}, "REQUIRED", ["input", "shippingAddress", "postalCode"]),
        (None, {**ADDRESS, "country": ""}, "REQUIRED", ["input", "shippingAddress", "country"]),
        (None, {**ADDRESS, "line1": "x" * 201}, "TOO_LONG", ["input", "shippingAddress", "line1"]),
    ],
    ids=[
        "empty-key",
        "blank-key",
        "long-key",
        "country-3-letters",
        "country-digit",
        "no-name",
        "blank-line1",
        "no-city",
        "no-postal-code",
        "no-country",
        "long-line1",
    ],
)
async def test_invalid_checkout_input_changes_nothing(
    stack: ThreadedStack, admin: str, key: str | None, address: dict[str, Any], code: str, field: list[str]
) -> None:
    shopper = await register(stack)
    item = await product(stack, admin, stock=5)
    await fill_cart(stack, shopper.access_token, {item["id"]: 2})
    before = await snapshot(stack, admin, shopper, [item["id"]])
    variables = {"input": {"idempotencyKey": uuid.uuid4().hex if key is None else key, "shippingAddress": address}}
    payload = data(await gql(stack.url("orders"), CHECKOUT, variables, shopper.access_token))["checkout"]
    assert payload["order"] is None
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [(code, field)]
    assert await snapshot(stack, admin, shopper, [item["id"]]) == before


async def test_a_missing_address_field_is_a_graphql_error_and_changes_nothing(stack: ThreadedStack, admin: str) -> None:
    shopper = await register(stack)
    item = await product(stack, admin, stock=5)
    await fill_cart(stack, shopper.access_token, {item["id"]: 1})
    before = await snapshot(stack, admin, shopper, [item["id"]])
    address = {k: v for k, v in ADDRESS.items() if k != "line1"}
    result = await gql(
        stack.url("orders"),
        CHECKOUT,
        {"input": {"idempotencyKey": "k", "shippingAddress": address}},
        shopper.access_token,
    )
    assert result.get("data") is None
    assert result["errors"]
    assert await snapshot(stack, admin, shopper, [item["id"]]) == before


async def test_a_missing_address_field_is_reported_clearly(stack: ThreadedStack, client: httpx.AsyncClient) -> None:
    shopper = await register(stack, client=client)
    address = {k: v for k, v in ADDRESS.items() if k != "line1"}
    variables = {"input": {"idempotencyKey": "k", "shippingAddress": address}}
    result = await gql(stack.url("orders"), CHECKOUT, variables, shopper.access_token, client=client)
    assert error_codes(result) != ["INTERNAL_SERVER_ERROR"]
    assert "line1" in result["errors"][0]["message"]


async def test_checkout_needs_a_signed_in_shopper(stack: ThreadedStack, client: httpx.AsyncClient) -> None:
    variables = {"input": {"idempotencyKey": "k", "shippingAddress": ADDRESS}}
    for token in (None, internal_token(stack, "router")):
        result = await gql(stack.url("orders"), CHECKOUT, variables, token, client=client)
        assert error_codes(result) == ["UNAUTHENTICATED"]
    result = await gql(stack.url("orders"), MY_ORDERS, None, client=client)
    assert error_codes(result) == ["UNAUTHENTICATED"]


# --- status lifecycle -------------------------------------------------------------------------

LEGAL_PATH = ["PAID", "SHIPPED", "DELIVERED"]
# status the order is in -> statuses an administrator cannot move it to
ILLEGAL = {
    # PAID comes only from the payment (the saga), never by hand.
    "PENDING_PAYMENT": ["PENDING_PAYMENT", "PAID", "SHIPPED", "DELIVERED"],
    "PAID": ["PENDING_PAYMENT", "PAID", "DELIVERED"],
    "SHIPPED": ["PENDING_PAYMENT", "PAID", "SHIPPED", "CANCELLED"],
    "DELIVERED": ["PENDING_PAYMENT", "PAID", "SHIPPED", "DELIVERED", "CANCELLED"],
    "CANCELLED": ["PENDING_PAYMENT", "PAID", "SHIPPED", "DELIVERED", "CANCELLED"],
}


async def assert_transition_refused(
    stack: ThreadedStack, token: str, order: dict[str, Any], to: str, *, code: str = "INVALID_STATUS_TRANSITION"
) -> None:
    result = await set_status(stack, token, order["id"], to)
    payload = data(result)["updateOrderStatus"]
    assert (payload["order"], user_error_codes(payload)) == (None, [code]), (order["status"], to)


async def test_admin_moves_an_order_along_its_lifecycle_and_nothing_else(stack: ThreadedStack, admin: str) -> None:
    shopper = await register(stack)
    item = await product(stack, admin, stock=5)
    order = await place_order(stack, shopper.access_token, {item["id"]: 2})
    for illegal in ILLEGAL["PENDING_PAYMENT"]:
        await assert_transition_refused(stack, admin, order, illegal)
    paid = await pay_order(stack, shopper.access_token, order["id"])
    assert {k: v for k, v in paid.items() if k not in ("status", "updatedAt")} == {
        k: v for k, v in order.items() if k not in ("status", "updatedAt")
    }
    order = paid
    for to in ["SHIPPED", "DELIVERED"]:
        for illegal in ILLEGAL[order["status"]]:
            await assert_transition_refused(stack, admin, order, illegal)
        payload = data(await set_status(stack, admin, order["id"], to))["updateOrderStatus"]
        assert payload["userErrors"] == []
        assert payload["order"]["status"] == to
        assert payload["order"]["updatedAt"] > order["updatedAt"]
        assert {k: v for k, v in payload["order"].items() if k not in ("status", "updatedAt")} == {
            k: v for k, v in order.items() if k not in ("status", "updatedAt")
        }
        order = payload["order"]
    for illegal in ILLEGAL["DELIVERED"]:
        await assert_transition_refused(stack, admin, order, illegal)
    assert (await order_by_id(stack, shopper.access_token, order["id"])) == order
    assert await stock_of(stack, admin, item["id"]) == 3


async def test_admin_can_cancel_and_a_cancelled_order_stays_cancelled(stack: ThreadedStack, admin: str) -> None:
    shopper = await register(stack)
    item = await product(stack, admin, stock=5)
    order = await place_order(stack, shopper.access_token, {item["id"]: 2})
    payload = data(await set_status(stack, admin, order["id"], "CANCELLED"))["updateOrderStatus"]
    assert payload["order"]["status"] == "CANCELLED"
    assert await stock_of(stack, admin, item["id"]) == 5
    for illegal in ILLEGAL["CANCELLED"]:
        await assert_transition_refused(stack, admin, payload["order"], illegal)
    # Cancelling again (either way) does not put the stock back twice.
    assert user_error_codes(await cancel(stack, shopper.access_token, order["id"])) == ["INVALID_STATUS_TRANSITION"]
    assert await stock_of(stack, admin, item["id"]) == 5


async def test_an_unpaid_order_cannot_be_marked_paid_by_hand_and_its_cancel_voids_the_payment(
    stack: ThreadedStack, admin: str
) -> None:
    """Money state comes only from the payment: PENDING_PAYMENT → PAID by hand is refused (nothing
    captured, the payment left open); an admin's cancel voids the payment and releases the stock."""
    shopper = await register(stack)
    item = await product(stack, admin, stock=5)
    order = await place_order(stack, shopper.access_token, {item["id"]: 2})
    payment = await eventually(lambda: payment_of(stack, admin, order["id"]))
    assert payment["status"] == "PENDING"
    payload = data(await set_status(stack, admin, order["id"], "PAID"))["updateOrderStatus"]
    assert payload["order"] is None
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
        ("INVALID_STATUS_TRANSITION", ["input", "status"])
    ]
    assert "only when its payment is authorised" in payload["userErrors"][0]["message"]
    assert await order_by_id(stack, shopper.access_token, order["id"]) == order
    assert (await payment_of(stack, admin, order["id"]) or {})["status"] == "PENDING"
    async with sql(stack, "orders") as conn:
        events = text("SELECT event_type FROM outbox WHERE aggregate_id = :o ORDER BY id")
        assert list((await conn.execute(events, {"o": uuid.UUID(order["id"])})).scalars()) == ["order.created"]

    payload = data(await set_status(stack, admin, order["id"], "CANCELLED"))["updateOrderStatus"]
    assert payload["userErrors"] == [] and payload["order"]["status"] == "CANCELLED"
    assert await stock_of(stack, admin, item["id"]) == 5

    async def voided() -> bool:
        return (await payment_of(stack, admin, order["id"]) or {}).get("status") == "CANCELLED"

    assert await eventually(voided)
    async with sql(stack, "payments") as conn:
        captured = text("SELECT captured_minor FROM payments WHERE order_id = :o")
        assert (await conn.execute(captured, {"o": uuid.UUID(order["id"])})).scalar_one() == 0


async def test_admin_moves_unknown_orders_nowhere(stack: ThreadedStack, admin: str) -> None:
    for order_id in (str(uuid.uuid4()), "not-an-id"):
        payload = data(await set_status(stack, admin, order_id, "PAID"))["updateOrderStatus"]
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("NOT_FOUND", ["input", "orderId"])]


async def test_customers_cannot_update_order_status(stack: ThreadedStack, admin: str) -> None:
    shopper = await register(stack)
    item = await product(stack, admin, stock=5)
    order = await place_order(stack, shopper.access_token, {item["id"]: 1})
    for to in ("PAID", "CANCELLED"):
        result = await set_status(stack, shopper.access_token, order["id"], to)
        assert error_codes(result) == ["FORBIDDEN"]
    result = await set_status(
        stack, internal_token(stack, "router", user_id=shopper.id, role="CUSTOMER"), order["id"], "PAID"
    )
    assert error_codes(result) == ["FORBIDDEN"]
    assert error_codes(await set_status(stack, "", order["id"], "PAID")) == ["UNAUTHENTICATED"]
    assert await order_by_id(stack, shopper.access_token, order["id"]) == order
    assert await stock_of(stack, admin, item["id"]) == 4


@pytest.mark.parametrize("paid", [False, True], ids=["pending", "paid"])
async def test_owner_cancels_before_shipping_and_stock_comes_back(stack: ThreadedStack, admin: str, paid: bool) -> None:
    shopper = await register(stack)
    a, b = await product(stack, admin, stock=5), await product(stack, admin, stock=9)
    order = await place_order(stack, shopper.access_token, {a["id"]: 2, b["id"]: 4})
    assert [await stock_of(stack, admin, p["id"]) for p in (a, b)] == [3, 5]
    if paid:
        await pay_order(stack, shopper.access_token, order["id"])

    payload = await cancel(stack, shopper.access_token, order["id"])
    assert payload["userErrors"] == []
    assert payload["order"]["status"] == "CANCELLED"
    assert [await stock_of(stack, admin, p["id"]) for p in (a, b)] == [5, 9]
    # Only once.
    payload = await cancel(stack, shopper.access_token, order["id"])
    assert (payload["order"], user_error_codes(payload)) == (None, ["INVALID_STATUS_TRANSITION"])
    assert [await stock_of(stack, admin, p["id"]) for p in (a, b)] == [5, 9]


@pytest.mark.parametrize("status", ["SHIPPED", "DELIVERED"])
async def test_owner_cannot_cancel_once_shipped(stack: ThreadedStack, admin: str, status: str) -> None:
    shopper = await register(stack)
    item = await product(stack, admin, stock=5)
    order = await place_order(stack, shopper.access_token, {item["id"]: 2})
    await pay_order(stack, shopper.access_token, order["id"])
    for to in LEGAL_PATH[1 : LEGAL_PATH.index(status) + 1]:
        assert data(await set_status(stack, admin, order["id"], to))["updateOrderStatus"]["userErrors"] == []
    payload = await cancel(stack, shopper.access_token, order["id"])
    # cancelOrder's input has no status: the refusal names the order.
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
        ("INVALID_STATUS_TRANSITION", ["input", "orderId"])
    ]
    assert payload["order"] is None
    assert (await order_by_id(stack, shopper.access_token, order["id"]) or {})["status"] == status
    assert await stock_of(stack, admin, item["id"]) == 3


async def test_another_customers_order_is_invisible_and_untouchable(stack: ThreadedStack, admin: str) -> None:
    owner, stranger = await register(stack), await register(stack)
    item = await product(stack, admin, stock=5)
    order = await place_order(stack, owner.access_token, {item["id"]: 1})

    payload = await cancel(stack, stranger.access_token, order["id"])
    # Reported exactly like an order that does not exist.
    missing = await cancel(stack, stranger.access_token, str(uuid.uuid4()))
    assert payload == missing
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("NOT_FOUND", ["input", "orderId"])]

    assert await order_by_id(stack, stranger.access_token, order["id"]) is None
    by_number = await gql(stack.url("orders"), ORDER_BY_NUMBER, {"number": order["number"]}, stranger.access_token)
    assert data(by_number)["order"] is None
    mine = data(await gql(stack.url("orders"), MY_ORDERS, {"first": 100}, stranger.access_token))["orders"]
    assert mine == {"totalCount": 0, "edges": []}

    order_reps = {"reps": [{"__typename": "Order", "id": order["id"]}]}
    order_query = entities_query("... on Order { id number status }")
    for token in (stranger.access_token, None, internal_token(stack, "router")):
        assert data(await gql(stack.url("orders"), order_query, order_reps, token))["_entities"] == [None]
    expected = {"id": order["id"], "number": order["number"], "status": "PENDING_PAYMENT"}
    for token in (owner.access_token, admin, internal_token(stack, "router", user_id=owner.id, role="CUSTOMER")):
        assert data(await gql(stack.url("orders"), order_query, order_reps, token))["_entities"] == [expected]

    user_query = entities_query("... on User { id orders(first: 10) { totalCount edges { node { id } } } }")
    user_reps = {"reps": [{"__typename": "User", "id": owner.id}]}
    seen = data(await gql(stack.url("orders"), user_query, user_reps, stranger.access_token))["_entities"]
    assert seen == [{"id": owner.id, "orders": None}]
    seen = data(await gql(stack.url("orders"), user_query, user_reps, owner.access_token))["_entities"]
    assert seen == [{"id": owner.id, "orders": {"totalCount": 1, "edges": [{"node": {"id": order["id"]}}]}}]

    assert (await order_by_id(stack, owner.access_token, order["id"]) or {})["status"] == "PENDING_PAYMENT"
    assert await stock_of(stack, admin, item["id"]) == 4


async def test_all_orders_is_for_administrators(stack: ThreadedStack, admin: str) -> None:
    shopper = await register(stack)
    item = await product(stack, admin, stock=5)
    order = await place_order(stack, shopper.access_token, {item["id"]: 1})
    await pay_order(stack, shopper.access_token, order["id"])

    assert error_codes(await gql(stack.url("orders"), ALL_ORDERS, {"first": 5}, shopper.access_token)) == ["FORBIDDEN"]
    assert error_codes(await gql(stack.url("orders"), ALL_ORDERS, {"first": 5})) == ["UNAUTHENTICATED"]

    paid = data(await gql(stack.url("orders"), ALL_ORDERS, {"first": 100, "status": "PAID"}, admin))["allOrders"]
    assert {"id": order["id"], "status": "PAID", "user": {"id": shopper.id}} in [e["node"] for e in paid["edges"]]
    assert all(e["node"]["status"] == "PAID" for e in paid["edges"])
    # Newest first: the order just paid was also placed last.
    everything = data(await gql(stack.url("orders"), ALL_ORDERS, {"first": 1}, admin))["allOrders"]
    assert everything["edges"][0]["node"]["id"] == order["id"]
    assert everything["totalCount"] >= paid["totalCount"] >= 1


async def test_all_orders_counts_in_its_page_statement_on_the_first_page_only(stack: ThreadedStack, admin: str) -> None:
    """The first page's totalCount and items come with its rows (one statement); a later page, whose
    rows start at its cursor, counts apart; either way the count is of the whole listing."""
    shopper = await register(stack)
    item = await product(stack, admin, stock=5)
    for _ in range(2):
        await place_order(stack, shopper.access_token, {item["id"]: 1})
    query = """query($first: Int!, $after: String, $status: OrderStatus) {
        allOrders(first: $first, after: $after, status: $status) {
            totalCount edges { cursor node { id items { quantity product { id } } } } pageInfo { endCursor } } }"""
    async with sql(stack, "orders") as conn:
        counts = text("SELECT count(*), count(*) FILTER (WHERE status = 'PENDING_PAYMENT') FROM orders")
        total, expected = (await conn.execute(counts)).one()

    async def page(variables: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = data(await gql(stack.url("orders"), query, variables, admin))["allOrders"]
        return result

    first, counted = await fewest_statements(stack, ("orders",), lambda: page({"first": 1}))
    assert first["totalCount"] == total and counted == {"orders": 1}
    assert first["edges"][0]["node"]["items"] == [{"quantity": 1, "product": {"id": item["id"]}}]  # the newest
    pending, counted = await fewest_statements(
        stack, ("orders",), lambda: page({"first": 1, "status": "PENDING_PAYMENT"})
    )
    assert pending["totalCount"] == expected and counted == {"orders": 1}
    later = {"first": 1, "after": first["pageInfo"]["endCursor"]}
    second, counted = await fewest_statements(stack, ("orders",), lambda: page(later))
    assert second["totalCount"] == total and counted == {"orders": 2}
    assert second["edges"][0]["node"]["id"] != first["edges"][0]["node"]["id"]
    # Past the end: no row to carry a count, the count is still the listing's.
    beyond = {"first": 1, "after": encode_cursor(["2000-01-01T00:00:00+00:00", str(uuid.UUID(int=0))])}
    assert await page(beyond) == {"totalCount": total, "edges": [], "pageInfo": {"endCursor": None}}
    two = data(await gql(stack.url("orders"), query, {"first": 2}, admin))["allOrders"]["edges"]
    assert [e["node"]["items"] for e in two] == [[{"quantity": 1, "product": {"id": item["id"]}}]] * 2
    nothing = data(await gql(stack.url("orders"), query, {"first": 0}, admin))["allOrders"]
    assert nothing["totalCount"] == total and nothing["edges"] == []


# --- outbox ------------------------------------------------------------------------------------


async def test_each_change_writes_its_event_to_the_outbox(stack: ThreadedStack, admin: str) -> None:
    shopper = await register(stack)
    a, b = await product(stack, admin, price="7.25", stock=5), await product(stack, admin, price="1.00", stock=5)
    order = await place_order(stack, shopper.access_token, {a["id"]: 2, b["id"]: 1})
    await pay_order(stack, shopper.access_token, order["id"])
    assert (await cancel(stack, shopper.access_token, order["id"]))["userErrors"] == []
    # Refused changes write nothing.
    assert user_error_codes(await cancel(stack, shopper.access_token, order["id"])) == ["INVALID_STATUS_TRANSITION"]

    async with sql(stack, "orders") as conn:
        rows = (
            await conn.execute(
                text("SELECT id, event_type, payload, published_at FROM outbox WHERE aggregate_id = :o ORDER BY id"),
                {"o": uuid.UUID(order["id"])},
            )
        ).all()
        changes = (
            await conn.execute(
                text("SELECT from_status, to_status FROM order_status_changes WHERE order_id = :o ORDER BY id"),
                {"o": uuid.UUID(order["id"])},
            )
        ).all()
    # The paid order's cancel refunds it: order.refunded follows when payments has done so (async).
    rows = [r for r in rows if r.event_type != "order.refunded"]
    assert [r.event_type for r in rows] == ["order.created", "order.paid", "order.cancelled"]
    assert [tuple(c) for c in changes] == [
        (None, "PENDING_PAYMENT"),
        ("PENDING_PAYMENT", "PAID"),
        ("PAID", "CANCELLED"),
    ]
    # A product made without variants sells its default variant, which shares its id.
    items = [
        {
            "productId": a["id"],
            "variantId": a["id"],
            "sku": a["sku"],
            "name": a["name"],
            "quantity": 2,
            "unitPrice": "7.25",
        },
        {
            "productId": b["id"],
            "variantId": b["id"],
            "sku": b["sku"],
            "name": b["name"],
            "quantity": 1,
            "unitPrice": "1.00",
        },
    ]
    # The contract other services read (payments, notifications): snake_case keys, minor units.
    lines = [
        {"name": a["name"], "sku": a["sku"], "quantity": 2, "unit_price_minor": 725},
        {"name": b["name"], "sku": b["sku"], "quantity": 1, "unit_price_minor": 100},
    ]
    for row, status in zip(rows, ["PENDING_PAYMENT", "PAID", "CANCELLED"], strict=True):
        payload = dict(row.payload)
        assert payload.pop("occurredAt")
        assert payload == {
            "type": row.event_type,
            "orderId": order["id"],
            "order_id": order["id"],
            "number": order["number"],
            "userId": shopper.id,
            "user_id": shopper.id,
            "status": status,
            "currency": "USD",
            "subtotal_minor": 1550,
            "shipping_minor": 0,
            "total_minor": 1550,
            "total": {"amount": "15.50", "currencyCode": "USD"},
            "lines": lines,
            "items": items,
            **({"reason": "customer"} if status == "CANCELLED" else {}),
        }


async def test_a_failed_checkout_writes_no_event(stack: ThreadedStack, admin: str) -> None:
    shopper = await register(stack)
    item = await product(stack, admin, stock=1)
    await fill_cart(stack, shopper.access_token, {item["id"]: 1})
    assert data(await gql(stack.url("catalog"), ADJUST, {"input": {"productId": item["id"], "delta": -1}}, admin))
    assert user_error_codes(await checkout(stack, shopper.access_token)) == ["OUT_OF_STOCK"]
    async with sql(stack, "orders") as conn:
        events = (
            await conn.execute(text("SELECT count(*) FROM outbox WHERE payload->>'userId' = :u"), {"u": shopper.id})
        ).scalar_one()
    assert events == 0


# --- concurrency ---------------------------------------------------------------------------------


async def test_fifty_concurrent_checkouts_of_ten_in_stock(stack: ThreadedStack, admin: str) -> None:
    item = await product(stack, admin, price="9.99", stock=10)
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=100)) as client:
        shoppers = await customers(stack, 50, client)
        added = await gather_limited([add_to_cart(stack, s.access_token, item["id"], 1, client) for s in shoppers])
        assert all(p["userErrors"] == [] for p in added)
        results = await gather_limited([checkout(stack, s.access_token, client=client) for s in shoppers], limit=50)

    placed = [r["order"] for r in results if r["userErrors"] == []]
    refused = [user_error_codes(r) for r in results if r["userErrors"]]
    assert len(placed) == 10
    assert refused == [["OUT_OF_STOCK"]] * 40
    assert len({o["id"] for o in placed}) == len({o["number"] for o in placed}) == 10
    assert await stock_of(stack, admin, item["id"]) == 0
    assert await orders_containing(stack, item["id"]) == 10
    # Winners' carts are empty; losers still have their line.
    carts = [lines_of(await get_cart(stack, s.access_token)) for s in shoppers]
    assert sorted(len(c) for c in carts) == [0] * 10 + [1] * 40


async def test_the_same_key_sent_concurrently_yields_one_order(stack: ThreadedStack, admin: str) -> None:
    shopper = await register(stack)
    item = await product(stack, admin, stock=10)
    await fill_cart(stack, shopper.access_token, {item["id"]: 3})
    key = f"double-click-{uuid.uuid4()}"
    results = await asyncio.gather(*(checkout(stack, shopper.access_token, key) for _ in range(5)))
    assert [r["userErrors"] for r in results] == [[]] * 5, results
    assert len({r["order"]["id"] for r in results}) == 1
    assert await orders_of(stack, shopper.id) == 1
    assert await stock_of(stack, admin, item["id"]) == 7
    assert (await get_cart(stack, shopper.access_token))["items"] == []


async def test_a_storm_of_retries_with_one_key_never_reports_an_empty_cart(stack: ThreadedStack, admin: str) -> None:
    """Retries that arrive while the first attempt is emptying the cart get its order, not CART_EMPTY."""
    shopper = await register(stack)
    item = await product(stack, admin, stock=100)

    async def attempt(key: str, i: int) -> dict[str, Any]:
        await asyncio.sleep(i / 2000)  # staggered: some retries land mid-checkout
        return await checkout(stack, shopper.access_token, key)

    for _ in range(3):
        await fill_cart(stack, shopper.access_token, {item["id"]: 1})
        key = uuid.uuid4().hex
        results = await asyncio.gather(*(attempt(key, i) for i in range(30)))
        assert [r["userErrors"] for r in results] == [[]] * 30
        assert len({r["order"]["id"] for r in results}) == 1
    assert await orders_of(stack, shopper.id) == 3
    assert await stock_of(stack, admin, item["id"]) == 97


@pytest.mark.parametrize(
    "key",
    [["0001-01-01T00:00:00+01:00", str(uuid.UUID(int=1))], ["9999-12-31T23:59:59-05:00", str(uuid.UUID(int=1))]],
)
async def test_forged_order_cursors_are_bad_user_input(stack: ThreadedStack, admin: str, key: list[str]) -> None:
    cursor = encode_cursor(key)
    for query in (
        "query($a: String) { allOrders(first: 2, after: $a) { totalCount } }",
        "query($a: String) { orders(first: 2, after: $a) { totalCount } }",
    ):
        body = await gql(stack.url("orders"), query, {"a": cursor}, admin)
        assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"], body
