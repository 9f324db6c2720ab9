"""Helpers for the pricing and guest cart tests: everything through the router, as a shopper or the shop team."""

from __future__ import annotations

import itertools
import string
from decimal import Decimal
from typing import Any

import httpx

from tests.integration.helpers import CREATE_PRODUCT, LOGIN, REGISTER, STRONG_PASSWORD, unique_email, unique_sku
from tests.integration.shop_helpers import ADDRESS
from tests.support.graphql import gql

MONEY = "{ amount currencyCode }"
COST = f"cost {{ subtotal {MONEY} discounts {MONEY} shipping {MONEY} tax {MONEY} total {MONEY} taxIncluded }}"
CART_FIELDS = f"""
    id guest totalQuantity {COST}
    destination {{ country region }}
    items {{ quantity product {{ id }} unitPrice {MONEY} tax {MONEY} discount {MONEY} }}
    shippingOptions {{ id name rateType price {MONEY} minDays maxDays selected }}
    shippingMethod {{ id name }}
    discountCodes {{ code title kind automatic applicable reason amount {MONEY} }}
"""
ERRORS = "userErrors { code field message }"
CART_PAYLOAD = f"cart {{ {CART_FIELDS} }} {ERRORS}"
CART = f"{{ cart {{ {CART_FIELDS} }} }}"
GUEST_CART = f"query($token: String!) {{ guestCart(token: $token) {{ {CART_FIELDS} }} }}"
ORDER_FIELDS = f"""
    id number {COST} shippingMethod discountCodes
    items {{ quantity unitPrice {MONEY} tax {MONEY} discount {MONEY} product {{ id }} }}
"""


def mutation(name: str, input_type: str, payload: str = CART_PAYLOAD) -> str:
    return f"mutation($input: {input_type}!) {{ {name}(input: $input) {{ {payload} }} }}"


ADD = mutation("addToCart", "AddToCartInput")
DESTINATION = mutation("setCartDestination", "SetCartDestinationInput")
SHIPPING = mutation("setCartShippingMethod", "SetCartShippingMethodInput")
APPLY = mutation("applyDiscountCode", "ApplyDiscountCodeInput")
REMOVE_CODE = mutation("removeDiscountCode", "RemoveDiscountCodeInput")
CREATE_GUEST = f"mutation {{ createGuestCart {{ cartToken {CART_PAYLOAD} }} }}"
MERGE = mutation(
    "mergeGuestCart",
    "MergeGuestCartInput",
    f"cart {{ {CART_FIELDS} }} notices {{ code productId requested kept }} {ERRORS}",
)
CHECKOUT = mutation("checkout", "CheckoutInput", f"order {{ {ORDER_FIELDS} }} {ERRORS}")
ORDER = f"query($id: ID!) {{ order(id: $id) {{ {ORDER_FIELDS} }} }}"
ZONE = mutation("createShippingZone", "CreateShippingZoneInput", f"zone {{ id countries regions }} {ERRORS}")
METHOD = mutation(
    "createShippingMethod", "CreateShippingMethodInput", f"shippingMethod {{ id name rateType }} {ERRORS}"
)
TAX = mutation("setTaxRate", "SetTaxRateInput", f"taxRate {{ country region rate pricesIncludeTax }} {ERRORS}")
DISCOUNT = mutation("createDiscount", "CreateDiscountInput", f"discount {{ id code kind active }} {ERRORS}")
DISCOUNT_ACTIVE = mutation("setDiscountActive", "SetDiscountActiveInput", f"discount {{ id active }} {ERRORS}")
UPDATE_PRODUCT = mutation("updateProduct", "UpdateProductInput", ERRORS)
ADJUST_STOCK = mutation("adjustStock", "AdjustStockInput", ERRORS)
ARCHIVE = mutation("archiveProduct", "ArchiveProductInput", ERRORS)

