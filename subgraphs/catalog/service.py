"""Catalog rules: products, categories, search and stock. No GraphQL in here."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Row,
    Select,
    String,
    Text,
    UnaryExpression,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal,
    literal_column,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from subgraphs.kit.db import Database, Read
from subgraphs.kit.domain import DomainError, InvalidArgument
from subgraphs.kit.domain import ErrorCode as Code
from subgraphs.kit.inputs import camel
from subgraphs.kit.loaders import in_keys
from subgraphs.kit.money import to_minor

from .events import changed
from .models import categories, product_options, product_variants, products, stock_reservations
from .variants import (
    OptionSpec,
    Variants,
    VariantSpec,
    clean_options,
    clean_weight,
    insert_variants,
    sku_taken,
    variant_title,
    write_options,
)

SKU_RE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,63}$")
SLUG_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
MAX_STOCK = 1_000_000
MAX_SEARCH_LENGTH = 200


class SortKey(Enum):
    RELEVANCE = "RELEVANCE"
    PRICE = "PRICE"
    NAME = "NAME"
    NEWEST = "NEWEST"


@dataclass(frozen=True)
class ProductQuery:
    """What a product listing asks for; ``visible_only`` hides archived products."""

    search: str | None = None
    category_id: uuid.UUID | None = None
    min_price_minor: int | None = None
    max_price_minor: int | None = None
    in_stock: bool | None = None
    # (option name, values): a product with an active variant having one of the values of every option.
    options: tuple[tuple[str, tuple[str, ...]], ...] = ()
    visible_only: bool = True
    sort: SortKey = SortKey.NEWEST
    reverse: bool = False


def prefix_tsquery(search: str) -> str | None:
    """Words typed by a shopper → ``word1:* & word2:*`` (matches while typing)."""
    words = re.findall(r"[0-9A-Za-z\u00C0-\u024F]+", search)
    return " & ".join(f"{w}:*" for w in words[:12]) or None


# A product row's category, read in the same statement (a LEFT JOIN): ``Product.category`` then
# needs no loader, and is resolved without awaiting anything.
WITH_CATEGORY = (
    categories.c.slug.label("category_slug"),
    categories.c.name.label("category_name"),
    categories.c.description.label("category_description"),
)


def products_by(column: ColumnElement[Any]) -> Read:
    """Products (with their category) whose ``column`` is in ``$keys``."""
    joined = products.outerjoin(categories, categories.c.id == products.c.category_id)
    keys = bindparam("keys", type_=ARRAY(column.type))
    return Read(select(products, *WITH_CATEGORY).select_from(joined).where(column == func.any(keys)))


def _tsquery() -> ColumnElement[Any]:
    return func.to_tsquery(literal_column("'shop'"), bindparam("tsquery", type_=String))


# Listing statements compiled once per shape (a few hundred at most: the filters, sort and cursor).
_reads: dict[tuple[Any, ...], Read] = {}


class ProductListing:
    """Builds the filtered, keyset-paginated product query."""

    def __init__(self, query: ProductQuery) -> None:
        if query.search is not None and len(query.search) > MAX_SEARCH_LENGTH:
            raise InvalidArgument(f"`search` is at most {MAX_SEARCH_LENGTH} characters.")
        self.query = query
        self.tsquery = prefix_tsquery(query.search) if query.search else None
        sort = query.sort
        if sort is SortKey.RELEVANCE and self.tsquery is None:
            sort = SortKey.NEWEST
        self.sort = sort
        # ts_rank is a float4; compare it as float8 so cursor values round-trip exactly.
        rank = func.ts_rank(products.c.search, _tsquery()).cast(Float(precision=53))
        self.sort_column: ColumnElement[Any] = {
            SortKey.RELEVANCE: rank,
            SortKey.PRICE: products.c.price_minor,
            SortKey.NAME: products.c.name,
            SortKey.NEWEST: products.c.created_at,
        }[sort]
        # Natural direction: cheapest / A→Z ascending; newest / most relevant first.
        descending = sort in (SortKey.RELEVANCE, SortKey.NEWEST)
        self.descending = descending != query.reverse

    # Every value is a named bindparam, so a statement compiled once per shape (``page_read``,
    # ``count_read``: which filters, sort and cursor) runs again with ``params`` on asyncpg directly.
    def conditions(self) -> list[ColumnElement[bool]]:
        q = self.query
        out: list[ColumnElement[bool]] = []
        if q.visible_only:
            out.append(products.c.active)
        if self.tsquery is not None:
            out.append(products.c.search.op("@@")(_tsquery()))
        if q.category_id is not None:
            out.append(products.c.category_id == bindparam("category_id", type_=products.c.category_id.type))
        if q.min_price_minor is not None:
            out.append(products.c.price_minor >= bindparam("min_price", type_=products.c.price_minor.type))
        if q.max_price_minor is not None:
            out.append(products.c.price_minor <= bindparam("max_price", type_=products.c.price_minor.type))
        if q.in_stock is True:
            out.append(products.c.stock > literal_column("0"))
        elif q.in_stock is False:
            out.append(products.c.stock == literal_column("0"))
        if q.options:
            # One EXISTS over the product's variants (a semi-join): the same statement for any page size.
            v = product_variants.alias("ov")
            matches = [
                v.c.options.op("->>")(bindparam(f"option{i}", type_=Text))
                == func.any(bindparam(f"option{i}_values", type_=ARRAY(Text)))
                for i in range(len(q.options))
            ]
            out.append(exists().where(v.c.product_id == products.c.id, v.c.active, *matches))
        return out

    def params(self, limit: int | None = None, after: Sequence[Any] | None = None) -> dict[str, Any]:
        """The values of the statements' bindparams (``limit``: the page size, one more row is read)."""
        q = self.query
        values: dict[str, Any] = {
            "tsquery": self.tsquery,
            "category_id": q.category_id,
            "min_price": q.min_price_minor,
            "max_price": q.max_price_minor,
        }
        for i, (name, option_values) in enumerate(q.options):
            values[f"option{i}"], values[f"option{i}_values"] = name, list(option_values)
        if limit is not None:
            values["limit"] = limit + 1
        if after is not None:
            values["after_value"], values["after_id"] = self.parse_cursor(after)
        return values

    def _shape(self) -> tuple[Any, ...]:
        q = self.query
        filters = (q.visible_only, q.category_id is not None, q.min_price_minor is not None)
        return (*filters, q.max_price_minor is not None, q.in_stock, self.tsquery is not None, len(q.options))

    def page_read(self, after: bool, with_total: bool = False) -> Read:
        """``with_total``: each row carries ``total``, every matching product counted (a window count:
        the first page's ``totalCount`` without a statement of its own)."""
        key = ("page", *self._shape(), self.sort, self.descending, after, with_total)
        read = _reads.get(key)
        if read is None:
            read = _reads[key] = Read(self._page(after, with_total))
        return read

    def count_read(self) -> Read:
        key = ("count", *self._shape())
        read = _reads.get(key)
        if read is None:
            read = _reads[key] = Read(self.count())
        return read

    def page(self, limit: int, after: Sequence[Any] | None) -> Select[Any]:
        """The page as a statement with its values bound (SQLAlchemy's path)."""
        return self._page(after is not None).params(self.params(limit, after))

    def _page(self, after: bool, with_total: bool = False) -> Select[Any]:
        total = (func.count().over().label("total"),) if with_total else ()
        statement = (
            select(products, *WITH_CATEGORY, self.sort_column.label("sort_value"), *total)
            .select_from(products.outerjoin(categories, categories.c.id == products.c.category_id))
            .where(*self.conditions())
        )
        if after:
            key = tuple_(self.sort_column, products.c.id)
            value = bindparam("after_value", type_=self.sort_column.type)
            bound = tuple_(value, bindparam("after_id", type_=products.c.id.type))
            statement = statement.where(key < bound if self.descending else key > bound)
        statement = statement.order_by(*self._directed(self.sort_column, products.c.id))
        return statement.limit(bindparam("limit", type_=Integer))

    def pages(self, category_ids: Sequence[uuid.UUID], limit: int, after: Sequence[Any] | None) -> Select[Any]:
        """``page`` for every category at once, in one statement: a LATERAL join of ``page`` over the ids,
        so each category's page is its own indexed top-N. Rows come in page order; group them by
        ``category_id``."""
        # One uuid[] parameter, whatever the ids' Python type (asyncpg returns its own UUID class).
        ids = literal(list(dict.fromkeys(category_ids)), ARRAY(UUID(as_uuid=True)))
        wanted = func.unnest(ids).table_valued("category_id").render_derived(name="c")
        page = self.page(limit, after).where(products.c.category_id == wanted.c.category_id).lateral("p")
        statement = select(page).select_from(wanted).join(page, literal(True))
        return statement.order_by(*self._directed(page.c.sort_value, page.c.id))

    def count(self) -> Select[Any]:
        return select(func.count().label("n")).select_from(products).where(*self.conditions())

    def counts(self, category_ids: Sequence[uuid.UUID]) -> Select[Any]:
        """``count`` for every category at once: rows of (category_id, count); a category with none is absent."""
        return (
            select(products.c.category_id, func.count().label("total"))
            .where(*self.conditions(), in_keys(products.c.category_id, category_ids))
            .group_by(products.c.category_id)
            .params(self.params())
        )

    def _directed(self, *columns: ColumnElement[Any]) -> list[UnaryExpression[Any]]:
        return [c.desc() if self.descending else c.asc() for c in columns]

    def cursor_key(self, row: Row[Any]) -> list[Any]:
        value = row.sort_value
        return [value.isoformat() if isinstance(value, datetime) else value, str(row.id)]

    def parse_cursor(self, after: Sequence[Any]) -> tuple[Any, uuid.UUID]:
        """A client's cursor back into (sort value, id): a forged one is a client error, never a 500.
        The result is hashable and parses again to itself."""
        value, last_id = after
        try:
            return self._cursor_value(value), uuid.UUID(str(last_id))
        except (TypeError, ValueError, OverflowError) as exc:
            raise InvalidArgument("Invalid cursor.") from exc

    def _cursor_value(self, value: Any) -> Any:
        if self.sort is SortKey.NEWEST:
            # Normalised here, so a date PostgreSQL cannot hold fails now rather than in the driver.
            return datetime.fromisoformat(str(value)).astimezone(UTC)
        if self.sort is SortKey.PRICE:
            price = int(value)
            if not -(2**63) <= price < 2**63:
                raise ValueError("price out of range")
            return price
        if self.sort is SortKey.RELEVANCE:
            return float(value)
        return str(value)


