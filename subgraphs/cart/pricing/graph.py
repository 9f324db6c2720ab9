"""Pricing's graph surface: what the cart shows (shipping options, discount codes) and the admin mutations."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import strawberry
from sqlalchemy import Row
from strawberry.types import Info

from subgraphs.kit.context import RequestContext
from subgraphs.kit.errors import UserError, bad_input
from subgraphs.kit.loaders import parse_uuid
from subgraphs.kit.money import Money, to_minor
from subgraphs.kit.mutations import admin, mutate

from .admin import BandSpec, DiscountSpec, PricingAdmin, clean_code
from .quote import MethodOption
from .rules import BASIS, DiscountKind, DiscountUse, RateType, Refusal, ShippingMethod

PricingInfo = Info[RequestContext, None]

strawberry.enum(RateType, name="ShippingRateType", description="FLAT, or by the cart's subtotal or weight (bands).")
strawberry.enum(DiscountKind, name="DiscountKind")
strawberry.enum(Refusal, name="DiscountRefusal", description="Why a discount does not apply to a cart.")


def minor(value: Decimal, currency: str, field: str) -> int:
    try:
        amount = to_minor(value, currency)
    except ValueError as exc:
        raise bad_input(f"`{field}` is not a valid {currency} amount.") from exc
    if not 0 <= amount < 2**62:
        raise bad_input(f"`{field}` is out of range.")
    return amount


def basis_points(percent: Decimal, field: str) -> int:
    scaled = percent * 100
    if scaled != scaled.to_integral_value() or not 0 <= scaled <= BASIS:
        raise bad_input(f"`{field}` is a percentage from 0 to 100 with at most two decimals.")
    return int(scaled)


def aware(value: datetime | None) -> datetime | None:
    """A time without an offset is read as UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def percent(bp: int) -> Decimal:
    return Decimal(bp).scaleb(-2)


@strawberry.type(description="A shipping method this cart can use, at its price for this cart.")
class ShippingOption:
    id: strawberry.ID
    name: str
    zone_name: str
    rate_type: RateType
    price: Money
    min_days: int = strawberry.field(description="Delivery estimate: business days, at the earliest.")
    max_days: int
    selected: bool

    @classmethod
    def of(cls, option: MethodOption, chosen: ShippingMethod | None, currency: str) -> ShippingOption:
        method = option.method
        return cls(
            id=strawberry.ID(str(method.id)),
            name=method.name,
            zone_name=method.zone_name,
            rate_type=method.rate_type,
            price=Money.of(option.rate_minor, currency),
            min_days=method.min_days,
            max_days=method.max_days,
            selected=chosen is not None and chosen.id == method.id,
        )


@strawberry.type(description="An entered code or an automatic promotion, and what it does to this cart.")
class CartDiscountCode:
    code: str | None = strawberry.field(description="Null for an automatic promotion.")
    title: str
    kind: DiscountKind | None
    automatic: bool
    applicable: bool
    reason: Refusal | None = strawberry.field(description="Why it does not apply; null when it does.")
    amount: Money = strawberry.field(description="What it takes off (a free-shipping code: the shipping saved).")

    @classmethod
    def of(cls, use: DiscountUse, currency: str) -> CartDiscountCode:
        discount = use.discount
        return cls(
            code=use.code,
            title=discount.title if discount else (use.code or ""),
            kind=discount.kind if discount else None,
            automatic=discount is not None and discount.code is None,
            applicable=use.applicable,
            reason=use.reason,
            amount=Money.of(use.amount_minor, currency),
        )


@strawberry.type
class CartDestination:
    country: str
    region: str | None


# --- admin ----------------------------------------------------------------------------


@strawberry.type
class ShippingZone:
    id: strawberry.ID
    name: str
    countries: list[str]
    regions: list[str]

    @classmethod
    def from_row(cls, row: Row[Any]) -> ShippingZone:
        return cls(id=strawberry.ID(str(row.id)), name=row.name, countries=row.countries, regions=row.regions)


