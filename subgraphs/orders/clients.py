"""The orders subgraph's calls to cart and catalog (over GraphQL, with internal tokens)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from gql import gql

from subgraphs.kit.domain import DomainError, ErrorCode
from subgraphs.kit.money import to_minor
from subgraphs.kit.service_client import ServiceClient

CART = gql("query CheckoutCart { cart { items { quantity variant { id } } } }")
COMPLETE_CHECKOUT = gql(
    """
    mutation CompleteCheckout($input: CompleteCheckoutInput!) {
      completeCheckout(input: $input) { removed }
    }
    """
)
RELEASE_CHECKOUT = gql(
    "mutation ReleaseCheckout($input: CartCheckoutInput!) { releaseCheckout(input: $input) { released } }"
)
RESERVE = gql(
    """
    mutation Reserve($input: ReserveStockInput!) {
      reserveStock(input: $input) {
        lines { productId variantId quantity sku name unitPrice { amount currencyCode } }
        userErrors { code field message }
      }
    }
    """
)
RELEASE = gql("mutation Release($input: ReleaseStockInput!) { releaseStock(input: $input) { released } }")


@dataclass(frozen=True)
class PricedLine:
    product_id: uuid.UUID
    quantity: int
    variant_id: uuid.UUID
    sku: str
    name: str
    unit_price_minor: int
    currency: str


async def cart_lines(cart: ServiceClient, user_id: uuid.UUID, role: str | None) -> list[tuple[uuid.UUID, int]]:
    """The shopper's cart as (variant id, quantity), read as that shopper (so cart's own authorisation applies)."""
    data = await cart.execute(CART, user_id=user_id, role=role)
    return [(uuid.UUID(i["variant"]["id"]), i["quantity"]) for i in data["cart"]["items"]]


GUEST_CART = gql(
    "query CheckoutGuestCart($token: String!) { guestCart(token: $token) { items { quantity variant { id } } } }"
)


async def guest_cart_lines(cart: ServiceClient, token: str) -> list[tuple[uuid.UUID, int]]:
    """A guest cart as (variant id, quantity); empty when its token opens nothing now."""
    found = (await cart.execute(GUEST_CART, {"token": token}))["guestCart"]
    return [(uuid.UUID(i["variant"]["id"]), i["quantity"]) for i in found["items"]] if found else []


def _with_token(variables: dict[str, Any], cart_token: str | None) -> dict[str, Any]:
    if cart_token is not None:
        variables["input"]["cartToken"] = cart_token
    return variables


async def release_checkout(
    cart: ServiceClient, user_id: uuid.UUID, checkout_id: uuid.UUID, cart_token: str | None = None
) -> None:
    variables = _with_token({"input": {"userId": str(user_id), "checkoutId": str(checkout_id)}}, cart_token)
    await cart.execute(RELEASE_CHECKOUT, variables)


async def complete_checkout(
    cart: ServiceClient,
    user_id: uuid.UUID,
    checkout_id: uuid.UUID,
    lines: list[tuple[uuid.UUID, int]],
    cart_token: str | None = None,
) -> None:
    variables: dict[str, Any] = {
        "input": {
            "userId": str(user_id),
            "checkoutId": str(checkout_id),
            "lines": [{"variantId": str(v), "quantity": q} for v, q in lines],
        }
    }
    await cart.execute(COMPLETE_CHECKOUT, _with_token(variables, cart_token))


async def reserve_stock(
    catalog: ServiceClient, reservation_id: uuid.UUID, lines: list[tuple[uuid.UUID, int]]
) -> list[PricedLine]:
    """Take the stock of each line's variant, all or nothing, at the catalog's current prices; an expected
    refusal is a DomainError. ``lines`` are (variant id, quantity)."""
    variables = {
        "input": {
            "reservationId": str(reservation_id),
            "lines": [{"variantId": str(v), "quantity": q} for v, q in lines],
        }
    }
    payload = (await catalog.execute(RESERVE, variables))["reserveStock"]
    if payload["userErrors"]:
        error = payload["userErrors"][0]
        raise DomainError(ErrorCode(error["code"]), error["message"], ["input", "cart"])
    return [
        PricedLine(
            product_id=uuid.UUID(line["productId"]),
            variant_id=uuid.UUID(line["variantId"]),
            quantity=line["quantity"],
            sku=line["sku"],
            name=line["name"],
            unit_price_minor=to_minor(line["unitPrice"]["amount"], line["unitPrice"]["currencyCode"]),
            currency=line["unitPrice"]["currencyCode"],
        )
        for line in payload["lines"]
    ]


async def release_stock(catalog: ServiceClient, reservation_id: uuid.UUID) -> bool:
    data = await catalog.execute(RELEASE, {"input": {"reservationId": str(reservation_id)}})
    return bool(data["releaseStock"]["released"])
