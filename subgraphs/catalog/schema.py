"""The catalog subgraph's graph surface: categories, products, search, stock."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from functools import cached_property
from typing import Annotated, Any

import strawberry
from sqlalchemy import Row
from strawberry.types import Info

from subgraphs.kit.cache_control import INHERIT, CacheHint
from subgraphs.kit.context import RequestContext
from subgraphs.kit.domain import DomainError
from subgraphs.kit.domain import ErrorCode as Code
from subgraphs.kit.errors import UserError, bad_input
from subgraphs.kit.inputs import sent_fields
from subgraphs.kit.loaders import parse_uuid
from subgraphs.kit.money import Money, to_minor
from subgraphs.kit.mutations import admin, internal, mutate
from subgraphs.kit.pagination import CONNECTION_SIZE, Connection, build_connection, decode_cursor, page_size
from subgraphs.kit.schema import federated_schema

from .loaders import CategoryCountKey, CategoryPageKey, Loaders
from .service import Catalog, ProductListing, ProductQuery, SortKey


@dataclass
class CatalogContext(RequestContext):
    @cached_property
    def loaders(self) -> Loaders:
        return Loaders(self.runtime.db)

    @cached_property
    def catalog(self) -> Catalog:
        return Catalog(self.runtime.db, self.runtime.settings.currency)

    @property
    def sees_archived(self) -> bool:
        """Administrators and other subgraphs see archived products; shoppers do not."""
        identity = self.identity
        return identity.is_admin or identity.is_subgraph


CatalogInfo = Info[CatalogContext, None]


@strawberry.enum(name="ProductSortKey")
class ProductSortKeyEnum(Enum):
    RELEVANCE = "RELEVANCE"
    PRICE = "PRICE"
    NAME = "NAME"
    NEWEST = "NEWEST"


@strawberry.input
class ProductFilter:
    category_id: strawberry.ID | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    in_stock: bool | None = strawberry.field(default=None, description="true: only in stock; false: only sold out.")
    include_archived: bool = strawberry.field(default=False, description="Administrators only.")


@strawberry.federation.type(keys=["id"])
class Category:
    id: strawberry.ID
    slug: str
    name: str
    description: str | None
    uuid: strawberry.Private[uuid.UUID]

    @strawberry.field(
        description=(
            "Products in this category (same arguments as Query.products). `filter.categoryId` narrows "
            "within this category: another category's id gives an empty list."
        ),
        directives=[CONNECTION_SIZE],
    )
    async def products(
        self,
        info: CatalogInfo,
        first: int | None = None,
        after: str | None = None,
        search: str | None = None,
        filter: ProductFilter | None = None,
        sort_key: ProductSortKeyEnum | None = None,
        reverse: bool = False,
    ) -> Connection[Product]:
        # Batched across the categories of a request (one query per distinct listing), unlike Query.products.
        loaders = info.context.loaders
        size = page_size(first)
        query = product_query(info, search, filter, sort_key, reverse)
        listing = ProductListing(query)
        cursor = listing.parse_cursor(decode_cursor(after, 2)) if after else None
        rows = await loaders.category_page.load(CategoryPageKey(self.uuid, query, size, cursor))
        return build_connection(
            rows,
            size,
            after=after,
            key_of=listing.cursor_key,
            node_of=Product.from_row,
            count=lambda: loaders.category_count.load(CategoryCountKey(self.uuid, query)),
        )

    @classmethod
    def from_row(cls, row: Row[Any]) -> Category:
        return cls(
            id=strawberry.ID(str(row.id)), slug=row.slug, name=row.name, description=row.description, uuid=row.id
        )

    @classmethod
    async def resolve_reference(cls, info: CatalogInfo, id: strawberry.ID) -> Category | None:
        key = parse_uuid(id)
        row = await info.context.loaders.category.load(key) if key else None
        return cls.from_row(row) if row else None


class _Unread:
    """The category did not come with the product's row."""


UNREAD = _Unread()


def _category_of(row: Row[Any]) -> Category | _Unread | None:
    name = getattr(row, "category_name", UNREAD)
    if isinstance(name, _Unread):
        return UNREAD
    if name is None or row.category_id is None:  # no category, or none left (the LEFT JOIN found none)
        return None
    return Category(
        id=strawberry.ID(str(row.category_id)),
        slug=row.category_slug,
        name=name,
        description=row.category_description,
        uuid=row.category_id,
    )


