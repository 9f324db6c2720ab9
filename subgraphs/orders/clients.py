"""The orders subgraph's calls to cart and catalog (over GraphQL, with internal tokens)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from gql import gql

from subgraphs.kit.domain import DomainError, ErrorCode
from subgraphs.kit.money import to_minor
from subgraphs.kit.service_client import ServiceClient

CART = gql("query CheckoutCart { cart { items { quantity product { id } } } }")
COMPLETE_CHECKOUT = gql(
    """
    mutation CompleteCheckout($input: CompleteCheckoutInput!) {
      completeCheckout(input: $input) { removed }
    }
    """
)
BEGIN_CHECKOUT = gql(
    """
    mutation BeginCheckout($input: CartCheckoutInput!) {
      beginCheckout(input: $input) { lines { productId quantity } userErrors { code field message } }
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
        lines { productId quantity sku name unitPrice { amount currencyCode } }
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
    sku: str
    name: str
    unit_price_minor: int
    currency: str


async def cart_lines(cart: ServiceClient, user_id: uuid.UUID, role: str | None) -> list[tuple[uuid.UUID, int]]:
    """The shopper's cart, read as that shopper (so cart's own authorisation applies)."""
    data = await cart.execute(CART, user_id=user_id, role=role)
    return [(uuid.UUID(i["product"]["id"]), i["quantity"]) for i in data["cart"]["items"]]


async def begin_checkout(
    cart: ServiceClient, user_id: uuid.UUID, checkout_id: uuid.UUID
) -> list[tuple[uuid.UUID, int]]:
    """Claim the shopper's cart for this checkout and read its lines; refused while another checkout holds it."""
    variables = {"input": {"userId": str(user_id), "checkoutId": str(checkout_id)}}
    payload = (await cart.execute(BEGIN_CHECKOUT, variables))["beginCheckout"]
    if payload["userErrors"]:
        error = payload["userErrors"][0]
        raise DomainError(ErrorCode(error["code"]), error["message"], error["field"])
    return [(uuid.UUID(line["productId"]), line["quantity"]) for line in payload["lines"]]


async def release_checkout(cart: ServiceClient, user_id: uuid.UUID, checkout_id: uuid.UUID) -> None:
    variables = {"input": {"userId": str(user_id), "checkoutId": str(checkout_id)}}
    await cart.execute(RELEASE_CHECKOUT, variables)


async def complete_checkout(
    cart: ServiceClient, user_id: uuid.UUID, checkout_id: uuid.UUID, lines: list[tuple[uuid.UUID, int]]
) -> None:
    variables = {
        "input": {
            "userId": str(user_id),
            "checkoutId": str(checkout_id),
            "lines": [{"productId": str(p), "quantity": q} for p, q in lines],
        }
    }
    await cart.execute(COMPLETE_CHECKOUT, variables)


async def reserve_stock(
    catalog: ServiceClient, reservation_id: uuid.UUID, lines: list[tuple[uuid.UUID, int]]
) -> list[PricedLine]:
    """Take the stock, all or nothing, at the catalog's current prices; an expected refusal is a DomainError."""
    variables = {
        "input": {
            "reservationId": str(reservation_id),
            "lines": [{"productId": str(p), "quantity": q} for p, q in lines],
        }
    }
    payload = (await catalog.execute(RESERVE, variables))["reserveStock"]
    if payload["userErrors"]:
        error = payload["userErrors"][0]
        raise DomainError(ErrorCode(error["code"]), error["message"], ["input", "cart"])
    return [
        PricedLine(
            product_id=uuid.UUID(line["productId"]),
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
