"""Pricing a cart (what the shopper sees) and a checkout (what the order keeps, with its redemptions)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from subgraphs.kit.db import Database
from subgraphs.kit.domain import DomainError
from subgraphs.kit.domain import ErrorCode as Code

from ..catalog_client import ProductInfo
from . import metrics
from .rules import Breakdown, Discount, Line, ShippingMethod, Usage, price
from .store import Destination, Rules, read_rules, redeem, release_redemptions

log = logging.getLogger("shopgraph.cart.pricing")
tracer = trace.get_tracer("shopgraph.subgraphs")

# Times a checkout prices again when a discount it applied was used up meanwhile.
REDEEM_ROUNDS = 3


@dataclass(frozen=True)
class CartState:
    """What pricing reads from a cart row: where it goes, the chosen method, the entered code, whose it is."""

    destination: Destination | None
    method_id: uuid.UUID | None
    code: str | None
    customer: str | None

    @classmethod
    def of(cls, row: Row[Any]) -> CartState:
        where = Destination(row.ship_country, row.ship_region) if row.ship_country else None
        customer = str(row.user_id) if row.user_id is not None else None
        return cls(where, row.shipping_method_id, row.discount_code, customer)


@dataclass(frozen=True)
class MethodOption:
    method: ShippingMethod
    rate_minor: int


@dataclass
class Quote:
    breakdown: Breakdown
    options: list[MethodOption]
    lines: list[Line]


def lines_of(items: Sequence[tuple[uuid.UUID, int]], products: Sequence[ProductInfo | None]) -> list[Line]:
    """Priced lines of the items the catalog can price (others are left out, as the subtotal leaves them)."""
    return [
        Line(product_id, quantity, p.price_minor, p.weight_grams)
        for (product_id, quantity), p in zip(items, products, strict=True)
        if p is not None
    ]


def quote(
    lines: Sequence[Line],
    state: CartState,
    rules: Rules,
    currency: str,
    now: datetime,
    usage: dict[uuid.UUID, Usage] | None = None,
) -> Quote:
    """The cart's breakdown; the shipping method is the chosen one if it serves the cart, else the cheapest."""
    subtotal = sum(line.amount for line in lines)
    weight = sum(line.weight_grams * line.quantity for line in lines)
    options: list[MethodOption] = []
    for method in rules.methods_for(state.destination):
        rate = method.rate(subtotal, weight)
        if rate is not None:
            options.append(MethodOption(method, rate))
    chosen = next((o for o in options if o.method.id == state.method_id), None)
    if chosen is None and options:
        chosen = min(options, key=lambda o: o.rate_minor)
    entered = rules.by_code.get(state.code) if state.code else None
    candidates: list[Discount] = [*rules.promotions, *([entered] if entered else [])]
    if usage is None:
        usage = {d.id: rules.usage_of(d, state.customer) for d in candidates}
    breakdown = price(
        lines,
        currency=currency,
        method=chosen.method if chosen else None,
        tax=rules.tax_for(state.destination),
        promotions=rules.promotions,
        code=state.code,
        entered=entered,
        usage=usage,
        now=now,
    )
    return Quote(breakdown, options, list(lines))


async def quote_carts(
    db: Database, carts_and_lines: Sequence[tuple[CartState, list[Line]]], currency: str
) -> list[Quote]:
    """Quotes for many carts: the rules are read once for all (four statements at most)."""
    states = [s for s, _ in carts_and_lines]
    rules = await read_rules(
        db,
        [s.destination.country for s in states if s.destination],
        [s.code for s in states if s.code],
        [s.customer for s in states if s.customer],
    )
    now = datetime.now(UTC)
    return [quote(lines, state, rules, currency, now) for state, lines in carts_and_lines]


async def any_rule(db: Database, cart: Any, destination: Destination) -> bool:
    """Whether any rule could change what this cart costs going there (else its price is its subtotal)."""
    if cart.discount_code or cart.shipping_method_id:
        return True  # to be applied, or refused (a chosen method must deliver to the address)
    rules = await read_rules(db, [destination.country], [], [])
    return bool(rules.promotions or rules.methods_for(destination) or rules.tax_for(destination).rate_bp)


async def price_checkout(
    db: Database,
    cart: Any,
    checkout_id: uuid.UUID,
    lines: Sequence[Line],
    destination: Destination,
    customer: str,
    currency: str,
) -> Quote:
    """Price a claimed cart for its order and count its discount uses.

    The rules are read outside any transaction. A discount with a usage limit
    is counted in a transaction that holds its row lock until the use is
    recorded, so a limited code is used at most its limit times however many
    checkouts race for it. A code that does not apply (now, to this destination
    and customer) refuses the checkout: the shopper is never charged more than the
    cart showed without being told. So does a chosen shipping method that does not
    serve the destination.
    """
    with tracer.start_as_current_span("cart.pricing.checkout") as span:
        state = CartState(destination, cart.shipping_method_id, cart.discount_code, customer)
        for _ in range(REDEEM_ROUNDS):
            rules = await read_rules(db, [destination.country], [state.code] if state.code else [], [customer])
            result = quote(lines, state, rules, currency, datetime.now(UTC))
            _refuse_unless_priced(result, state, checkout_id)
            limited = [d for d in result.breakdown.applied if d.usage_limit or d.per_customer_limit]
            refused = await redeem(db, checkout_id, customer, limited) if limited else None
            if refused is None:
                break
            # Used up since the rules were read: priced again, an entered code is refused with its
            # reason, a promotion no longer applies.
            log.info("checkout %s: discount %s was used up meanwhile", checkout_id, refused.code or refused.title)
        else:
            raise DomainError(
                Code.DISCOUNT_NOT_APPLICABLE, "The discounts of this cart are being used up; try again.", ["input"]
            )
        breakdown = result.breakdown
        for discount in breakdown.applied:
            automatic = "true" if discount.code is None else "false"
            metrics.DISCOUNT_REDEMPTIONS.labels(kind=discount.kind.value, automatic=automatic).inc()
        span.set_attribute("shopgraph.checkout_id", str(checkout_id))
        span.set_attribute("shopgraph.total_minor", breakdown.total)
        span.set_attribute("shopgraph.discounts", len(breakdown.applied))
        return result


def _refuse_unless_priced(result: Quote, state: CartState, checkout_id: uuid.UUID) -> None:
    breakdown = result.breakdown
    for use in breakdown.uses:
        if not use.applicable and use.code is not None and use.reason is not None:
            metrics.DISCOUNT_REFUSALS.labels(reason=use.reason.value, at="checkout").inc()
            log.info("checkout %s: discount %s refused (%s)", checkout_id, use.code, use.reason.value)
            raise DomainError(
                Code.DISCOUNT_NOT_APPLICABLE,
                f"The code {use.code} cannot be used: {use.reason.value.replace('_', ' ').lower()}.",
                ["input", "discountCode"],
            )
    shipped_by = breakdown.shipping_method.id if breakdown.shipping_method else None
    if state.method_id is not None and shipped_by != state.method_id:
        raise DomainError(
            Code.SHIPPING_UNAVAILABLE,
            "The chosen shipping method does not deliver to this address; choose another one.",
            ["input", "shippingAddress", "country"],
        )


async def release_checkout_redemptions(conn: AsyncConnection, checkout_id: uuid.UUID) -> None:
    released = await release_redemptions(conn, checkout_id)
    if released:
        metrics.DISCOUNT_RELEASES.inc(released)
        log.info("checkout %s failed: %d discount use(s) given back", checkout_id, released)
