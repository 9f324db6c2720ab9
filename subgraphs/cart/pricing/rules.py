"""The pricing rules, pure: a cart's lines and the shop's rules in, the priced breakdown out.

No I/O here: ``store.py`` reads the rules, ``quote.py`` puts them together for
a cart or a checkout. Every amount is an integer of minor units; percentages
and tax rates are basis points; rounding is half-even on Decimals, per line.

The breakdown, in the order it is computed:

- subtotal: the sum of the lines (unit price times quantity, as the catalog shows them);
- discounts: every applicable promotion and the entered code, percentages of the
  subtotal first, then fixed amounts, never more than the subtotal; spread over the
  lines in proportion to their amounts (largest remainder), for the lines' tax;
- shipping: the chosen method's rate for the cart's subtotal or weight; zero when a
  free-shipping discount applies;
- tax: per line, on what the line costs after its share of the discounts, at the
  destination's rate. Where prices include tax, it is the part of the line's price
  that is tax, and the total does not add it; else it is added. Shipping is not taxed.
- total = subtotal - discounts + shipping (+ tax where prices exclude it).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from enum import Enum

BASIS = 10_000


class RateType(Enum):
    FLAT = "FLAT"
    BY_SUBTOTAL = "BY_SUBTOTAL"
    BY_WEIGHT = "BY_WEIGHT"


class DiscountKind(Enum):
    PERCENTAGE = "PERCENTAGE"
    FIXED_AMOUNT = "FIXED_AMOUNT"
    FREE_SHIPPING = "FREE_SHIPPING"


class Refusal(Enum):
    """Why a discount does not apply (shown in the cart; a checkout with such a code is refused)."""

    NOT_FOUND = "NOT_FOUND"
    DISABLED = "DISABLED"
    NOT_STARTED = "NOT_STARTED"
    EXPIRED = "EXPIRED"
    MINIMUM_NOT_MET = "MINIMUM_NOT_MET"
    USAGE_LIMIT_REACHED = "USAGE_LIMIT_REACHED"
    CUSTOMER_LIMIT_REACHED = "CUSTOMER_LIMIT_REACHED"


@dataclass(frozen=True)
class Line:
    key: uuid.UUID
    quantity: int
    unit_price_minor: int
    weight_grams: int = 0

    @property
    def amount(self) -> int:
        return self.unit_price_minor * self.quantity


@dataclass(frozen=True)
class Band:
    """A rate for everything below ``up_to`` (minor units or grams); ``None``: no upper bound."""

    up_to: int | None
    price_minor: int


@dataclass(frozen=True)
class ShippingMethod:
    id: uuid.UUID
    zone_name: str
    name: str
    rate_type: RateType
    flat_minor: int
    bands: tuple[Band, ...]
    min_days: int
    max_days: int

    def rate(self, subtotal_minor: int, weight_grams: int) -> int | None:
        """What this method costs for a cart; None when no band covers it (the method is unavailable)."""
        if self.rate_type is RateType.FLAT:
            return self.flat_minor
        measure = subtotal_minor if self.rate_type is RateType.BY_SUBTOTAL else weight_grams
        for band in self.bands:
            if band.up_to is None or measure < band.up_to:
                return band.price_minor
        return None


@dataclass(frozen=True)
class Discount:
    id: uuid.UUID
    code: str | None  # None: an automatic promotion
    title: str
    kind: DiscountKind
    value: int
    min_subtotal_minor: int = 0
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    usage_limit: int | None = None
    per_customer_limit: int | None = None
    active: bool = True
    used: int = 0


@dataclass(frozen=True)
class Usage:
    """How often a discount was used: by everyone, and by this customer (0 when unknown, e.g. a guest cart)."""

    total: int = 0
    by_customer: int = 0


@dataclass(frozen=True)
class TaxRate:
    rate_bp: int
    prices_include_tax: bool


NO_TAX = TaxRate(0, False)


@dataclass(frozen=True)
class DiscountUse:
    """A discount as the cart shows it: an entered code (``discount`` None when it does not exist) or a promotion."""

    code: str | None
    discount: Discount | None
    reason: Refusal | None
    amount_minor: int = 0

    @property
    def applicable(self) -> bool:
        return self.reason is None


@dataclass
class Breakdown:
    currency: str
    subtotal: int = 0
    discounts: int = 0
    shipping: int = 0
    tax: int = 0
    total: int = 0
    prices_include_tax: bool = False
    line_tax: dict[uuid.UUID, int] = field(default_factory=dict)
    line_discount: dict[uuid.UUID, int] = field(default_factory=dict)
    uses: list[DiscountUse] = field(default_factory=list)
    shipping_method: ShippingMethod | None = None

    @property
    def applied(self) -> list[Discount]:
        return [u.discount for u in self.uses if u.applicable and u.discount is not None]


def refusal(discount: Discount, subtotal: int, usage: Usage, now: datetime) -> Refusal | None:
    if not discount.active:
        return Refusal.DISABLED
    if discount.starts_at is not None and now < discount.starts_at:
        return Refusal.NOT_STARTED
    if discount.ends_at is not None and now >= discount.ends_at:
        return Refusal.EXPIRED
    if subtotal < discount.min_subtotal_minor:
        return Refusal.MINIMUM_NOT_MET
    if discount.usage_limit is not None and usage.total >= discount.usage_limit:
        return Refusal.USAGE_LIMIT_REACHED
    if discount.per_customer_limit is not None and usage.by_customer >= discount.per_customer_limit:
        return Refusal.CUSTOMER_LIMIT_REACHED
    return None


def round_half_even(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_HALF_EVEN))


def spread(amount: int, weights: Sequence[int]) -> list[int]:
    """``amount`` split in proportion to ``weights`` (largest remainder): the parts sum to ``amount`` exactly."""
    total = sum(weights)
    if total <= 0 or amount <= 0:
        return [0] * len(weights)
    exact = [amount * w for w in weights]
    parts = [e // total for e in exact]
    short = amount - sum(parts)
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(exact[i] % total), i))
    for i in by_remainder[:short]:
        parts[i] += 1
    return parts


def price(
    lines: Sequence[Line],
    *,
    currency: str,
    method: ShippingMethod | None,
    tax: TaxRate,
    promotions: Sequence[Discount],
    code: str | None,
    entered: Discount | None,
    usage: Mapping[uuid.UUID, Usage],
    now: datetime,
) -> Breakdown:
    """The priced breakdown of ``lines`` (see the module docstring for the rules)."""
    out = Breakdown(currency=currency, prices_include_tax=tax.prices_include_tax, shipping_method=method)
    out.subtotal = sum(line.amount for line in lines)
    weight = sum(line.weight_grams * line.quantity for line in lines)

    candidates: list[tuple[str | None, Discount | None]] = [(None, p) for p in promotions]
    if code is not None:
        candidates.append((code, entered))
    uses: list[DiscountUse] = []
    for shown, discount in candidates:
        if discount is None:
            uses.append(DiscountUse(shown, None, Refusal.NOT_FOUND))
            continue
        reason = refusal(discount, out.subtotal, usage.get(discount.id, Usage()), now)
        uses.append(DiscountUse(shown if shown is not None else discount.code, discount, reason))

    # Percentages of the subtotal first, then fixed amounts, never past the subtotal.
    remaining = out.subtotal
    amounts: dict[int, int] = {}
    order = sorted(
        (i for i, u in enumerate(uses) if u.applicable and u.discount is not None),
        key=lambda i: 0 if uses[i].discount.kind is DiscountKind.PERCENTAGE else 1,  # type: ignore[union-attr]
    )
    free_shipping = False
    for i in order:
        discount = uses[i].discount
        assert discount is not None
        if discount.kind is DiscountKind.FREE_SHIPPING:
            free_shipping = True
            continue
        if discount.kind is DiscountKind.PERCENTAGE:
            wanted = round_half_even(Decimal(out.subtotal) * discount.value / BASIS)
        else:
            wanted = discount.value
        amounts[i] = min(wanted, remaining)
        remaining -= amounts[i]
    out.discounts = out.subtotal - remaining

    shipping = 0
    if method is not None:
        rate = method.rate(out.subtotal, weight)
        shipping = rate or 0
    if free_shipping:
        for i in order:
            discount = uses[i].discount
            if discount is not None and discount.kind is DiscountKind.FREE_SHIPPING:
                amounts[i] = shipping
                break
        shipping = 0
    out.shipping = shipping
    out.uses = [DiscountUse(u.code, u.discount, u.reason, amounts.get(i, 0)) for i, u in enumerate(uses)]

    shares = spread(out.discounts, [line.amount for line in lines])
    for line, share in zip(lines, shares, strict=True):
        net = line.amount - share
        out.line_discount[line.key] = share
        if tax.prices_include_tax:
            line_tax = round_half_even(Decimal(net) * tax.rate_bp / (BASIS + tax.rate_bp))
        else:
            line_tax = round_half_even(Decimal(net) * tax.rate_bp / BASIS)
        out.line_tax[line.key] = line_tax
    out.tax = sum(out.line_tax.values())
    out.total = out.subtotal - out.discounts + out.shipping + (0 if tax.prices_include_tax else out.tax)
    return out