@strawberry.type
class RateBand:
    up_to: int | None = strawberry.field(description="Exclusive upper bound: minor units (BY_SUBTOTAL) or grams.")
    price: Money


@strawberry.type(description="A shipping method as the shop team set it up.")
class ShippingRate:
    id: strawberry.ID
    name: str
    rate_type: RateType
    flat_rate: Money
    bands: list[RateBand]
    min_days: int
    max_days: int

    @classmethod
    def from_row(cls, row: Row[Any], currency: str) -> ShippingRate:
        return cls(
            id=strawberry.ID(str(row.id)),
            name=row.name,
            rate_type=RateType(row.rate_type),
            flat_rate=Money.of(row.flat_minor, currency),
            bands=[RateBand(up_to=b.get("upTo"), price=Money.of(int(b["price"]), currency)) for b in row.bands],
            min_days=row.min_days,
            max_days=row.max_days,
        )


@strawberry.type
class TaxRate:
    country: str
    region: str | None
    rate: Decimal = strawberry.field(description='Percent, e.g. "20" or "8.25".')
    prices_include_tax: bool


@strawberry.type
class Discount:
    id: strawberry.ID
    code: str | None
    title: str
    kind: DiscountKind
    percentage: Decimal | None
    amount: Money | None
    min_subtotal: Money
    starts_at: datetime | None
    ends_at: datetime | None
    usage_limit: int | None
    per_customer_limit: int | None
    active: bool

    @classmethod
    def from_row(cls, row: Row[Any], currency: str) -> Discount:
        kind = DiscountKind(row.kind)
        return cls(
            id=strawberry.ID(str(row.id)),
            code=row.code,
            title=row.title,
            kind=kind,
            percentage=percent(row.value) if kind is DiscountKind.PERCENTAGE else None,
            amount=Money.of(row.value, currency) if kind is DiscountKind.FIXED_AMOUNT else None,
            min_subtotal=Money.of(row.min_subtotal_minor, currency),
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            usage_limit=row.usage_limit,
            per_customer_limit=row.per_customer_limit,
            active=row.active,
        )


@strawberry.input
class CreateShippingZoneInput:
    name: str
    countries: list[str] = strawberry.field(description="ISO codes; '*' for every country.")
    regions: list[str] = strawberry.field(default_factory=list, description="Empty: the whole countries.")


@strawberry.type
class ShippingZonePayload:
    zone: ShippingZone | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class RateBandInput:
    up_to: int | None = None
    price: Decimal


@strawberry.input
class CreateShippingMethodInput:
    zone_id: strawberry.ID
    name: str
    rate_type: RateType
    flat_rate: Decimal = Decimal(0)
    bands: list[RateBandInput] = strawberry.field(default_factory=list)
    min_days: int
    max_days: int


@strawberry.type
class ShippingMethodPayload:
    shipping_method: ShippingRate | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class SetTaxRateInput:
    country: str
    region: str | None = None
    rate: Decimal = strawberry.field(description='Percent, e.g. "20".')
    prices_include_tax: bool = False


@strawberry.type
class TaxRatePayload:
    tax_rate: TaxRate | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class CreateDiscountInput:
    code: str | None = strawberry.field(default=None, description="Null: an automatic promotion.")
    title: str
    kind: DiscountKind
    percentage: Decimal | None = None
    amount: Decimal | None = None
    min_subtotal: Decimal = Decimal(0)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    usage_limit: int | None = None
    per_customer_limit: int | None = None


@strawberry.input
class SetDiscountActiveInput:
    id: strawberry.ID
    active: bool


@strawberry.type
class DiscountPayload:
    discount: Discount | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


def _admin(info: PricingInfo) -> PricingAdmin:
    return PricingAdmin(info.context.runtime.db)


def _currency(info: PricingInfo) -> str:
    return info.context.runtime.settings.currency