@dataclass(frozen=True)
class ReservedLine:
    product_id: uuid.UUID
    quantity: int
    sku: str
    name: str
    unit_price_minor: int
    currency: str
    variant_id: uuid.UUID


class Catalog:
    def __init__(self, db: Database, currency: str) -> None:
        self.db = db
        self.currency = currency

    # --- listing ------------------------------------------------------------

    async def list_products(
        self, query: ProductQuery, limit: int, after: Sequence[Any] | None, *, with_total: bool = False
    ) -> tuple[list[Row[Any]], ProductListing]:
        """A page of products; ``with_total`` (first pages only): each row's ``total`` counts every match."""
        assert not (with_total and after is not None), "after a cursor, a window counts only the rows after it"
        listing = ProductListing(query)
        read = listing.page_read(after is not None, with_total)
        rows = await self.db.fetch(read, **listing.params(limit, after))
        return cast(list[Row[Any]], rows), listing  # Records, read by attribute as rows are

    async def count_products(self, listing: ProductListing) -> int:
        return int((await self.db.fetch(listing.count_read(), **listing.params()))[0].n)

    async def list_categories(self) -> list[Row[Any]]:
        async with self.db.read() as conn:
            return list((await conn.execute(select(categories).order_by(categories.c.name))).all())

    async def category_by_slug(self, slug: str) -> Row[Any] | None:
        async with self.db.read() as conn:
            row: Row[Any] | None = (
                await conn.execute(select(categories).where(categories.c.slug == slug))
            ).one_or_none()
            return row

    # --- administration -----------------------------------------------------

    async def create_category(self, slug: str, name: str, description: str | None) -> Row[Any]:
        slug = slug.strip().lower()
        if not SLUG_RE.match(slug) or len(slug) > 100:
            raise DomainError(Code.INVALID, "Use lowercase letters, digits and dashes.", ["input", "slug"])
        name = _text(name, "name", 100)
        if description is not None and len(description) > 5000:
            raise DomainError(Code.TOO_LONG, "Description is at most 5000 characters.", ["input", "description"])
        try:
            async with self.db.transaction() as conn:
                row: Row[Any] = (
                    await conn.execute(
                        insert(categories).values(slug=slug, name=name, description=description).returning(categories)
                    )
                ).one()
                await changed(conn, "Category", [row.id])
                return row
        except IntegrityError as exc:
            raise DomainError(Code.SLUG_TAKEN, "This slug is taken.", ["input", "slug"]) from exc

    async def create_product(
        self,
        fields: dict[str, Any],
        options: Sequence[OptionSpec] = (),
        variants: Sequence[VariantSpec] = (),
        *,
        default_weight: int | None = None,
    ) -> Row[Any]:
        """A product with its variants; without variants, one default variant (the product's id,
        SKU, price and stock, and ``default_weight``)."""
        cleaned_options = clean_options(options)
        if default_weight is not None:
            default_weight = clean_weight(default_weight, ["input", "weightGrams"])
        if variants and "price" not in fields:
            fields = {**fields, "price": next((v.price for v in variants if v.price is not None), None)}
        values = await self._clean_product(fields, partial=False)
        values.setdefault("currency", self.currency)
        if cleaned_options and not variants:
            raise DomainError(Code.REQUIRED, "A product with options needs variants.", ["input", "variants"])
        try:
            async with self.db.transaction() as conn:
                row: Row[Any] = (await conn.execute(insert(products).values(**values).returning(products))).one()
                specs = list(variants) or [
                    VariantSpec(
                        sku=row.sku,
                        options={},
                        price=None,
                        stock=row.stock,
                        active=True,
                        weight_grams=default_weight,
                    )
                ]
                final_options = await insert_variants(
                    conn,
                    row.id,
                    specs,
                    cleaned_options,
                    row.currency,
                    row.price_minor,
                    first_id=None if variants else row.id,
                )
                await write_options(conn, row.id, final_options)
                row = (await conn.execute(select(products).where(products.c.id == row.id))).one()
                await changed(conn, "Product", [row.id])
                return row
        except IntegrityError as exc:
            if sku_taken(exc):
                raise DomainError(Code.SKU_TAKEN, "This SKU is taken.", ["input", "sku"]) from exc
            raise

    async def update_product(self, product_id: uuid.UUID | None, fields: dict[str, Any]) -> Row[Any]:
        """``price`` sets the price of every variant; ``sku`` is also the default variant's (the one
        sharing the product's id), if it has one."""
        values = await self._clean_product(fields, partial=True)
        values["updated_at"] = func.now()
        price = values.pop("price_minor", None)
        try:
            async with self.db.transaction() as conn:
                locked = (
                    await conn.execute(select(products.c.id).where(products.c.id == product_id).with_for_update())
                ).one_or_none()
                if locked is None:
                    raise DomainError(Code.PRODUCT_NOT_FOUND, "No such product.", ["input", "id"])
                # Variants whose price or SKU changed: cached apart from their product (ProductVariant
                # entities), so each needs its own change event.
                touched: set[uuid.UUID] = set()
                if price is not None:
                    touched.update(
                        (
                            await conn.execute(
                                update(product_variants)
                                .where(product_variants.c.product_id == product_id)
                                .values(price_minor=price, updated_at=func.now())
                                .returning(product_variants.c.id)
                            )
                        ).scalars()
                    )
                if "sku" in values:
                    touched.update(
                        (
                            await conn.execute(
                                update(product_variants)
                                .where(product_variants.c.id == product_id)
                                .values(sku=values["sku"])
                                .returning(product_variants.c.id)
                            )
                        ).scalars()
                    )
                row: Row[Any] = (
                    await conn.execute(
                        update(products).where(products.c.id == product_id).values(**values).returning(products)
                    )
                ).one()
                await changed(conn, "Product", [row.id])
                await changed(conn, "ProductVariant", sorted(touched))
                return row
        except IntegrityError as exc:
            if sku_taken(exc):
                raise DomainError(Code.SKU_TAKEN, "This SKU is taken.", ["input", "sku"]) from exc
            raise

    async def adjust_stock(
        self, product_id: uuid.UUID | None, delta: int, variant_id: uuid.UUID | None = None
    ) -> tuple[Row[Any], Row[Any]]:
        """Add (or with a negative delta, remove) stock of a variant (a product id alone: its default
        variant); never below zero. Returns (product, variant)."""
        variant = await Variants(self.db, self.currency).adjust_stock(variant_id, product_id, delta)
        async with self.db.read() as conn:
            product: Row[Any] = (await conn.execute(select(products).where(products.c.id == variant.product_id))).one()
        return product, variant

    async def _clean_product(self, fields: dict[str, Any], *, partial: bool) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for key, value in fields.items():
            path = ["input", camel(key)]
            if key == "sku":
                sku = str(value or "").strip().upper()
                if not SKU_RE.match(sku):
                    raise DomainError(Code.INVALID, "SKU: letters, digits, - and _, at most 64.", path)
                values["sku"] = sku
            elif key == "name":
                values["name"] = _text(value, "name", 200)
            elif key == "description":
                description = (value or "").strip()
                if len(description) > 5000:
                    raise DomainError(Code.TOO_LONG, "Description is at most 5000 characters.", path)
                values["description"] = description
            elif key == "price":
                values["price_minor"] = self._price(value, path)
            elif key == "stock":
                if value is None or not 0 <= value <= MAX_STOCK:
                    raise DomainError(Code.INVALID_QUANTITY, f"Stock must be 0..{MAX_STOCK}.", path)
                values["stock"] = value
            elif key == "image_url":
                url = (value or "").strip()
                if url and (not re.match(r"^https?://\S+$", url) or len(url) > 2048):
                    raise DomainError(Code.INVALID, "Image URL must be an http(s) URL.", path)
                values["image_url"] = url or None
            elif key == "active":
                if value is None:
                    raise DomainError(Code.REQUIRED, "active cannot be null.", path)
                values["active"] = value
            elif key == "category_id":
                values["category_id"] = await self._category(value, path)
        if not partial:
            for key in ("sku", "name", "price_minor", "stock"):
                if key not in values:
                    raise DomainError(Code.REQUIRED, f"{camel(key)} is required.", ["input", camel(key)])
        return values

    def _price(self, value: Any, path: list[str]) -> int:
        if value is None:
            raise DomainError(Code.REQUIRED, "Price is required.", path)
        try:
            minor = to_minor(Decimal(str(value)), self.currency)
        except (ValueError, ArithmeticError) as exc:
            raise DomainError(Code.INVALID_PRICE, f"Not a valid {self.currency} amount.", path) from exc
        if minor < 0 or minor > 10**12:
            raise DomainError(Code.INVALID_PRICE, "Price must be between 0 and 10,000,000,000.", path)
        return minor

    async def _category(self, value: Any, path: list[str]) -> uuid.UUID | None:
        if value is None:
            return None
        async with self.db.read() as conn:
            found = (await conn.execute(select(categories.c.id).where(categories.c.id == value))).one_or_none()
        if found is None:
            raise DomainError(Code.NOT_FOUND, "No such category.", path)
        return value  # type: ignore[no-any-return]

    # --- stock for orders -----------------------------------------------------

    async def reserve(
        self, reservation_id: uuid.UUID, lines: Sequence[tuple[uuid.UUID | None, uuid.UUID | None, int]]
    ) -> list[ReservedLine]:
        """Take stock of every line's variant, all or nothing; idempotent per reservation id.

        A line is (product id, variant id, quantity): a variant id wins; a product id alone means the
        product's default variant (variants.default_variant_id)."""
        for index, (_, _, quantity) in enumerate(lines):
            if not 1 <= quantity <= 999:
                raise DomainError(Code.INVALID_QUANTITY, "Quantity must be 1..999.", ["input", "lines", str(index)])
        if not lines:
            raise DomainError(Code.CART_EMPTY, "Nothing to reserve.", ["input", "lines"])
        async with self.db.transaction() as conn:
            # Serialise attempts with the same id; a repeat returns what the first took.
            await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": str(reservation_id)})
            previous = (
                await conn.execute(select(stock_reservations).where(stock_reservations.c.id == reservation_id))
            ).one_or_none()
            if previous is not None and previous.released_at is None:
                return [_reserved_from_json(line) for line in previous.lines]
            if previous is not None:
                # Released (its checkout failed and gave the stock back): a retry takes
                # the stock again, or the order it makes would hold none.
                await conn.execute(delete(stock_reservations).where(stock_reservations.c.id == reservation_id))
            wanted = await _wanted_variants(conn, lines)
            # Lock products, then variants, each in id order (as every variant writer does), so
            # concurrent multi-line reservations cannot deadlock.
            await conn.execute(
                select(products.c.id)
                .where(
                    products.c.id.in_(
                        select(product_variants.c.product_id).where(product_variants.c.id.in_(list(wanted)))
                    )
                )
                .order_by(products.c.id)
                .with_for_update(of=products)
            )
            rows = {
                r.id: r
                for r in (
                    await conn.execute(
                        select(
                            product_variants,
                            products.c.name.label("product_name"),
                            products.c.active.label("product_active"),
                        )
                        .join(products, products.c.id == product_variants.c.product_id)
                        .where(product_variants.c.id.in_(list(wanted)))
                        .order_by(product_variants.c.id)
                        .with_for_update(of=product_variants)
                    )
                ).all()
            }
            names = await _line_names(conn, rows)
            problems = _stock_problems(wanted, rows, names)
            if problems:
                raise problems[0]
            for variant_id, quantity in sorted(wanted.items()):
                await conn.execute(
                    update(product_variants)
                    .where(product_variants.c.id == variant_id)
                    .values(stock=product_variants.c.stock - quantity, updated_at=func.now())
                )
            reserved = [
                ReservedLine(
                    product_id=rows[vid].product_id,
                    quantity=qty,
                    sku=rows[vid].sku,
                    name=names[vid],
                    unit_price_minor=rows[vid].price_minor,
                    currency=rows[vid].currency,
                    variant_id=vid,
                )
                for vid, qty in wanted.items()
            ]
            await conn.execute(
                insert(stock_reservations).values(
                    id=reservation_id, lines=[_reserved_to_json(line) for line in reserved]
                )
            )
            await changed(conn, "Product", sorted({line.product_id for line in reserved}))
            await changed(conn, "ProductVariant", sorted(wanted))
            return reserved

    async def release(self, reservation_id: uuid.UUID) -> bool:
        """Put a reservation's stock back; False if there was nothing (left) to release."""
        async with self.db.transaction() as conn:
            row = (
                await conn.execute(
                    update(stock_reservations)
                    .where(stock_reservations.c.id == reservation_id, stock_reservations.c.released_at.is_(None))
                    .values(released_at=func.now())
                    .returning(stock_reservations.c.lines)
                )
            ).one_or_none()
            if row is None:
                return False
            # Reservations made before variants name only the product: its variant shares its id.
            back = {uuid.UUID(line.get("variant_id") or line["product_id"]): line["quantity"] for line in row.lines}
            product_ids = sorted({uuid.UUID(line["product_id"]) for line in row.lines})
            await conn.execute(
                select(products.c.id).where(products.c.id.in_(product_ids)).order_by(products.c.id).with_for_update()
            )
            for variant_id, quantity in sorted(back.items()):
                await conn.execute(
                    update(product_variants)
                    .where(product_variants.c.id == variant_id)
                    .values(stock=product_variants.c.stock + quantity, updated_at=func.now())
                )
            await changed(conn, "Product", product_ids)
            await changed(conn, "ProductVariant", sorted(back))
            return True


