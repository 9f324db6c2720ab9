"""The cart subgraph end to end: lines, quantity and stock rules, Money totals, who may see and change a cart."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from deploy.stack import ThreadedStack
from tests.integration.helpers import (
    admin_token,
    create_product,
    data,
    error_codes,
    internal_token,
    register,
    user_error_codes,
)
from tests.integration.shop_helpers import (
    ADD_TO_CART,
    CART,
    CART_FIELDS,
    CLEAR_CART,
    COMPLETE_CHECKOUT,
    REMOVE_FROM_CART,
    UPDATE_CART_ITEM,
    add_to_cart,
    cart_call,
    entities_query,
    fill_cart,
    get_cart,
    lines_of,
    product,
)
from tests.support.graphql import gql

MISSING_UUID = "00000000-0000-4000-8000-000000000000"
ARCHIVE = "mutation($input: ArchiveProductInput!) { archiveProduct(input: $input) { userErrors { code } } }"


@pytest.fixture
async def admin(stack: ThreadedStack, demo_accounts: dict[str, tuple[str, str]]) -> str:
    return await admin_token(stack, demo_accounts)


async def update_item(stack: ThreadedStack, token: str, product_id: str, quantity: int) -> dict[str, Any]:
    return await cart_call(stack, token, UPDATE_CART_ITEM, {"input": {"productId": product_id, "quantity": quantity}})


async def remove_item(stack: ThreadedStack, token: str, product_id: str) -> dict[str, Any]:
    return await cart_call(stack, token, REMOVE_FROM_CART, {"input": {"productId": product_id}})


def money(amount: str) -> dict[str, str]:
    return {"amount": amount, "currencyCode": "USD"}


def assert_refused(payload: dict[str, Any], code: str, field: list[str]) -> None:
    assert payload["cart"] is None, payload
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [(code, field)], payload
    assert payload["userErrors"][0]["message"]


# --- lines and totals ------------------------------------------------------------------------


async def test_add_update_remove_clear_with_exact_money_totals(stack: ThreadedStack, admin: str) -> None:
    shopper = await register(stack)
    a = await product(stack, admin, price="19.99", stock=50)
    b = await product(stack, admin, price="0.10", stock=50)
    c = await product(stack, admin, price="1234.56", stock=10)

    empty = await get_cart(stack, shopper.access_token)
    assert (empty["items"], empty["subtotal"], empty["totalQuantity"]) == ([], money("0.00"), 0)

    cart = (await add_to_cart(stack, shopper.access_token, a["id"], 3))["cart"]
    assert cart["id"] == empty["id"]  # one cart per user
    (line,) = cart["items"]
    assert (line["product"], line["quantity"], line["available"]) == ({"id": a["id"]}, 3, True)
    assert (line["unitPrice"], line["lineTotal"], cart["subtotal"]) == (money("19.99"), money("59.97"), money("59.97"))

    # 7 x 0.10 is 0.70 exactly (a float sum would not be).
    cart = (await add_to_cart(stack, shopper.access_token, b["id"], 7))["cart"]
    assert cart["subtotal"] == money("60.67")
    # Adding a product already in the cart adds to its line.
    cart = (await add_to_cart(stack, shopper.access_token, a["id"], 2))["cart"]
    assert lines_of(cart) == {a["id"]: 5, b["id"]: 7}
    assert (cart["subtotal"], cart["totalQuantity"]) == (money("100.65"), 12)

    payload = await update_item(stack, shopper.access_token, b["id"], 3)
    assert payload["userErrors"] == []
    assert payload["cart"]["subtotal"] == money("100.25")

    cart = (await add_to_cart(stack, shopper.access_token, c["id"]))["cart"]  # quantity defaults to 1
    assert cart["subtotal"] == money("1334.81")
    assert [i["lineTotal"] for i in cart["items"]] == [money("99.95"), money("0.30"), money("1234.56")]

    payload = await remove_item(stack, shopper.access_token, a["id"])
    assert payload["userErrors"] == []
    assert [i["product"]["id"] for i in payload["cart"]["items"]] == [b["id"], c["id"]]  # in the order added
    assert payload["cart"]["subtotal"] == money("1234.86")

    payload = await cart_call(stack, shopper.access_token, CLEAR_CART)
    assert payload["userErrors"] == []
    assert (payload["cart"]["items"], payload["cart"]["subtotal"]) == ([], money("0.00"))
    assert await get_cart(stack, shopper.access_token) == payload["cart"]


async def test_totals_follow_the_catalog_price(stack: ThreadedStack, admin: str) -> None:
    shopper = await register(stack)
    item = await product(stack, admin, price="3.33", stock=10)
    await fill_cart(stack, shopper.access_token, {item["id"]: 3})
    update = "mutation($input: UpdateProductInput!) { updateProduct(input: $input) { userErrors { code } } }"
    result = await gql(stack.url("catalog"), update, {"input": {"id": item["id"], "price": "4.01"}}, admin)
    assert data(result)["updateProduct"]["userErrors"] == []
    cart = await get_cart(stack, shopper.access_token)
    assert (cart["items"][0]["unitPrice"], cart["subtotal"]) == (money("4.01"), money("12.03"))


# --- quantity rules ----------------------------------------------------------------------------


@pytest.mark.parametrize("quantity", [0, -1, 100, 2**31 - 1])
async def test_quantity_outside_1_to_99_is_refused(stack: ThreadedStack, admin: str, quantity: int) -> None:
    shopper = await register(stack)
    item = await product(stack, admin, stock=500)
    await fill_cart(stack, shopper.access_token, {item["id"]: 2})
    before = await get_cart(stack, shopper.access_token)

    assert_refused(
        await add_to_cart(stack, shopper.access_token, item["id"], quantity), "INVALID_QUANTITY", ["input", "quantity"]
    )
    assert_refused(
        await update_item(stack, shopper.access_token, item["id"], quantity), "INVALID_QUANTITY", ["input", "quantity"]
    )
    assert await get_cart(stack, shopper.access_token) == before


async def test_adding_beyond_99_in_total_is_refused(stack: ThreadedStack, admin: str) -> None:
    shopper = await register(stack)
    item = await product(stack, admin, stock=500)
    await fill_cart(stack, shopper.access_token, {item["id"]: 60})
    before = await get_cart(stack, shopper.access_token)

    assert_refused(
        await add_to_cart(stack, shopper.access_token, item["id"], 40), "INVALID_QUANTITY", ["input", "quantity"]
    )
    assert await get_cart(stack, shopper.access_token) == before

    cart = await fill_cart(stack, shopper.access_token, {item["id"]: 39})
    assert lines_of(cart) == {item["id"]: 99}
    assert_refused(
        await add_to_cart(stack, shopper.access_token, item["id"], 1), "INVALID_QUANTITY", ["input", "quantity"]
    )
    payload = await update_item(stack, shopper.access_token, item["id"], 1)
    assert lines_of(payload["cart"]) == {item["id"]: 1}
    payload = await update_item(stack, shopper.access_token, item["id"], 99)
    assert lines_of(payload["cart"]) == {item["id"]: 99}


async def test_quantity_cannot_exceed_stock(stack: ThreadedStack, admin: str) -> None:
    shopper = await register(stack)
    item = await product(stack, admin, stock=4)
    sold_out = await product(stack, admin, stock=0)

    assert_refused(await add_to_cart(stack, shopper.access_token, item["id"], 5), "OUT_OF_STOCK", ["input", "quantity"])
    assert_refused(
        await add_to_cart(stack, shopper.access_token, sold_out["id"]), "OUT_OF_STOCK", ["input", "quantity"]
    )
    assert (await get_cart(stack, shopper.access_token))["items"] == []

    await fill_cart(stack, shopper.access_token, {item["id"]: 4})
    before = await get_cart(stack, shopper.access_token)
    assert_refused(await add_to_cart(stack, shopper.access_token, item["id"], 1), "OUT_OF_STOCK", ["input", "quantity"])
    assert_refused(await update_item(stack, shopper.access_token, item["id"], 5), "OUT_OF_STOCK", ["input", "quantity"])
    assert await get_cart(stack, shopper.access_token) == before


async def test_line_becomes_unavailable_when_stock_drops_or_product_is_archived(
    stack: ThreadedStack, admin: str
) -> None:
    shopper = await register(stack)
    low, archived = await product(stack, admin, stock=5), await product(stack, admin, stock=5)
    await fill_cart(stack, shopper.access_token, {low["id"]: 3, archived["id"]: 1})
    adjust = "mutation($input: AdjustStockInput!) { adjustStock(input: $input) { userErrors { code } } }"
    result = await gql(stack.url("catalog"), adjust, {"input": {"productId": low["id"], "delta": -3}}, admin)
    assert data(result)["adjustStock"]["userErrors"] == []
    assert data(await gql(stack.url("catalog"), ARCHIVE, {"input": {"id": archived["id"]}}, admin))
    cart = await get_cart(stack, shopper.access_token)
    assert [(i["product"]["id"], i["available"]) for i in cart["items"]] == [
        (low["id"], False),
        (archived["id"], False),
    ]


# --- products that cannot be sold ------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("unknown", "PRODUCT_NOT_FOUND"),
        ("malformed", "PRODUCT_NOT_FOUND"),
        ("empty", "PRODUCT_NOT_FOUND"),
        ("archived", "PRODUCT_INACTIVE"),
        ("created-inactive", "PRODUCT_INACTIVE"),
    ],
)
async def test_products_that_cannot_be_sold_are_refused_and_nothing_changes(
    stack: ThreadedStack, admin: str, kind: str, code: str
) -> None:
    shopper = await register(stack)
    kept = await product(stack, admin, stock=10)
    await fill_cart(stack, shopper.access_token, {kept["id"]: 2})
    before = await get_cart(stack, shopper.access_token)

    if kind == "archived":
        target = (await product(stack, admin))["id"]
        assert data(await gql(stack.url("catalog"), ARCHIVE, {"input": {"id": target}}, admin))
    elif kind == "created-inactive":
        target = (await create_product(stack, admin, active=False, stock=10))["id"]
    else:
        target = {"unknown": MISSING_UUID, "malformed": "not-a-uuid", "empty": ""}[kind]

    assert_refused(await add_to_cart(stack, shopper.access_token, target), code, ["input", "productId"])
    # Updating or removing a product that is not in the cart: nothing to change.
    payload = await update_item(stack, shopper.access_token, target, 1)
    assert user_error_codes(payload) == [code]
    payload = await remove_item(stack, shopper.access_token, target)
    assert user_error_codes(payload) == ["PRODUCT_NOT_FOUND" if kind in ("malformed", "empty") else "NOT_FOUND"]
    assert await get_cart(stack, shopper.access_token) == before


async def test_update_or_remove_a_product_not_in_the_cart_is_not_found(stack: ThreadedStack, admin: str) -> None:
    shopper = await register(stack)
    kept, absent = await product(stack, admin), await product(stack, admin)
    await fill_cart(stack, shopper.access_token, {kept["id"]: 1})
    before = await get_cart(stack, shopper.access_token)
    assert_refused(await update_item(stack, shopper.access_token, absent["id"], 1), "NOT_FOUND", ["input", "productId"])
    assert_refused(await remove_item(stack, shopper.access_token, absent["id"]), "NOT_FOUND", ["input", "productId"])
    assert await get_cart(stack, shopper.access_token) == before


# --- who may see and change a cart -----------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        (CART, None),
        (ADD_TO_CART, {"input": {"productId": MISSING_UUID, "quantity": 1}}),
        (UPDATE_CART_ITEM, {"input": {"productId": MISSING_UUID, "quantity": 1}}),
        (REMOVE_FROM_CART, {"input": {"productId": MISSING_UUID}}),
        (CLEAR_CART, None),
    ],
    ids=["cart", "addToCart", "updateCartItem", "removeFromCart", "clearCart"],
)
async def test_anonymous_callers_are_unauthenticated(
    stack: ThreadedStack, client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None
) -> None:
    result = await gql(stack.url("cart"), query, variables, client=client)
    assert error_codes(result) == ["UNAUTHENTICATED"]
    assert result["data"] is None


async def test_a_bad_token_is_rejected_not_treated_as_anonymous(
    stack: ThreadedStack, client: httpx.AsyncClient
) -> None:
    response = await client.post(
        stack.url("cart"), json={"query": CART}, headers={"Authorization": "Bearer not.a.token"}
    )
    assert response.status_code == 401
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["UNAUTHENTICATED"]


async def test_user_cart_entity_is_visible_to_self_and_admin_only(stack: ThreadedStack, admin: str) -> None:
    alice, bob = await register(stack), await register(stack)
    item = await product(stack, admin, price="2.50")
    await fill_cart(stack, alice.access_token, {item["id"]: 2})
    alice_cart, bob_cart = await get_cart(stack, alice.access_token), await get_cart(stack, bob.access_token)
    assert alice_cart["id"] != bob_cart["id"]

    query = entities_query(f"... on User {{ id cart {{ {CART_FIELDS} }} }}")
    reps = [{"__typename": "User", "id": alice.id}, {"__typename": "User", "id": bob.id}]

    async def carts_seen_by(token: str | None) -> list[dict[str, Any] | None]:
        entities = data(await gql(stack.url("cart"), query, {"reps": reps}, token))["_entities"]
        assert [e["id"] for e in entities] == [alice.id, bob.id]
        return [e["cart"] for e in entities]

    assert await carts_seen_by(alice.access_token) == [alice_cart, None]
    assert await carts_seen_by(bob.access_token) == [None, bob_cart]
    assert await carts_seen_by(admin) == [alice_cart, bob_cart]
    assert await carts_seen_by(None) == [None, None]
    # The router forwards a shopper's identity; on its own it is nobody's.
    assert await carts_seen_by(internal_token(stack, "router")) == [None, None]
    assert await carts_seen_by(internal_token(stack, "router", user_id=bob.id, role="CUSTOMER")) == [None, bob_cart]
    # Another subgraph acting on its own (e.g. orders) may read any cart.
    assert await carts_seen_by(internal_token(stack, "orders")) == [alice_cart, bob_cart]

    # Cart entities by id follow the same rule.
    cart_query = entities_query("... on Cart { id subtotal { amount } }")
    cart_reps = [
        {"__typename": "Cart", "id": alice_cart["id"]},
        {"__typename": "Cart", "id": MISSING_UUID},
        {"__typename": "Cart", "id": "nope"},
        {"__typename": "Cart", "id": bob_cart["id"]},
    ]
    seen = data(await gql(stack.url("cart"), cart_query, {"reps": cart_reps}, bob.access_token))["_entities"]
    assert seen == [None, None, None, {"id": bob_cart["id"], "subtotal": {"amount": "0.00"}}]
    seen = data(await gql(stack.url("cart"), cart_query, {"reps": cart_reps}, admin))["_entities"]
    assert seen == [
        {"id": alice_cart["id"], "subtotal": {"amount": "5.00"}},
        None,
        None,
        {"id": bob_cart["id"], "subtotal": {"amount": "0.00"}},
    ]


async def test_one_customer_never_changes_another_customers_cart(stack: ThreadedStack, admin: str) -> None:
    alice, bob = await register(stack), await register(stack)
    item = await product(stack, admin, stock=20)
    await fill_cart(stack, alice.access_token, {item["id"]: 3})
    alice_before = await get_cart(stack, alice.access_token)

    # Every cart mutation acts on the caller's own cart: Bob cannot reach Alice's line.
    assert_refused(await update_item(stack, bob.access_token, item["id"], 9), "NOT_FOUND", ["input", "productId"])
    assert_refused(await remove_item(stack, bob.access_token, item["id"]), "NOT_FOUND", ["input", "productId"])
    bob_cart = (await cart_call(stack, bob.access_token, CLEAR_CART))["cart"]
    bob_cart = (await add_to_cart(stack, bob.access_token, item["id"], 1))["cart"]
    assert bob_cart["id"] != alice_before["id"]
    assert lines_of(bob_cart) == {item["id"]: 1}

    # Nor through the internal checkout completion, with his own or a forwarded identity.
    variables = {
        "input": {
            "userId": alice.id,
            "checkoutId": str(uuid.uuid4()),
            "lines": [{"productId": item["id"], "quantity": 3}],
        }
    }
    for token in (bob.access_token, internal_token(stack, "router", user_id=bob.id, role="CUSTOMER")):
        assert error_codes(await gql(stack.url("cart"), COMPLETE_CHECKOUT, variables, token)) == ["FORBIDDEN"]

    assert await get_cart(stack, alice.access_token) == alice_before


async def test_complete_checkout_is_for_the_orders_service_only(stack: ThreadedStack, admin: str) -> None:
    shopper = await register(stack)
    item, other = await product(stack, admin, stock=20), await product(stack, admin, stock=20)
    await fill_cart(stack, shopper.access_token, {item["id"]: 5, other["id"]: 1})
    before = await get_cart(stack, shopper.access_token)
    checkout_id = str(uuid.uuid4())
    variables = {
        "input": {
            "userId": shopper.id,
            "checkoutId": checkout_id,
            "lines": [{"productId": item["id"], "quantity": 2}, {"productId": other["id"], "quantity": 1}],
        }
    }
    refused = [
        shopper.access_token,
        admin,
        internal_token(stack, "router"),
        internal_token(stack, "router", user_id=shopper.id, role="CUSTOMER"),
        internal_token(stack, "catalog"),
    ]
    for token in refused:
        result = await gql(stack.url("cart"), COMPLETE_CHECKOUT, variables, token)
        assert error_codes(result) == ["FORBIDDEN"], token
    assert error_codes(await gql(stack.url("cart"), COMPLETE_CHECKOUT, variables)) == ["FORBIDDEN"]
    assert await get_cart(stack, shopper.access_token) == before

    # The orders service takes exactly the ordered quantities out, once per checkout id.
    orders_token = internal_token(stack, "orders")
    result = await gql(stack.url("cart"), COMPLETE_CHECKOUT, variables, orders_token)
    assert data(result) == {"completeCheckout": {"removed": True}}
    assert lines_of(await get_cart(stack, shopper.access_token)) == {item["id"]: 3}
    result = await gql(stack.url("cart"), COMPLETE_CHECKOUT, variables, orders_token)
    assert data(result) == {"completeCheckout": {"removed": False}}
    assert lines_of(await get_cart(stack, shopper.access_token)) == {item["id"]: 3}


async def test_sdl_hides_the_internal_checkout_completion(stack: ThreadedStack, client: httpx.AsyncClient) -> None:
    sdl = data(await gql(stack.url("cart"), "{ _service { sdl } }", client=client))["_service"]["sdl"]
    line = next(line for line in sdl.splitlines() if line.strip().startswith("completeCheckout("))
    assert line.rstrip().endswith("@inaccessible"), line