@strawberry.federation.type(keys=["id", "sku"])
class Product:
    id: strawberry.ID
    sku: str
    name: str
    description: str
    price: Money
    stock: int = strawberry.field(description="Units available to order now.")
    image_url: str | None
    active: bool = strawberry.field(description="False once archived: no longer sold.")
    created_at: datetime
    updated_at: datetime
    category_uuid: strawberry.Private[uuid.UUID | None]
    # Its category when the product's row carried it (listings and references join it), else UNREAD.
    read_category: strawberry.Private[Category | _Unread | None] = UNREAD

    @strawberry.field
    def in_stock(self) -> bool:
        return self.stock > 0

    # Synchronous when the category came with the row (no await, no dataloader round); otherwise
    # it returns the loader's awaitable, which the executor awaits like an async resolver's.
    @strawberry.field(graphql_type=Category | None)
    def category(self, info: CatalogInfo) -> Category | Awaitable[Category | None] | None:
        if not isinstance(self.read_category, _Unread):
            return self.read_category
        if self.category_uuid is None:
            return None
        return self._load_category(info, self.category_uuid)

    @staticmethod
    async def _load_category(info: CatalogInfo, category_id: uuid.UUID) -> Category | None:
        row = await info.context.loaders.category.load(category_id)
        return Category.from_row(row) if row else None

    @classmethod
    def from_row(cls, row: Row[Any]) -> Product:
        return cls(
            id=strawberry.ID(str(row.id)),
            sku=row.sku,
            name=row.name,
            description=row.description,
            price=Money.of(row.price_minor, row.currency),
            stock=row.stock,
            image_url=row.image_url,
            active=row.active,
            created_at=row.created_at,
            updated_at=row.updated_at,
            category_uuid=row.category_id,
            read_category=_category_of(row),
        )

    @classmethod
    async def resolve_reference(
        cls, info: CatalogInfo, id: strawberry.ID | None = None, sku: str | None = None
    ) -> Product | None:
        # References come from our own graph (a cart line, an order item), so an
        # archived product still resolves: order history keeps its names.
        loaders = info.context.loaders
        if id is not None:
            key = parse_uuid(id)
            row = await loaders.product.load(key) if key else None
        elif sku is not None:
            row = await loaders.product_by_sku.load(sku.upper())
        else:
            row = None
        return cls.from_row(row) if row else None


def product_query(
    info: CatalogInfo,
    search: str | None,
    filter: ProductFilter | None,
    sort_key: ProductSortKeyEnum | None,
    reverse: bool,
) -> ProductQuery:
    """The listing arguments of ``Query.products`` and ``Category.products``, checked."""
    ctx = info.context
    currency = ctx.runtime.settings.currency
    f = filter or ProductFilter()
    if f.include_archived and not ctx.sees_archived:
        ctx.identity.require_admin()
    return ProductQuery(
        search=search.strip() or None if search else None,
        # A malformed id matches no category (and so no product).
        category_id=None if f.category_id is None else parse_uuid(f.category_id) or uuid.UUID(int=0),
        min_price_minor=_price_bound(f.min_price, currency, "minPrice"),
        max_price_minor=_price_bound(f.max_price, currency, "maxPrice"),
        in_stock=f.in_stock,
        visible_only=not f.include_archived,
        sort=SortKey((sort_key or (ProductSortKeyEnum.RELEVANCE if search else ProductSortKeyEnum.NEWEST)).value),
        reverse=reverse,
    )


async def list_products(
    info: CatalogInfo,
    first: int | None,
    after: str | None,
    search: str | None,
    filter: ProductFilter | None,
    sort_key: ProductSortKeyEnum | None,
    reverse: bool,
) -> Connection[Product]:
    ctx = info.context
    size = page_size(first)
    query = product_query(info, search, filter, sort_key, reverse)
    rows, listing = await ctx.catalog.list_products(query, size, decode_cursor(after, 2) if after else None)
    return build_connection(
        rows,
        size,
        after=after,
        key_of=listing.cursor_key,
        node_of=Product.from_row,
        count=lambda: ctx.catalog.count_products(listing),
    )


def _price_bound(value: Decimal | None, currency: str, name: str) -> int | None:
    if value is None:
        return None
    try:
        minor = to_minor(value, currency)
    except ValueError as exc:
        raise bad_input(f"`{name}` is not a valid {currency} amount.") from exc
    if not -(2**63) <= minor < 2**63:  # what PostgreSQL's bigint can compare against
        raise bad_input(f"`{name}` is out of range.")
    return minor