async def _wanted_variants(
    conn: AsyncConnection, lines: Sequence[tuple[uuid.UUID | None, uuid.UUID | None, int]]
) -> dict[uuid.UUID, int]:
    """Lines → variant id: quantity (one statement resolves every bare product id)."""
    bare = sorted({p for p, v, _ in lines if v is None and p is not None})
    defaults: dict[uuid.UUID, uuid.UUID] = {}
    if bare:
        ranked = (
            select(
                product_variants.c.product_id,
                product_variants.c.id,
                func.row_number()
                .over(
                    partition_by=product_variants.c.product_id,
                    order_by=(
                        (product_variants.c.id == product_variants.c.product_id).desc(),
                        product_variants.c.active.desc(),
                        product_variants.c.position,
                        product_variants.c.id,
                    ),
                )
                .label("n"),
            )
            .where(product_variants.c.product_id.in_(bare))
            .subquery()
        )
        for r in (await conn.execute(select(ranked.c.product_id, ranked.c.id).where(ranked.c.n == 1))).all():
            defaults[r.product_id] = r.id
    wanted: dict[uuid.UUID, int] = {}
    for index, (product_id, variant_id, quantity) in enumerate(lines):
        chosen = variant_id or (defaults.get(product_id) if product_id is not None else None)
        if chosen is None:
            raise DomainError(
                Code.PRODUCT_NOT_FOUND, f"Product {product_id} does not exist.", ["input", "lines", str(index)]
            )
        wanted[chosen] = wanted.get(chosen, 0) + quantity
    return wanted


