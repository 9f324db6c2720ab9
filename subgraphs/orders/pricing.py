"""The "price" step of checkout, as orders sees it: the cart subgraph's quote, and what the order keeps of it.

The flow is price → reserve → order → pay (one place: ``Orders.checkout``). The
cart prices the claimed cart (shipping, tax, discounts; its discount uses are
counted there, given back if the checkout fails); the catalog then reserves the
stock at its prices, which must be the quoted ones (else PRICE_CHANGED: the
shopper sees the new prices in the cart and checks out again); the order stores
the quote as placed.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gql import gql

from subgraphs.kit.domain import DomainError, ErrorCode
from subgraphs.kit.money import to_minor
from subgraphs.kit.service_client import ServiceClient

MONEY = "{ amount currencyCode }"
BEGIN_PRICED_CHECKOUT = gql(
    f"""
    mutation BeginPricedCheckout($input: BeginPricedCheckoutInput!) {{
      beginPricedCheckout(input: $input) {{
        lines {{ variantId quantity }}
        priced {{
          cost {{ subtotal {MONEY} discounts {MONEY} shipping {MONEY} tax {MONEY} total {MONEY} taxIncluded }}
          lines {{ variantId quantity unitPrice {MONEY} tax {MONEY} discount {MONEY} }}
          shippingMethod
          discountCodes
        }}
        userErrors {{ code field message }}
      }}
    }}
    """
)


@dataclass(frozen=True)
class QuotedLine:
    unit_price_minor: int
    tax_minor: int
    discount_minor: int


@dataclass(frozen=True)
class Quote:
    currency: str
    subtotal: int
    discounts: int
    shipping: int
    tax: int
    total: int
    tax_included: bool
    shipping_method: str | None
    discount_codes: list[str]
    lines: dict[uuid.UUID, QuotedLine]

    def order_values(self) -> dict[str, Any]:
        """The order's columns of the breakdown."""
        return {
            "subtotal_minor": self.subtotal,
            "discounts_minor": self.discounts,
            "shipping_minor": self.shipping,
            "tax_minor": self.tax,
            "total_minor": self.total,
            "tax_included": self.tax_included,
            "shipping_method": self.shipping_method,
            "discount_codes": self.discount_codes,
        }

    def check(self, reserved: Sequence[Any]) -> None:
        """The catalog reserved at the quoted prices (else the shopper must see the new ones first)."""
        for line in reserved:
            quoted = self.lines.get(line.variant_id)
            if quoted is None or quoted.unit_price_minor != line.unit_price_minor or line.currency != self.currency:
                raise DomainError(
                    ErrorCode.PRICE_CHANGED,
                    f"The price of {line.name} changed while you checked out; review your cart and try again.",
                    ["input", "cart"],
                )


def settled(quote: Quote | None, reserved: Sequence[Any]) -> Quote:
    """The breakdown the order keeps: the quote, checked against what the catalog reserved; without a
    quote (no rule applied), the reserved lines at their prices with no discounts, shipping or tax."""
    if quote is not None:
        quote.check(reserved)
        return quote
    subtotal = sum(line.unit_price_minor * line.quantity for line in reserved)
    return Quote(
        currency=reserved[0].currency,
        subtotal=subtotal,
        discounts=0,
        shipping=0,
        tax=0,
        total=subtotal,
        tax_included=False,
        shipping_method=None,
        discount_codes=[],
        lines={line.variant_id: QuotedLine(line.unit_price_minor, 0, 0) for line in reserved},
    )


async def begin_checkout(
    cart: ServiceClient,
    user_id: uuid.UUID,
    checkout_id: uuid.UUID,
    shipping: dict[str, Any],
    *,
    cart_token: str | None = None,
) -> tuple[list[tuple[uuid.UUID, int]], Quote | None]:
    """Claim the shopper's cart for this checkout and price it for the address: its lines (variant id,
    quantity) and the quote (None when no rule applies).

    Refused while another checkout holds the cart, and when the cart cannot be
    priced as shown (a code that no longer applies, a method that does not deliver
    there): then the cart is the shopper's again and no discount use is counted.
    """
    variables: dict[str, Any] = {
        "input": {
            "userId": str(user_id),
            "checkoutId": str(checkout_id),
            "country": shipping["country"],
            "region": shipping.get("region"),
        }
    }
    if cart_token is not None:  # a guest's checkout: the cart the token names (user_id: the guest's customer id)
        variables["input"]["cartToken"] = cart_token
    payload = (await cart.execute(BEGIN_PRICED_CHECKOUT, variables))["beginPricedCheckout"]
    if payload["userErrors"]:
        error = payload["userErrors"][0]
        raise DomainError(ErrorCode(error["code"]), error["message"], error["field"])
    lines = [(uuid.UUID(line["variantId"]), line["quantity"]) for line in payload["lines"]]
    priced = payload["priced"]
    if priced is None:
        return lines, None
    cost = priced["cost"]

    def minor(money: dict[str, str]) -> int:
        return to_minor(money["amount"], money["currencyCode"])

    return lines, Quote(
        currency=cost["total"]["currencyCode"],
        subtotal=minor(cost["subtotal"]),
        discounts=minor(cost["discounts"]),
        shipping=minor(cost["shipping"]),
        tax=minor(cost["tax"]),
        total=minor(cost["total"]),
        tax_included=bool(cost["taxIncluded"]),
        shipping_method=priced["shippingMethod"],
        discount_codes=list(priced["discountCodes"]),
        lines={
            uuid.UUID(line["variantId"]): QuotedLine(
                minor(line["unitPrice"]), minor(line["tax"]), minor(line["discount"])
            )
            for line in priced["lines"]
        },
    )