@strawberry.type
class Query:
    @strawberry.field(
        description="Browse or search products (a Relay connection, at most 100 a page).", directives=[CONNECTION_SIZE]
    )
    async def products(
        self,
        info: CatalogInfo,
        first: int | None = None,
        after: str | None = None,
        search: Annotated[str | None, strawberry.argument(description="Full-text search, prefix-matching.")] = None,
        filter: ProductFilter | None = None,
        sort_key: Annotated[
            ProductSortKeyEnum | None,
            strawberry.argument(description="Default: RELEVANCE if searching, else NEWEST."),
        ] = None,
        reverse: bool = False,
    ) -> Connection[Product]:
        return await list_products(info, first, after, search, filter, sort_key, reverse)

    @strawberry.field(description="One product by id or by SKU (exactly one of them).")
    async def product(
        self, info: CatalogInfo, id: strawberry.ID | None = None, sku: str | None = None
    ) -> Product | None:
        if (id is None) == (sku is None):
            raise bad_input("Give exactly one of `id` and `sku`.")
        product = await Product.resolve_reference(info, id=id, sku=sku)
        if product is not None and not product.active and not info.context.sees_archived:
            return None
        return product

    @strawberry.field
    async def categories(self, info: CatalogInfo) -> list[Category]:
        rows = await info.context.catalog.list_categories()
        # Their products' `category` then costs no second lookup.
        info.context.loaders.category.prime_many({r.id: r for r in rows})
        return [Category.from_row(r) for r in rows]

    @strawberry.field(description="One category by id or by slug (exactly one of them).")
    async def category(
        self, info: CatalogInfo, id: strawberry.ID | None = None, slug: str | None = None
    ) -> Category | None:
        if (id is None) == (slug is None):
            raise bad_input("Give exactly one of `id` and `slug`.")
        if id is not None:
            return await Category.resolve_reference(info, id)
        row = await info.context.catalog.category_by_slug(slug or "")
        return Category.from_row(row) if row else None


# --- mutations -----------------------------------------------------------------


@strawberry.type
class ProductPayload:
    product: Product | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class CategoryPayload:
    category: Category | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class CreateCategoryInput:
    slug: str
    name: str
    description: str | None = None


@strawberry.input
class CreateProductInput:
    sku: str
    name: str
    description: str = ""
    price: Decimal = strawberry.field(description='In the shop currency, e.g. "19.99".')
    stock: int = 0
    image_url: str | None = None
    category_id: strawberry.ID | None = None
    active: bool = True


@strawberry.input
class UpdateProductInput:
    id: strawberry.ID
    sku: str | None = strawberry.UNSET
    name: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    price: Decimal | None = strawberry.UNSET
    image_url: str | None = strawberry.UNSET
    category_id: strawberry.ID | None = strawberry.UNSET
    active: bool | None = strawberry.UNSET


@strawberry.input
class ArchiveProductInput:
    id: strawberry.ID


@strawberry.input
class AdjustStockInput:
    product_id: strawberry.ID
    delta: int = strawberry.field(description="Units to add (negative to remove); stock never goes below zero.")


@strawberry.federation.input(inaccessible=True)
class StockLineInput:
    product_id: strawberry.ID
    quantity: int


@strawberry.federation.input(inaccessible=True)
class ReserveStockInput:
    reservation_id: strawberry.ID
    lines: list[StockLineInput]


@strawberry.federation.input(inaccessible=True)
class ReleaseStockInput:
    reservation_id: strawberry.ID


@strawberry.federation.type(inaccessible=True)
class ReservedLine:
    product_id: strawberry.ID
    quantity: int
    sku: str
    name: str
    unit_price: Money


@strawberry.federation.type(inaccessible=True)
class ReserveStockPayload:
    lines: list[ReservedLine] | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.federation.type(inaccessible=True)
class ReleaseStockPayload:
    released: bool = False


PRODUCT_FIELDS = ("sku", "name", "description", "price", "stock", "image_url", "category_id", "active")
# What updateProduct may change: stock changes only through adjustStock (a delta, never a blind overwrite).
UPDATABLE_PRODUCT_FIELDS = ("sku", "name", "description", "price", "image_url", "category_id", "active")


