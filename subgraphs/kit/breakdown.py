"""The priced breakdown the cart shows and the order keeps (one shareable type for both subgraphs)."""

from __future__ import annotations

import strawberry

from .money import Money


@strawberry.federation.type(
    shareable=True,
    description="What a cart or an order costs, computed by the server: "
    "total = subtotal - discounts + shipping (+ tax unless taxIncluded).",
)
class PriceBreakdown:
    subtotal: Money = strawberry.field(description="The lines at their unit prices.")
    discounts: Money = strawberry.field(description="Taken off the lines (a free-shipping code shows in shipping).")
    shipping: Money
    tax: Money = strawberry.field(description="The tax in the total (included in the prices when taxIncluded).")
    total: Money
    tax_included: bool = strawberry.field(description="Prices include tax (the total does not add it again).")

    @classmethod
    def of(
        cls, currency: str, *, subtotal: int, discounts: int, shipping: int, tax: int, total: int, tax_included: bool
    ) -> PriceBreakdown:
        return cls(
            subtotal=Money.of(subtotal, currency),
            discounts=Money.of(discounts, currency),
            shipping=Money.of(shipping, currency),
            tax=Money.of(tax, currency),
            total=Money.of(total, currency),
            tax_included=tax_included,
        )