async def _line_names(conn: AsyncConnection, rows: dict[uuid.UUID, Row[Any]]) -> dict[uuid.UUID, str]:
    """Each variant's line name, "Product — Olive / M", its values in the product's option order."""
    product_ids = sorted({r.product_id for r in rows.values()})
    order: dict[uuid.UUID, list[str]] = {}
    if product_ids:
        for r in (
            await conn.execute(
                select(product_options.c.product_id, product_options.c.name)
                .where(product_options.c.product_id.in_(product_ids))
                .order_by(product_options.c.product_id, product_options.c.position, product_options.c.name)
            )
        ).all():
            order.setdefault(r.product_id, []).append(r.name)
    names = {}
    for variant_id, row in rows.items():
        title = variant_title(row.options, order.get(row.product_id, sorted(row.options)))
        names[variant_id] = f"{row.product_name} — {title}" if title else str(row.product_name)
    return names


def _stock_problems(
    wanted: dict[uuid.UUID, int], rows: dict[uuid.UUID, Row[Any]], names: dict[uuid.UUID, str]
) -> list[DomainError]:
    problems = []
    for variant_id, quantity in wanted.items():
        row = rows.get(variant_id)
        path = ["input", "lines", str(variant_id)]
        if row is None:
            problems.append(DomainError(Code.PRODUCT_NOT_FOUND, f"Variant {variant_id} does not exist.", path))
        elif not row.active or not row.product_active:
            problems.append(DomainError(Code.PRODUCT_INACTIVE, f"{names[variant_id]} is no longer sold.", path))
        elif row.stock < quantity:
            problems.append(
                DomainError(Code.OUT_OF_STOCK, f"Only {row.stock} of {names[variant_id]} left in stock.", path)
            )
    return problems


def _reserved_to_json(line: ReservedLine) -> dict[str, Any]:
    return {
        "product_id": str(line.product_id),
        "quantity": line.quantity,
        "sku": line.sku,
        "name": line.name,
        "unit_price_minor": line.unit_price_minor,
        "currency": line.currency,
        "variant_id": str(line.variant_id),
    }


def _reserved_from_json(data: dict[str, Any]) -> ReservedLine:
    variant = data.get("variant_id") or data["product_id"]  # made before variants: the same id
    return ReservedLine(**{**data, "product_id": uuid.UUID(data["product_id"]), "variant_id": uuid.UUID(variant)})


def _text(value: Any, field: str, limit: int) -> str:
    cleaned = str(value or "").strip()
    if not cleaned:
        raise DomainError(Code.REQUIRED, f"{field} is required.", ["input", field])
    if len(cleaned) > limit:
        raise DomainError(Code.TOO_LONG, f"{field} is at most {limit} characters.", ["input", field])
    return cleaned