@strawberry.type
class PricingMutation:
    @strawberry.mutation(description="Administrators: a shipping zone (countries, optionally some regions).")
    async def create_shipping_zone(self, info: PricingInfo, input: CreateShippingZoneInput) -> ShippingZonePayload:
        async def perform(_: uuid.UUID) -> ShippingZonePayload:
            row = await _admin(info).create_zone(input.name, input.countries, input.regions)
            return ShippingZonePayload(zone=ShippingZone.from_row(row))

        return await mutate(info, ShippingZonePayload, perform, allow=admin)

    @strawberry.mutation(description="Administrators: a shipping method of a zone, flat or by subtotal/weight bands.")
    async def create_shipping_method(
        self, info: PricingInfo, input: CreateShippingMethodInput
    ) -> ShippingMethodPayload:
        currency = _currency(info)

        async def perform(_: uuid.UUID) -> ShippingMethodPayload:
            bands = [BandSpec(b.up_to, minor(b.price, currency, "bands.price")) for b in input.bands]
            row = await _admin(info).create_method(
                parse_uuid(input.zone_id),
                input.name,
                input.rate_type,
                minor(input.flat_rate, currency, "flatRate"),
                bands,
                input.min_days,
                input.max_days,
            )
            return ShippingMethodPayload(shipping_method=ShippingRate.from_row(row, currency))

        return await mutate(info, ShippingMethodPayload, perform, allow=admin)

    @strawberry.mutation(description="Administrators: the tax rate of a country or one of its regions.")
    async def set_tax_rate(self, info: PricingInfo, input: SetTaxRateInput) -> TaxRatePayload:
        async def perform(_: uuid.UUID) -> TaxRatePayload:
            row = await _admin(info).set_tax_rate(
                input.country, input.region, basis_points(input.rate, "rate"), input.prices_include_tax
            )
            return TaxRatePayload(
                tax_rate=TaxRate(
                    country=row.country,
                    region=row.region or None,
                    rate=percent(row.rate_bp),
                    prices_include_tax=row.prices_include_tax,
                )
            )

        return await mutate(info, TaxRatePayload, perform, allow=admin)

    @strawberry.mutation(description="Administrators: a discount code, or an automatic promotion (no code).")
    async def create_discount(self, info: PricingInfo, input: CreateDiscountInput) -> DiscountPayload:
        currency = _currency(info)

        async def perform(_: uuid.UUID) -> DiscountPayload:
            if input.kind is DiscountKind.PERCENTAGE:
                if input.percentage is None:
                    raise bad_input("A PERCENTAGE discount needs `percentage`.")
                value = basis_points(input.percentage, "percentage")
            elif input.kind is DiscountKind.FIXED_AMOUNT:
                if input.amount is None:
                    raise bad_input("A FIXED_AMOUNT discount needs `amount`.")
                value = minor(input.amount, currency, "amount")
            else:
                value = 0
            spec = DiscountSpec(
                code=clean_code(input.code) if input.code is not None else None,
                title=input.title,
                kind=input.kind,
                value=value,
                min_subtotal_minor=minor(input.min_subtotal, currency, "minSubtotal"),
                starts_at=aware(input.starts_at),
                ends_at=aware(input.ends_at),
                usage_limit=input.usage_limit,
                per_customer_limit=input.per_customer_limit,
            )
            return DiscountPayload(discount=Discount.from_row(await _admin(info).create_discount(spec), currency))

        return await mutate(info, DiscountPayload, perform, allow=admin)

    @strawberry.mutation(description="Administrators: disable (or enable again) a code or promotion.")
    async def set_discount_active(self, info: PricingInfo, input: SetDiscountActiveInput) -> DiscountPayload:
        async def perform(_: uuid.UUID) -> DiscountPayload:
            row = await _admin(info).set_discount_active(parse_uuid(input.id), input.active)
            return DiscountPayload(discount=Discount.from_row(row, _currency(info)))

        return await mutate(info, DiscountPayload, perform, allow=admin)
