"""The pricing rules as stored in the cart schema: read for many carts at once, and the redemptions.

Reading the rules for any number of carts costs four statements (methods, tax
rates, discounts, usage), whatever the number of carts, lines or codes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row, Text, bindparam, func, or_, select, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncConnection

from subgraphs.kit.db import Database, Read

from ..models import discount_redemptions, discounts, shipping_methods, shipping_zones, tax_rates
from .rules import NO_TAX, Band, Discount, DiscountKind, RateType, ShippingMethod, TaxRate, Usage

ANY_COUNTRY = "*"


@dataclass(frozen=True)
class Destination:
    country: str
    region: str | None = None


@dataclass
class Rules:
    """Everything pricing needs for a batch of carts."""

    zones: list[tuple[frozenset[str], frozenset[str], ShippingMethod]] = field(default_factory=list)
    tax: dict[tuple[str, str], TaxRate] = field(default_factory=dict)
    by_code: dict[str, Discount] = field(default_factory=dict)
    promotions: list[Discount] = field(default_factory=list)
    # Uses of the per-customer limited discounts by the customers asked about.
    usage: dict[tuple[uuid.UUID, str | None], int] = field(default_factory=dict)

    def methods_for(self, where: Destination | None) -> list[ShippingMethod]:
        if where is None:
            return []
        return [
            method
            for countries, regions, method in self.zones
            if (where.country in countries or ANY_COUNTRY in countries)
            and (not regions or (where.region or "").upper() in regions)
        ]

    def tax_for(self, where: Destination | None) -> TaxRate:
        if where is None:
            return NO_TAX
        region = (where.region or "").upper()
        return self.tax.get((where.country, region)) or self.tax.get((where.country, "")) or NO_TAX

    def usage_of(self, discount: Discount, customer: str | None) -> Usage:
        mine = self.usage.get((discount.id, customer), 0) if customer is not None else 0
        return Usage(total=discount.used, by_customer=mine)


def method_of(row: Row[Any], zone_name: str) -> ShippingMethod:
    return ShippingMethod(
        id=row.id,
        zone_name=zone_name,
        name=row.name,
        rate_type=RateType(row.rate_type),
        flat_minor=row.flat_minor,
        bands=tuple(Band(b.get("upTo"), int(b["price"])) for b in row.bands),
        min_days=row.min_days,
        max_days=row.max_days,
    )


def discount_of(row: Row[Any]) -> Discount:
    return Discount(
        id=row.id,
        code=row.code,
        title=row.title,
        kind=DiscountKind(row.kind),
        value=row.value,
        min_subtotal_minor=row.min_subtotal_minor,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        usage_limit=row.usage_limit,
        per_customer_limit=row.per_customer_limit,
        active=row.active,
        used=row.used,
    )


_TEXTS = ARRAY(Text)
# The rules' reads, compiled once and run on the read pool (``Database.fetch``): four statements at
# most for any number of carts, and none of them in a transaction.
METHODS = Read(
    select(
        shipping_methods,
        shipping_zones.c.name.label("zone_name"),
        shipping_zones.c.countries,
        shipping_zones.c.regions,
    )
    .join(shipping_zones, shipping_zones.c.id == shipping_methods.c.zone_id)
    .where(shipping_methods.c.active, shipping_zones.c.countries.overlap(bindparam("countries", type_=_TEXTS)))
    .order_by(shipping_methods.c.created_at, shipping_methods.c.id)
)
TAXES = Read(select(tax_rates).where(tax_rates.c.country == func.any(bindparam("countries", type_=_TEXTS))))
DISCOUNTS = Read(
    select(discounts).where(
        or_(
            discounts.c.code.is_(None) & discounts.c.active,
            discounts.c.code == func.any(bindparam("codes", type_=_TEXTS)),
        )
    )
)
USAGE = Read(
    select(discount_redemptions.c.discount_id, discount_redemptions.c.customer.label("who"), func.count().label("n"))
    .where(
        discount_redemptions.c.discount_id == func.any(bindparam("ids", type_=ARRAY(UUID(as_uuid=True)))),
        discount_redemptions.c.customer == func.any(bindparam("customers", type_=_TEXTS)),
    )
    .group_by(discount_redemptions.c.discount_id, discount_redemptions.c.customer)
)


async def read_rules(db: Database, countries: Iterable[str], codes: Iterable[str], customers: Iterable[str]) -> Rules:
    """The rules for carts going to ``countries`` with ``codes`` entered, and ``customers``' own uses."""
    wanted_countries, wanted_codes = sorted(set(countries)), sorted(set(codes))
    rules = Rules()
    if wanted_countries:
        rows = await db.fetch(METHODS, countries=[*wanted_countries, ANY_COUNTRY])
        rules.zones = [
            (frozenset(r.countries), frozenset(x.upper() for x in r.regions), method_of(r, r.zone_name)) for r in rows
        ]
        taxes = await db.fetch(TAXES, countries=wanted_countries)
        rules.tax = {(r.country, r.region): TaxRate(r.rate_bp, r.prices_include_tax) for r in taxes}
    for row in await db.fetch(DISCOUNTS, codes=wanted_codes):
        discount = discount_of(row)
        if discount.code is None:
            rules.promotions.append(discount)
        else:
            rules.by_code[discount.code] = discount
    ids = [d.id for d in [*rules.promotions, *rules.by_code.values()] if d.per_customer_limit]
    customers = sorted(set(customers))
    if ids and customers:
        counted = await db.fetch(USAGE, ids=ids, customers=customers)
        rules.usage = {(r.discount_id, r.who): r.n for r in counted}
    return rules


