"""Money inputs are plain ASCII decimal strings; a refused cancel names a field its input has."""

from __future__ import annotations

import pytest

from deploy.stack import ThreadedStack
from tests.integration.helpers import CREATE_PRODUCT, admin_token, data, error_codes, register, unique_sku
from tests.integration.shop_helpers import cancel, place_order
from tests.support.graphql import gql

FILTERED = "query($max: Decimal) { products(first: 1, filter: {maxPrice: $max}) { totalCount } }"


@pytest.fixture
async def admin(stack: ThreadedStack, demo_accounts: dict[str, tuple[str, str]]) -> str:
    return await admin_token(stack, demo_accounts)


def _create(price: object) -> dict[str, object]:
    return {"input": {"sku": unique_sku("MONEY"), "name": "Money Lamp", "price": price, "stock": 1}}


@pytest.mark.parametrize(
    "price",
    [
        "\u0661\u0662",  # Arabic-Indic digits ("١٢"): Decimal() read this as 12
        "\uff11\uff12",  # fullwidth digits
        "1_000",  # an underscore: Decimal() read this as 1000
        " 12.00",
        "12.00 ",
        "+12",
        "1e3",
        "NaN",
        "Infinity",
        "12.",
        ".5",
        "",
    ],
)
async def test_money_inputs_refuse_anything_but_a_plain_decimal(stack: ThreadedStack, admin: str, price: str) -> None:
    created = await gql(stack.url("catalog"), CREATE_PRODUCT, _create(price), admin)
    assert error_codes(created) == ["BAD_USER_INPUT"] and created.get("data") is None
    filtered = await gql(stack.url("catalog"), FILTERED, {"max": price})
    assert error_codes(filtered) == ["BAD_USER_INPUT"]
    # The same in a literal.
    literal = await gql(
        stack.url("catalog"), f'{{ products(first: 1, filter: {{maxPrice: "{price}"}}) {{ totalCount }} }}'
    )
    assert error_codes(literal) in (["BAD_USER_INPUT"], ["GRAPHQL_VALIDATION_FAILED"])


@pytest.mark.parametrize("price", ["12", "12.50", "0.99", 12])
async def test_plain_decimals_are_money(stack: ThreadedStack, admin: str, price: object) -> None:
    created = data(await gql(stack.url("catalog"), CREATE_PRODUCT, _create(price), admin))["createProduct"]
    assert created["userErrors"] == []
    assert float(created["product"]["price"]["amount"]) == float(str(price))


async def test_a_second_cancel_names_the_order(stack: ThreadedStack, admin: str) -> None:
    shopper = await register(stack)
    created = data(await gql(stack.url("catalog"), CREATE_PRODUCT, _create("4.00"), admin))["createProduct"]
    order = await place_order(stack, shopper.access_token, {created["product"]["id"]: 1})
    assert (await cancel(stack, shopper.access_token, order["id"]))["userErrors"] == []
    again = await cancel(stack, shopper.access_token, order["id"])
    assert again["order"] is None
    # cancelOrder's input has only orderId: the refusal must not point at a field it does not have.
    assert [(e["code"], e["field"]) for e in again["userErrors"]] == [
        ("INVALID_STATUS_TRANSITION", ["input", "orderId"])
    ]