# Made-up country codes, one per test: the rules a test sets up never price another test's carts.
_COUNTRIES = (f"{a}{b}" for a, b in itertools.product("XQ", string.ascii_uppercase) if f"{a}{b}" not in {"QA"})
_codes = itertools.count(1)


def country() -> str:
    return next(_COUNTRIES)


def code(tag: str) -> str:
    return f"{tag}-{next(_codes)}-{unique_sku('D')[-6:]}".upper().replace(".", "")


def usd(amount: str) -> dict[str, str]:
    return {"amount": amount, "currencyCode": "USD"}


def amounts(cost: dict[str, Any]) -> tuple[Decimal | int, ...]:
    return tuple(Decimal(cost[k]["amount"]) for k in ("subtotal", "discounts", "shipping", "tax", "total"))


class Shop:
    """The router, as shoppers and the shop team use it."""

    def __init__(self, url: str, client: httpx.AsyncClient, admin: str) -> None:
        self.url = url
        self.client = client
        self.admin = admin

    async def call(self, query: str, variables: dict[str, Any] | None = None, token: str | None = None) -> Any:
        result = await gql(self.url, query, variables, token, client=self.client)
        assert "errors" not in result, result
        (value,) = result["data"].values()
        return value

    async def ok(self, query: str, input: dict[str, Any], token: str | None = None) -> Any:
        payload = await self.call(query, {"input": input}, token)
        assert payload["userErrors"] == [], payload
        return payload

    async def shopper(self) -> tuple[str, str, str]:
        """A new signed-in customer: (user id, access token, e-mail)."""
        email = unique_email("price")
        registered = await self.ok(REGISTER, {"email": email, "password": STRONG_PASSWORD, "name": "Pat"})
        return registered["user"]["id"], registered["accessToken"], email

    async def sign_in(self, email: str) -> str:
        token: str = (await self.ok(LOGIN, {"email": email, "password": STRONG_PASSWORD}))["accessToken"]
        return token

    async def product(self, price: str, stock: int = 50) -> str:
        variables = {"sku": unique_sku("PR"), "name": "Priced Thing", "price": price, "stock": stock}
        product_id: str = (await self.ok(CREATE_PRODUCT, variables, self.admin))["product"]["id"]
        return product_id

    async def zone(self, countries: list[str], regions: list[str] | None = None) -> str:
        zone_id: str = (
            await self.ok(ZONE, {"name": "Zone", "countries": countries, "regions": regions or []}, self.admin)
        )["zone"]["id"]
        return zone_id

    async def method(self, zone_id: str, name: str, rate_type: str, **rest: Any) -> str:
        variables = {"zoneId": zone_id, "name": name, "rateType": rate_type, "minDays": 2, "maxDays": 4, **rest}
        method_id: str = (await self.ok(METHOD, variables, self.admin))["shippingMethod"]["id"]
        return method_id

    async def discount(self, **spec: Any) -> str:
        discount_id: str = (await self.ok(DISCOUNT, {"title": "Test discount", **spec}, self.admin))["discount"]["id"]
        return discount_id

    async def set_active(self, discount_id: str, active: bool) -> None:
        await self.ok(DISCOUNT_ACTIVE, {"id": discount_id, "active": active}, self.admin)

    async def add(self, token: str | None, product_id: str, quantity: int = 1, cart_token: str | None = None) -> Any:
        variables: dict[str, Any] = {"productId": product_id, "quantity": quantity}
        if cart_token is not None:
            variables["cartToken"] = cart_token
        return await self.call(ADD, {"input": variables}, token)

    async def cart(self, token: str) -> Any:
        return await self.call(CART, None, token)

    async def checkout(self, token: str, where: str, region: str | None = None, key: str | None = None) -> Any:
        address = {**ADDRESS, "country": where, "region": region}
        variables = {"idempotencyKey": key or unique_sku("K"), "shippingAddress": address}
        return await self.call(CHECKOUT, {"input": variables}, token)