def _ids_to_uuids(fields: dict[str, Any]) -> dict[str, Any]:
    if fields.get("category_id") is not None:
        category = parse_uuid(fields["category_id"])
        if category is None:
            raise DomainError(Code.NOT_FOUND, "No such category.", ["input", "categoryId"])
        fields["category_id"] = category
    return fields


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Administrators only.")
    async def create_category(self, info: CatalogInfo, input: CreateCategoryInput) -> CategoryPayload:
        async def perform(_: uuid.UUID) -> CategoryPayload:
            row = await info.context.catalog.create_category(input.slug, input.name, input.description)
            return CategoryPayload(category=Category.from_row(row))

        return await mutate(info, CategoryPayload, perform, allow=admin)

    @strawberry.mutation(description="Administrators only.")
    async def create_product(self, info: CatalogInfo, input: CreateProductInput) -> ProductPayload:
        async def perform(_: uuid.UUID) -> ProductPayload:
            fields = _ids_to_uuids(sent_fields(input, PRODUCT_FIELDS))
            return ProductPayload(product=Product.from_row(await info.context.catalog.create_product(fields)))

        return await mutate(info, ProductPayload, perform, allow=admin)

    @strawberry.mutation(description="Administrators only. Fields left out stay as they are.")
    async def update_product(self, info: CatalogInfo, input: UpdateProductInput) -> ProductPayload:
        async def perform(_: uuid.UUID) -> ProductPayload:
            fields = _ids_to_uuids(sent_fields(input, UPDATABLE_PRODUCT_FIELDS))
            row = await info.context.catalog.update_product(parse_uuid(input.id), fields)
            return ProductPayload(product=Product.from_row(row))

        return await mutate(info, ProductPayload, perform, allow=admin)

    @strawberry.mutation(description="Administrators only. Archived products are no longer sold or listed.")
    async def archive_product(self, info: CatalogInfo, input: ArchiveProductInput) -> ProductPayload:
        async def perform(_: uuid.UUID) -> ProductPayload:
            row = await info.context.catalog.update_product(parse_uuid(input.id), {"active": False})
            return ProductPayload(product=Product.from_row(row))

        return await mutate(info, ProductPayload, perform, allow=admin)

    @strawberry.mutation(description="Administrators only.")
    async def adjust_stock(self, info: CatalogInfo, input: AdjustStockInput) -> ProductPayload:
        async def perform(_: uuid.UUID) -> ProductPayload:
            row = await info.context.catalog.adjust_stock(parse_uuid(input.product_id), input.delta)
            return ProductPayload(product=Product.from_row(row))

        return await mutate(info, ProductPayload, perform, allow=admin)

    @strawberry.federation.mutation(inaccessible=True, description="Internal: the orders subgraph only.")
    async def reserve_stock(self, info: CatalogInfo, input: ReserveStockInput) -> ReserveStockPayload:
        async def perform(_: str) -> ReserveStockPayload:
            reservation_id = parse_uuid(input.reservation_id)
            if reservation_id is None:
                raise bad_input("reservationId must be a UUID.")
            lines = []
            for index, line in enumerate(input.lines):
                product_id = parse_uuid(line.product_id)
                if product_id is None:
                    raise DomainError(
                        Code.PRODUCT_NOT_FOUND, "No such product.", ["input", "lines", str(index), "productId"]
                    )
                lines.append((product_id, line.quantity))
            reserved = await info.context.catalog.reserve(reservation_id, lines)
            return ReserveStockPayload(
                lines=[
                    ReservedLine(
                        product_id=strawberry.ID(str(r.product_id)),
                        quantity=r.quantity,
                        sku=r.sku,
                        name=r.name,
                        unit_price=Money.of(r.unit_price_minor, r.currency),
                    )
                    for r in reserved
                ]
            )

        return await mutate(info, ReserveStockPayload, perform, allow=internal("orders"))

    @strawberry.federation.mutation(inaccessible=True, description="Internal: the orders subgraph only.")
    async def release_stock(self, info: CatalogInfo, input: ReleaseStockInput) -> ReleaseStockPayload:
        async def perform(_: str) -> ReleaseStockPayload:
            reservation_id = parse_uuid(input.reservation_id)
            if reservation_id is None:
                raise bad_input("reservationId must be a UUID.")
            return ReleaseStockPayload(released=await info.context.catalog.release(reservation_id))

        return await mutate(info, ReleaseStockPayload, perform, allow=internal("orders"))


# Products and categories look the same to every caller (archived ones included,
# as references from orders must resolve): public, and dropped from the routers'
# caches by this subgraph's change events (events.py) rather than by age.
# ``Query.product`` is not cached: it hides archived products from shoppers only.
CACHE_HINTS = {
    "Query.product": CacheHint(0),
    "Product": CacheHint(600),
    "Category": CacheHint(600),
    "Query.products": CacheHint(600),
    "Query.categories": CacheHint(600),
    "ProductConnection": INHERIT,
    "ProductEdge": INHERIT,
    "PageInfo": INHERIT,
    "Money": INHERIT,
}

schema = federated_schema(
    query=Query,
    mutation=Mutation,
    types=[Product, Category],
    cache_hints=CACHE_HINTS,
)
