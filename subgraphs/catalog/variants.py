"""Variants: a product's options (Colour, Size, …) and the variants it sells, each with its own SKU,
price, stock and option values. No GraphQL in here.

A product made without variants gets one default variant that shares its id and SKU (so does every
product that existed before variants: migrations/0003_variants.sql), and a line that names a product
id means that product's default variant: the variant with that id if any, else its first one on sale.
The product's own ``price_minor`` (the cheapest variant on sale) and ``stock`` (the sum) are kept by a
trigger, so listings, filters and sorting read one table.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from subgraphs.kit.db import Database
from subgraphs.kit.domain import DomainError
from subgraphs.kit.domain import ErrorCode as Code
from subgraphs.kit.money import to_minor

from .events import changed
from .models import product_options, product_variants, products

SKU_RE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,63}$")
MAX_OPTIONS = 3
MAX_OPTION_VALUES = 50
MAX_VARIANTS = 100
MAX_STOCK = 1_000_000


@dataclass(frozen=True)
class OptionSpec:
    name: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class VariantSpec:
    sku: str
    options: dict[str, str]
    price: Decimal | None
    stock: int
    active: bool = True
    weight_grams: int | None = None  # None: the table's default (500 g)


MAX_WEIGHT_GRAMS = 1_000_000


def clean_weight(value: Any, path: list[str]) -> int:
    if value is None or isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_WEIGHT_GRAMS:
        raise DomainError(Code.INVALID, f"A weight is 0..{MAX_WEIGHT_GRAMS} grams.", path)
    return value


def clean_options(raw: Sequence[OptionSpec]) -> list[OptionSpec]:
    """Option names unique (case-insensitively), 1..50 characters; values unique per option."""
    if len(raw) > MAX_OPTIONS:
        raise DomainError(Code.INVALID, f"A product has at most {MAX_OPTIONS} options.", ["input", "options"])
    seen: set[str] = set()
    out = []
    for index, option in enumerate(raw):
        path = ["input", "options", str(index)]
        name = option.name.strip()
        if not 1 <= len(name) <= 50 or name.lower() in seen:
            raise DomainError(Code.INVALID, "Option names are 1..50 characters and unique.", [*path, "name"])
        seen.add(name.lower())
        values = [v.strip() for v in option.values]
        if not 1 <= len(values) <= MAX_OPTION_VALUES or any(not 1 <= len(v) <= 50 for v in values):
            raise DomainError(
                Code.INVALID, f"An option has 1..{MAX_OPTION_VALUES} values of 1..50 characters.", [*path, "values"]
            )
        if len({v.lower() for v in values}) != len(values):
            raise DomainError(Code.INVALID, "Option values must be unique.", [*path, "values"])
        out.append(OptionSpec(name, tuple(values)))
    return out


def clean_variant_options(
    chosen: dict[str, str], options: Sequence[OptionSpec], path: list[str]
) -> tuple[dict[str, str], list[OptionSpec]]:
    """One value for each of the product's options (names matched case-insensitively). A value the
    option does not have yet is added to it; returns the options as they are then."""
    by_lower = {o.name.lower(): o for o in options}
    picked = {k.strip().lower(): v.strip() for k, v in chosen.items()}
    if set(picked) != set(by_lower):
        names = ", ".join(o.name for o in options) or "none"
        raise DomainError(Code.INVALID, f"Give one value for each option ({names}).", path)
    cleaned: dict[str, str] = {}
    updated = []
    for option in options:
        value = picked[option.name.lower()]
        if not 1 <= len(value) <= 50:
            raise DomainError(Code.INVALID, "Option values are 1..50 characters.", path)
        known = {v.lower(): v for v in option.values}
        if value.lower() in known:
            cleaned[option.name] = known[value.lower()]
            updated.append(option)
        else:
            if len(option.values) >= MAX_OPTION_VALUES:
                raise DomainError(Code.INVALID, f"{option.name} has {MAX_OPTION_VALUES} values already.", path)
            cleaned[option.name] = value
            updated.append(OptionSpec(option.name, (*option.values, value)))
    return cleaned, updated


def variant_title(options: dict[str, str], order: Sequence[str] | None = None) -> str:
    """ "Olive / M": the variant's option values in the product's option order."""
    names = list(order) if order is not None else list(options)
    return " / ".join(options[n] for n in names if n in options)


def clean_sku(value: Any, path: list[str]) -> str:
    sku = str(value or "").strip().upper()
    if not SKU_RE.match(sku):
        raise DomainError(Code.INVALID, "SKU: letters, digits, - and _, at most 64.", path)
    return sku


def price_minor(value: Any, currency: str, path: list[str]) -> int:
    if value is None:
        raise DomainError(Code.REQUIRED, "Price is required.", path)
    try:
        minor = to_minor(Decimal(str(value)), currency)
    except (ValueError, ArithmeticError) as exc:
        raise DomainError(Code.INVALID_PRICE, f"Not a valid {currency} amount.", path) from exc
    if minor < 0 or minor > 10**12:
        raise DomainError(Code.INVALID_PRICE, "Price must be between 0 and 10,000,000,000.", path)
    return minor


def clean_stock(value: Any, path: list[str]) -> int:
    if value is None or not 0 <= value <= MAX_STOCK:
        raise DomainError(Code.INVALID_QUANTITY, f"Stock must be 0..{MAX_STOCK}.", path)
    return int(value)


def sku_taken(exc: IntegrityError) -> bool:
    text = str(exc.orig)
    return "product_variants_sku_key" in text or "products_sku_key" in text


async def options_of(conn: AsyncConnection, product_id: uuid.UUID) -> list[OptionSpec]:
    rows = (
        await conn.execute(
            select(product_options.c.name, product_options.c["values"])
            .where(product_options.c.product_id == product_id)
            .order_by(product_options.c.position, product_options.c.name)
        )
    ).all()
    return [OptionSpec(r.name, tuple(r[1])) for r in rows]


async def write_options(conn: AsyncConnection, product_id: uuid.UUID, options: Sequence[OptionSpec]) -> None:
    for position, option in enumerate(options):
        await conn.execute(
            pg_insert(product_options)
            .values(product_id=product_id, name=option.name, position=position, values=list(option.values))
            .on_conflict_do_update(
                index_elements=["product_id", "name"], set_={"values": list(option.values), "position": position}
            )
        )


async def insert_variants(
    conn: AsyncConnection,
    product_id: uuid.UUID,
    specs: Sequence[VariantSpec],
    options: list[OptionSpec],
    currency: str,
    default_price: int | None,
    *,
    first_id: uuid.UUID | None = None,
) -> list[OptionSpec]:
    """Insert variants (checked against, and extending, ``options``); returns the options after."""
    if len(specs) > MAX_VARIANTS:
        raise DomainError(Code.INVALID, f"A product has at most {MAX_VARIANTS} variants.", ["input", "variants"])
    rows = []
    seen_combinations: set[tuple[str, ...]] = set()
    for index, spec in enumerate(specs):
        path = ["input", "variants", str(index)]
        chosen, options = clean_variant_options(spec.options, options, [*path, "options"])
        combination = tuple(chosen[o.name].lower() for o in options)
        if combination in seen_combinations:
            raise DomainError(Code.INVALID, "Two variants have the same option values.", [*path, "options"])
        seen_combinations.add(combination)
        price = (
            default_price
            if spec.price is None and default_price is not None
            else price_minor(spec.price, currency, [*path, "price"])
        )
        row: dict[str, Any] = {
            "product_id": product_id,
            "sku": clean_sku(spec.sku, [*path, "sku"]),
            "options": chosen,
            "price_minor": price,
            "currency": currency,
            "stock": clean_stock(spec.stock, [*path, "stock"]),
            "active": spec.active,
            "position": index,
        }
        if spec.weight_grams is not None:
            row["weight_grams"] = clean_weight(spec.weight_grams, [*path, "weightGrams"])
        if index == 0 and first_id is not None:
            row["id"] = first_id
        rows.append(row)
    if rows:
        await conn.execute(insert(product_variants), rows)
    return options


class Variants:
    """Admin writes of variants; every write records a change of the variant and of its product."""

    def __init__(self, db: Database, currency: str) -> None:
        self.db = db
        self.currency = currency

    async def create(self, product_id: uuid.UUID | None, spec: VariantSpec) -> Row[Any]:
        try:
            async with self.db.transaction() as conn:
                product = await _lock_product(conn, product_id, ["input", "productId"])
                options = await options_of(conn, product.id)
                position = (
                    await conn.execute(
                        select(func.coalesce(func.max(product_variants.c.position) + 1, 0)).where(
                            product_variants.c.product_id == product.id
                        )
                    )
                ).scalar_one()
                chosen, options = clean_variant_options(spec.options, options, ["input", "options"])
                duplicate = (
                    await conn.execute(
                        select(product_variants.c.id).where(
                            product_variants.c.product_id == product.id, product_variants.c.options == chosen
                        )
                    )
                ).first()
                if duplicate is not None:
                    raise DomainError(Code.INVALID, "A variant with these option values exists.", ["input", "options"])
                row: Row[Any] = (
                    await conn.execute(
                        insert(product_variants)
                        .values(
                            product_id=product.id,
                            sku=clean_sku(spec.sku, ["input", "sku"]),
                            options=chosen,
                            price_minor=price_minor(spec.price, self.currency, ["input", "price"]),
                            currency=self.currency,
                            stock=clean_stock(spec.stock, ["input", "stock"]),
                            active=spec.active,
                            position=position,
                            **(
                                {"weight_grams": clean_weight(spec.weight_grams, ["input", "weightGrams"])}
                                if spec.weight_grams is not None
                                else {}
                            ),
                        )
                        .returning(product_variants)
                    )
                ).one()
                await write_options(conn, product.id, options)
                await changed(conn, "Product", [product.id])
                await changed(conn, "ProductVariant", [row.id])
                return row
        except IntegrityError as exc:
            if sku_taken(exc):
                raise DomainError(Code.SKU_TAKEN, "This SKU is taken.", ["input", "sku"]) from exc
            raise

    async def update(self, variant_id: uuid.UUID | None, fields: dict[str, Any]) -> Row[Any]:
        """``fields``: any of sku, price, active, weight_grams (stock moves by ``adjust_stock`` only)."""
        values: dict[str, Any] = {}
        if "sku" in fields:
            values["sku"] = clean_sku(fields["sku"], ["input", "sku"])
        if "price" in fields:
            values["price_minor"] = price_minor(fields["price"], self.currency, ["input", "price"])
        if "active" in fields:
            if fields["active"] is None:
                raise DomainError(Code.REQUIRED, "active cannot be null.", ["input", "active"])
            values["active"] = bool(fields["active"])
        if "weight_grams" in fields:
            values["weight_grams"] = clean_weight(fields["weight_grams"], ["input", "weightGrams"])
        values["updated_at"] = func.now()
        try:
            async with self.db.transaction() as conn:
                await _lock_product_of_variant(conn, variant_id)
                row: Row[Any] | None = (
                    await conn.execute(
                        update(product_variants)
                        .where(product_variants.c.id == variant_id)
                        .values(**values)
                        .returning(product_variants)
                    )
                ).one_or_none()
                if row is None:
                    raise DomainError(Code.NOT_FOUND, "No such variant.", ["input", "id"])
                if row.id == row.product_id and "sku" in values:
                    # The default variant and its product keep one SKU.
                    await conn.execute(update(products).where(products.c.id == row.id).values(sku=values["sku"]))
                await changed(conn, "Product", [row.product_id])
                await changed(conn, "ProductVariant", [row.id])
                return row
        except IntegrityError as exc:
            if sku_taken(exc):
                raise DomainError(Code.SKU_TAKEN, "This SKU is taken.", ["input", "sku"]) from exc
            raise

    async def adjust_stock(self, variant_id: uuid.UUID | None, product_id: uuid.UUID | None, delta: int) -> Row[Any]:
        """Add (negative: remove) stock of one variant, never below zero; a product id alone means its
        default variant. Returns the variant row."""
        if abs(delta) > MAX_STOCK:
            raise DomainError(Code.INVALID_QUANTITY, "Adjustment is too large.", ["input", "delta"])
        async with self.db.transaction() as conn:
            if variant_id is None:
                if product_id is None:
                    raise DomainError(Code.REQUIRED, "Give productId or variantId.", ["input", "variantId"])
                variant_id = await default_variant_id(conn, product_id)
                if variant_id is None:
                    raise DomainError(Code.PRODUCT_NOT_FOUND, "No such product.", ["input", "productId"])
            await _lock_product_of_variant(conn, variant_id)
            current = (
                await conn.execute(
                    select(product_variants).where(product_variants.c.id == variant_id).with_for_update()
                )
            ).one_or_none()
            if current is None:
                raise DomainError(Code.NOT_FOUND, "No such variant.", ["input", "variantId"])
            if current.stock + delta < 0:
                raise DomainError(
                    Code.STOCK_BELOW_ZERO,
                    f"Only {current.stock} in stock; cannot remove {-delta}.",
                    ["input", "delta"],
                )
            if current.stock + delta > MAX_STOCK:
                raise DomainError(
                    Code.INVALID_QUANTITY, f"Stock is at most {MAX_STOCK}; {current.stock} now.", ["input", "delta"]
                )
            row: Row[Any] = (
                await conn.execute(
                    update(product_variants)
                    .where(product_variants.c.id == variant_id)
                    .values(stock=product_variants.c.stock + delta, updated_at=func.now())
                    .returning(product_variants)
                )
            ).one()
            await changed(conn, "Product", [row.product_id])
            await changed(conn, "ProductVariant", [row.id])
            return row


async def default_variant_id(conn: AsyncConnection, product_id: uuid.UUID) -> uuid.UUID | None:
    """The variant a bare product id means: the one sharing its id, else its first (on sale first)."""
    found = (
        await conn.execute(
            select(product_variants.c.id)
            .where(product_variants.c.product_id == product_id)
            .order_by(
                (product_variants.c.id == product_id).desc(),
                product_variants.c.active.desc(),
                product_variants.c.position,
                product_variants.c.id,
            )
            .limit(1)
        )
    ).scalar_one_or_none()
    return found


async def _lock_product(conn: AsyncConnection, product_id: uuid.UUID | None, path: list[str]) -> Row[Any]:
    row = (await conn.execute(select(products.c.id).where(products.c.id == product_id).with_for_update())).one_or_none()
    if row is None:
        raise DomainError(Code.PRODUCT_NOT_FOUND, "No such product.", path)
    return row


async def _lock_product_of_variant(conn: AsyncConnection, variant_id: uuid.UUID | None) -> None:
    """Writers of a variant lock its product first (the totals trigger writes the product row), in the
    same order as reservations do, so they cannot deadlock."""
    await conn.execute(
        select(products.c.id)
        .where(
            products.c.id
            == select(product_variants.c.product_id).where(product_variants.c.id == variant_id).scalar_subquery()
        )
        .with_for_update()
    )
