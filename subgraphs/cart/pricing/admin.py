"""The shop team's pricing rules: shipping zones and methods, tax rates, discount codes (validated here)."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError

from subgraphs.kit.db import Database
from subgraphs.kit.domain import DomainError
from subgraphs.kit.domain import ErrorCode as Code

from ..models import discounts, shipping_methods, shipping_zones, tax_rates
from .rules import BASIS, DiscountKind, RateType

log = logging.getLogger("shopgraph.cart.pricing")

CODE = re.compile(r"[A-Z0-9_-]{3,40}")
COUNTRY = re.compile(r"[A-Z]{2}|\*")
MAX_BANDS = 20
MAX_DAYS = 365
MAX_MINOR = 10**12


def clean_code(text: str) -> str:
    """A discount code as stored: trimmed, upper-case; refused unless 3..40 of A-Z 0-9 _ -."""
    code = text.strip().upper()
    if not CODE.fullmatch(code):
        raise DomainError(Code.INVALID, "A code is 3 to 40 letters, digits, '-' or '_'.", ["input", "code"])
    return code


def clean_country(text: str, field: Sequence[str]) -> str:
    country = text.strip().upper()
    if not COUNTRY.fullmatch(country):
        raise DomainError(Code.INVALID, "Use a two-letter ISO country code.", field)
    return country


def _amount(value: int, field: Sequence[str]) -> int:
    if not 0 <= value <= MAX_MINOR:
        raise DomainError(Code.INVALID_PRICE, "Amounts must be zero or more.", field)
    return value


@dataclass(frozen=True)
class BandSpec:
    up_to: int | None
    price_minor: int


@dataclass(frozen=True)
class DiscountSpec:
    code: str | None
    title: str
    kind: DiscountKind
    value: int
    min_subtotal_minor: int = 0
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    usage_limit: int | None = None
    per_customer_limit: int | None = None


class PricingAdmin:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create_zone(self, name: str, countries: Sequence[str], regions: Sequence[str]) -> Row[Any]:
        name = name.strip()
        if not 1 <= len(name) <= 100:
            raise DomainError(Code.INVALID, "A zone needs a name of 1 to 100 characters.", ["input", "name"])
        cleaned = sorted({clean_country(c, ["input", "countries"]) for c in countries})
        if not 1 <= len(cleaned) <= 300:
            raise DomainError(Code.INVALID, "A zone covers 1 to 300 countries.", ["input", "countries"])
        kept_regions = sorted({r.strip().upper() for r in regions if r.strip()})
        if len(kept_regions) > 100 or any(len(r) > 60 for r in kept_regions):
            raise DomainError(Code.INVALID, "At most 100 regions of up to 60 characters.", ["input", "regions"])
        async with self.db.transaction() as conn:
            row: Row[Any] = (
                await conn.execute(
                    insert(shipping_zones)
                    .values(name=name, countries=cleaned, regions=kept_regions)
                    .returning(shipping_zones)
                )
            ).one()
        log.info("shipping zone %s created: %s", row.id, ",".join(cleaned))
        return row

    async def create_method(
        self,
        zone_id: uuid.UUID | None,
        name: str,
        rate_type: RateType,
        flat_minor: int,
        bands: Sequence[BandSpec],
        min_days: int,
        max_days: int,
    ) -> Row[Any]:
        name = name.strip()
        if not 1 <= len(name) <= 100:
            raise DomainError(Code.INVALID, "A method needs a name of 1 to 100 characters.", ["input", "name"])
        if not 0 <= min_days <= max_days <= MAX_DAYS:
            raise DomainError(Code.INVALID, "Delivery takes 0 to 365 days, minDays ≤ maxDays.", ["input", "minDays"])
        _amount(flat_minor, ["input", "flatRate"])
        if rate_type is RateType.FLAT and bands:
            raise DomainError(Code.INVALID, "A flat rate has no bands.", ["input", "bands"])
        if rate_type is not RateType.FLAT:
            if not 1 <= len(bands) <= MAX_BANDS:
                raise DomainError(Code.INVALID, f"Give 1 to {MAX_BANDS} bands.", ["input", "bands"])
            bounds = [b.up_to for b in bands]
            if any(b is None for b in bounds[:-1]) or any(b is not None and b <= 0 for b in bounds):
                raise DomainError(
                    Code.INVALID, "Only the last band is open-ended; bounds are positive.", ["input", "bands"]
                )
            closed = [b for b in bounds if b is not None]
            if closed != sorted(set(closed)):
                raise DomainError(Code.INVALID, "Band bounds must increase.", ["input", "bands"])
            for band in bands:
                _amount(band.price_minor, ["input", "bands"])
        async with self.db.transaction() as conn:
            zone = (await conn.execute(select(shipping_zones.c.id).where(shipping_zones.c.id == zone_id))).one_or_none()
            if zone is None:
                raise DomainError(Code.NOT_FOUND, "No such shipping zone.", ["input", "zoneId"])
            row: Row[Any] = (
                await conn.execute(
                    insert(shipping_methods)
                    .values(
                        zone_id=zone_id,
                        name=name,
                        rate_type=rate_type.value,
                        flat_minor=flat_minor,
                        bands=[{"upTo": b.up_to, "price": b.price_minor} for b in bands],
                        min_days=min_days,
                        max_days=max_days,
                        active=True,
                    )
                    .returning(shipping_methods)
                )
            ).one()
        return row

    async def set_tax_rate(self, country: str, region: str | None, rate_bp: int, prices_include_tax: bool) -> Row[Any]:
        country = clean_country(country, ["input", "country"])
        if country == "*":
            raise DomainError(Code.INVALID, "Tax rates are per country.", ["input", "country"])
        if not 0 <= rate_bp <= BASIS:
            raise DomainError(Code.INVALID, "A rate is 0 to 100 %.", ["input", "rate"])
        where = (region or "").strip().upper()
        if len(where) > 60:
            raise DomainError(Code.TOO_LONG, "region is too long.", ["input", "region"])
        values = {"country": country, "region": where, "rate_bp": rate_bp, "prices_include_tax": prices_include_tax}
        async with self.db.transaction() as conn:
            row: Row[Any] = (
                await conn.execute(
                    pg_insert(tax_rates)
                    .values(**values)
                    .on_conflict_do_update(index_elements=["country", "region"], set_=values)
                    .returning(tax_rates)
                )
            ).one()
        log.info("tax rate %s/%s set to %d bp (inclusive: %s)", country, where or "*", rate_bp, prices_include_tax)
        return row

    async def create_discount(self, spec: DiscountSpec) -> Row[Any]:
        title = spec.title.strip()
        if not 1 <= len(title) <= 100:
            raise DomainError(Code.INVALID, "A discount needs a title of 1 to 100 characters.", ["input", "title"])
        if spec.kind is DiscountKind.PERCENTAGE and not 0 < spec.value <= BASIS:
            raise DomainError(Code.INVALID, "A percentage is more than 0 and at most 100.", ["input", "value"])
        if spec.kind is DiscountKind.FIXED_AMOUNT and not 0 < spec.value <= MAX_MINOR:
            raise DomainError(Code.INVALID_PRICE, "A fixed amount is more than zero.", ["input", "value"])
        _amount(spec.min_subtotal_minor, ["input", "minSubtotal"])
        if spec.starts_at and spec.ends_at and spec.starts_at >= spec.ends_at:
            raise DomainError(Code.INVALID, "A discount ends after it starts.", ["input", "endsAt"])
        for name, limit in (("usageLimit", spec.usage_limit), ("perCustomerLimit", spec.per_customer_limit)):
            if limit is not None and not 1 <= limit <= 10**9:
                raise DomainError(Code.INVALID, "A limit is at least 1.", ["input", name])
        values = {
            "code": spec.code,
            "title": title,
            "kind": spec.kind.value,
            "value": spec.value if spec.kind is not DiscountKind.FREE_SHIPPING else 0,
            "min_subtotal_minor": spec.min_subtotal_minor,
            "starts_at": spec.starts_at,
            "ends_at": spec.ends_at,
            "usage_limit": spec.usage_limit,
            "per_customer_limit": spec.per_customer_limit,
            "active": True,
        }
        try:
            async with self.db.transaction() as conn:
                row: Row[Any] = (await conn.execute(insert(discounts).values(**values).returning(discounts))).one()
        except IntegrityError as exc:
            raise DomainError(Code.CODE_TAKEN, "This code exists already.", ["input", "code"]) from exc
        log.info("discount %s created (%s, %s)", row.id, spec.code or "automatic", spec.kind.value)
        return row

    async def set_discount_active(self, discount_id: uuid.UUID | None, active: bool) -> Row[Any]:
        async with self.db.transaction() as conn:
            row: Row[Any] | None = (
                await conn.execute(
                    update(discounts).where(discounts.c.id == discount_id).values(active=active).returning(discounts)
                )
            ).one_or_none()
        if row is None:
            raise DomainError(Code.NOT_FOUND, "No such discount.", ["input", "id"])
        log.info("discount %s %s", row.id, "enabled" if active else "disabled")
        return row