# One statement, so the discount's row is locked only while PostgreSQL runs it (never across a
# round trip): the counter moves only below the limit, the customer's own uses are under theirs, and a
# checkout counts once however often it is retried. A concurrent redemption makes this one wait on the
# row and re-check the limit against the counter it left (READ COMMITTED's re-check of the updated row).
REDEEM = text(
    """
    WITH bumped AS (
        UPDATE discounts d SET used = d.used + 1
        WHERE d.id = :discount_id
          AND (d.usage_limit IS NULL OR d.used < d.usage_limit)
          AND (d.per_customer_limit IS NULL OR (
                SELECT count(*) FROM discount_redemptions r WHERE r.discount_id = d.id AND r.customer = :customer
              ) < d.per_customer_limit)
          AND NOT EXISTS (
                SELECT 1 FROM discount_redemptions r WHERE r.discount_id = d.id AND r.checkout_id = :checkout_id)
        RETURNING d.id
    )
    INSERT INTO discount_redemptions (discount_id, checkout_id, customer)
    SELECT id, :checkout_id, :customer FROM bumped
    RETURNING discount_id
    """
).bindparams(bindparam("discount_id", type_=UUID(as_uuid=True)), bindparam("checkout_id", type_=UUID(as_uuid=True)))
MINE = select(discount_redemptions.c.discount_id).where(
    discount_redemptions.c.discount_id == bindparam("discount_id"),
    discount_redemptions.c.checkout_id == bindparam("checkout_id"),
)
RELEASE = text(
    """
    WITH gone AS (DELETE FROM discount_redemptions WHERE checkout_id = :checkout_id RETURNING discount_id)
    UPDATE discounts d SET used = d.used - 1 FROM gone WHERE d.id = gone.discount_id
    RETURNING d.id
    """
).bindparams(bindparam("checkout_id", type_=UUID(as_uuid=True)))


async def redeem(db: Database, checkout_id: uuid.UUID, customer: str, limited: Sequence[Discount]) -> Discount | None:
    """Count this checkout's use of each limited discount; the first one refused (its limit reached), else None.

    Each use is its own autocommit statement; when one is refused, the uses this
    call counted are given back before it returns.
    """
    async with db.read() as conn:  # autocommit: each statement commits on its own
        for discount in limited:
            params = {"discount_id": discount.id, "checkout_id": checkout_id, "customer": customer}
            counted = (await conn.execute(REDEEM, params)).first()
            if counted is None and (await conn.execute(MINE, params)).first() is None:
                await conn.execute(RELEASE, {"checkout_id": checkout_id})
                return discount
    return None


async def release_redemptions(conn: AsyncConnection, checkout_id: uuid.UUID) -> int:
    """A failed checkout's uses are given back (a retry under the same key counts them again)."""
    return len((await conn.execute(RELEASE, {"checkout_id": checkout_id})).all())
