"""The catalog subgraph's graph surface: categories, products, search, stock."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from functools import cached_property
from typing import Annotated, Any, cast

import strawberry
from sqlalchemy import Row
from strawberry.types import Info

from subgraphs.kit.auth import ADMIN_ONLY
from subgraphs.kit.cache_control import INHERIT, CacheHint
from subgraphs.kit.context import RequestContext
from subgraphs.kit.domain import DomainError, InvalidArgument
from subgraphs.kit.domain import ErrorCode as Code
from subgraphs.kit.errors import UserError, bad_input
from subgraphs.kit.inputs import sent_fields
from subgraphs.kit.loaders import parse_uuid
from subgraphs.kit.money import Money, to_minor
from subgraphs.kit.mutations import admin, internal, mutate
from subgraphs.kit.pagination import (
    CONNECTION_SIZE,
    Connection,
    build_connection,
    decode_cursor,
    page_size,
    selects_total,
)
from subgraphs.kit.schema import federated_schema

from .loaders import CategoryCountKey, CategoryPageKey, Loaders
from .media import WIDTHS, Media
from .search import BAND_KEYS, MAX_TEXT, Search, SearchQuery, SearchResult, parse_options, price_band_label
from .service import Catalog, ProductListing, ProductQuery, SortKey
from .variants import OptionSpec, Variants, VariantSpec


@dataclass
class CatalogContext(RequestContext):
    @cached_property
    def loaders(self) -> Loaders:
        return Loaders(self.runtime.db)

    @property
    def media(self) -> Media:
        media: Media = self.runtime.parts[Media]
        return media

    @cached_property
    def variants(self) -> Variants:
        return Variants(self.runtime.db, self.runtime.settings.currency)

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
class OptionFilter:
    name: str
    values: list[str]


@strawberry.input
class ProductFilter:
    category_id: strawberry.ID | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    in_stock: bool | None = strawberry.field(default=None, description="true: only in stock; false: only sold out.")
    options: list[OptionFilter] = strawberry.field(
        default_factory=list,
        description="A variant with one of the values of every option given (as productSearch's filter); "
        "narrows together with the other filters.",
    )
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


@strawberry.enum
class ImageFormat(Enum):
    WEBP = "webp"
    JPG = "jpg"


@strawberry.type(description="A product image; its renditions are served at stable, cacheable URLs.")
class Image:
    id: strawberry.ID
    alt_text: str
    width: int = strawberry.field(description="Of the original, in pixels.")
    height: int
    variant_id: strawberry.ID | None = strawberry.field(description="The variant it shows, if one.")
    uuid: strawberry.Private[uuid.UUID]

    @strawberry.field(description=f"A rendition at most `width` wide; widths are {', '.join(map(str, WIDTHS))}.")
    def url(self, info: CatalogInfo, width: int = 640, format: ImageFormat = ImageFormat.WEBP) -> str:
        chosen = min(WIDTHS, key=lambda w: (w < width, abs(w - width)))  # the next width up, else the largest
        return info.context.media.url(self.uuid, chosen, format.value)

    @strawberry.field(description="Every rendition as an `srcset` value: `<url> 160w, <url> 320w, …`.")
    def srcset(self, info: CatalogInfo, format: ImageFormat = ImageFormat.WEBP) -> str:
        media = info.context.media
        return ", ".join(f"{media.url(self.uuid, w, format.value)} {w}w" for w in WIDTHS)

    @classmethod
    def from_row(cls, row: Row[Any]) -> Image:
        return cls(
            id=strawberry.ID(str(row.id)),
            alt_text=row.alt_text,
            width=row.width,
            height=row.height,
            variant_id=strawberry.ID(str(row.variant_id)) if row.variant_id else None,
            uuid=row.id,
        )


def _image_of_variant(
    variant_id: uuid.UUID, options: dict[str, str], media: list[Row[Any]], variants: list[Row[Any]]
) -> Row[Any] | None:
    """A variant's picture: its own, else one of a sibling with the same first option value (Olive / M
    shows Olive / S's), else the product's first."""
    own = [m for m in media if m.variant_id == variant_id]
    if own:
        return own[0]
    if options:
        name, value = next(iter(sorted(options.items())))
        siblings = {v.id for v in variants if (v.options or {}).get(name) == value}
        shared = [m for m in media if m.variant_id in siblings]
        if shared:
            return shared[0]
    return media[0] if media else None


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

    @strawberry.field(description="The options its variants differ by (Colour, Size, …), values in order.")
    async def options(self, info: CatalogInfo) -> list[ProductOption]:
        rows = await info.context.loaders.options_of.load(uuid.UUID(str(self.id)))
        # Records: "values" is read by name (a Record's own ``values`` method wins over the attribute).
        return [ProductOption(name=r.name, values=list(cast(Any, r)["values"])) for r in rows]

    @strawberry.field(description="Its images in order (the first is the featured one).")
    async def images(self, info: CatalogInfo) -> list[Image]:
        return [Image.from_row(r) for r in await info.context.loaders.media_of.load(uuid.UUID(str(self.id)))]

    @strawberry.field
    async def featured_image(self, info: CatalogInfo) -> Image | None:
        rows = await info.context.loaders.media_of.load(uuid.UUID(str(self.id)))
        return Image.from_row(rows[0]) if rows else None

    @strawberry.field(description="What is sold: one variant per combination of option values.")
    async def variants(self, info: CatalogInfo, include_inactive: bool = False) -> list[ProductVariant]:
        rows = await info.context.loaders.variants_of.load(uuid.UUID(str(self.id)))
        return [ProductVariant.from_row(r) for r in rows if include_inactive or r.active]

    @strawberry.field(description="The variant a bare product id means (the first on sale).")
    async def default_variant(self, info: CatalogInfo) -> ProductVariant | None:
        rows = await info.context.loaders.variants_of.load(uuid.UUID(str(self.id)))
        chosen = _default_variant(rows, uuid.UUID(str(self.id)))
        return ProductVariant.from_row(chosen) if chosen is not None else None

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


def _default_variant(rows: list[Row[Any]], product_id: uuid.UUID) -> Row[Any] | None:
    """As variants.default_variant_id: the variant sharing the product's id, else the first on sale."""
    if not rows:
        return None
    return min(rows, key=lambda r: (r.id != product_id, not r.active, r.position, str(r.id)))


@strawberry.type
class ProductOption:
    name: str
    values: list[str]


@strawberry.type
class SelectedOption:
    name: str
    value: str


@strawberry.federation.type(keys=["id", "sku"])
class ProductVariant:
    id: strawberry.ID
    sku: str
    price: Money
    stock: int = strawberry.field(description="Units of this variant available to order now.")
    active: bool
    weight_grams: int = strawberry.field(description="Shipping weight of one unit, in grams (BY_WEIGHT rates).")
    product_uuid: strawberry.Private[uuid.UUID]
    options: strawberry.Private[dict[str, str]]

    async def _ordered(self, info: CatalogInfo) -> list[tuple[str, str]]:
        """Its option values in the product's option order (a JSON object keeps none)."""
        rows = await info.context.loaders.options_of.load(self.product_uuid)
        order = {r.name: i for i, r in enumerate(rows)}
        return sorted(self.options.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))

    @strawberry.field(description='Its option values, e.g. "Olive / M" (empty for a default variant).')
    async def title(self, info: CatalogInfo) -> str:
        return " / ".join(value for _, value in await self._ordered(info))

    @strawberry.field
    async def selected_options(self, info: CatalogInfo) -> list[SelectedOption]:
        return [SelectedOption(name=n, value=v) for n, v in await self._ordered(info)]

    @strawberry.field
    def in_stock(self) -> bool:
        return self.stock > 0

    @strawberry.field(description="Its picture: its own, else its colour's, else the product's first.")
    async def image(self, info: CatalogInfo) -> Image | None:
        loaders = info.context.loaders
        media = await loaders.media_of.load(self.product_uuid)
        if not media:
            return None
        variants = await loaders.variants_of.load(self.product_uuid)
        chosen = _image_of_variant(uuid.UUID(str(self.id)), self.options, media, variants)
        return Image.from_row(chosen) if chosen is not None else None

    @strawberry.field(description="The product this variant belongs to.")
    async def product(self, info: CatalogInfo) -> Product | None:
        row = await info.context.loaders.product.load(self.product_uuid)
        return Product.from_row(row) if row else None

    @classmethod
    def from_row(cls, row: Row[Any]) -> ProductVariant:
        return cls(
            id=strawberry.ID(str(row.id)),
            sku=row.sku,
            options=dict(row.options or {}),
            price=Money.of(row.price_minor, row.currency),
            stock=row.stock,
            active=row.active,
            weight_grams=row.weight_grams,
            product_uuid=row.product_id,
        )

    @classmethod
    async def resolve_reference(
        cls, info: CatalogInfo, id: strawberry.ID | None = None, sku: str | None = None
    ) -> ProductVariant | None:
        # As Product's: a reference (a cart or order line) resolves even once archived.
        loaders = info.context.loaders
        if id is not None:
            key = parse_uuid(id)
            row = await loaders.variant.load(key) if key else None
        elif sku is not None:
            row = await loaders.variant_by_sku.load(sku.strip().upper())
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
    if f.include_archived:
        if not ctx.sees_archived:
            ctx.identity.require_admin()
        ctx.answer_depends_on_caller()  # archived products are for administrators only: never shared
    return ProductQuery(
        search=search.strip() or None if search else None,
        # A malformed id matches no category (and so no product).
        category_id=None if f.category_id is None else parse_uuid(f.category_id) or uuid.UUID(int=0),
        min_price_minor=_price_bound(f.min_price, currency, "minPrice"),
        max_price_minor=_price_bound(f.max_price, currency, "maxPrice"),
        in_stock=f.in_stock,
        options=_option_filter(f.options),
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
    if search and search.strip() and len(search) <= MAX_TEXT:
        # Typos corrected and split words joined, as productSearch does ("head phones", "expresso").
        search = await Search(ctx.runtime.db, ctx.runtime.settings.currency).correct(search)
    query = product_query(info, search, filter, sort_key, reverse)
    # The first page counts in its own statement (a window count), as allOrders does; later pages'
    # rows are only those after the cursor, so they count apart, when asked to.
    with_total = after is None and selects_total(info)
    cursor = decode_cursor(after, 2) if after else None
    rows, listing = await ctx.catalog.list_products(query, size, cursor, with_total=with_total)

    async def count() -> int:
        if with_total:
            return int(rows[0].total) if rows else 0
        return await ctx.catalog.count_products(listing)

    return build_connection(rows, size, after=after, key_of=listing.cursor_key, node_of=Product.from_row, count=count)


def _option_filter(options: list[OptionFilter]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    chosen = parse_options([(o.name, o.values) for o in options])
    if len(chosen) > 5 or any(len(values) > 50 for _, values in chosen):
        raise bad_input("At most 5 options of 50 values each.")
    return chosen


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


@strawberry.input
class ProductSearchFilter:
    category_ids: list[strawberry.ID] = strawberry.field(default_factory=list)
    price_bands: list[str] = strawberry.field(
        default_factory=list, description=f"Keys of the price facet: {', '.join(BAND_KEYS)} (whole units)."
    )
    options: list[OptionFilter] = strawberry.field(
        default_factory=list, description="A variant with one of the values of every option given."
    )
    in_stock: bool | None = None


@strawberry.type
class FacetValue:
    value: str = strawberry.field(description="What to put in the filter (a category id, a band key, an option value).")
    label: str
    count: int = strawberry.field(description="Products it would find with the other facets' filters as they are.")
    selected: bool


@strawberry.type(description="One facet: CATEGORY, PRICE, IN_STOCK, or OPTION (then `name` is the option's name).")
class SearchFacet:
    kind: str
    name: str
    values: list[FacetValue]


@strawberry.type
class ProductSearchResult:
    products: Connection[Product]
    total_count: int
    facets: list[SearchFacet]
    corrected_query: str | None = strawberry.field(
        description='What was searched for instead (typos corrected, "head phones" joined), if not the query.'
    )
    did_you_mean: str | None = strawberry.field(description="When nothing matches: a query that would.")


def _facets(result: SearchResult, query: SearchQuery, currency: str) -> list[SearchFacet]:
    by_kind: dict[tuple[str, str], list[FacetValue]] = {}
    chosen_categories = {str(c) for c in query.category_ids}
    chosen_options = {name.lower(): {v.lower() for v in values} for name, values in query.options}
    for f in result.facets:
        if f.facet == "category":
            key, value = (
                ("CATEGORY", "Category"),
                FacetValue(value=f.value, label=f.label, count=f.count, selected=f.value in chosen_categories),
            )
        elif f.facet == "price":
            key, value = (
                ("PRICE", "Price"),
                FacetValue(
                    value=f.value,
                    label=price_band_label(f.value, currency),
                    count=f.count,
                    selected=f.value in query.price_bands,
                ),
            )
        elif f.facet == "inStock":
            in_stock = f.value == "true"
            key, value = (
                ("IN_STOCK", "Availability"),
                FacetValue(
                    value=f.value,
                    label="In stock" if in_stock else "Sold out",
                    count=f.count,
                    selected=query.in_stock is in_stock,
                ),
            )
        else:
            key, value = (
                ("OPTION", f.label),
                FacetValue(
                    value=f.value,
                    label=f.value,
                    count=f.count,
                    selected=f.value.lower() in chosen_options.get(f.label.lower(), set()),
                ),
            )
        by_kind.setdefault(key, []).append(value)
    order = {"CATEGORY": 0, "PRICE": 1, "OPTION": 2, "IN_STOCK": 3}
    facets = []
    for (kind, name), values in sorted(by_kind.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])):
        if kind == "PRICE":
            values.sort(key=lambda v: BAND_KEYS.index(v.value))
        elif kind == "IN_STOCK":
            values.sort(key=lambda v: v.value != "true")
        else:
            values.sort(key=lambda v: (-v.count, v.label))
        facets.append(SearchFacet(kind=kind, name=name, values=values))
    return facets


@strawberry.type
class Query:
    @strawberry.field(
        description=(
            "Search with typo tolerance, word splitting, stemming and accent folding, ranked; with facets "
            "(category, price band, each option value, in stock) whose counts narrow together. "
            "At most 100 products a page."
        ),
    )
    async def product_search(
        self,
        info: CatalogInfo,
        query: str | None = None,
        filter: ProductSearchFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> ProductSearchResult:
        ctx = info.context
        size = page_size(first)
        offset = 0
        if after:
            (raw,) = decode_cursor(after, 1)
            if not isinstance(raw, int) or isinstance(raw, bool) or raw < 0:
                raise bad_input("Invalid cursor.")
            offset = raw + 1
        f = filter or ProductSearchFilter()
        search_query = SearchQuery(
            text=query.strip() or None if query else None,
            # A malformed id matches no category.
            category_ids=tuple(parse_uuid(c) or uuid.UUID(int=0) for c in f.category_ids),
            price_bands=tuple(dict.fromkeys(f.price_bands)),
            options=parse_options([(o.name, o.values) for o in f.options]),
            in_stock=f.in_stock,
            offset=offset,
            limit=size,
        )
        try:
            result = await Search(ctx.runtime.db, ctx.runtime.settings.currency).run(search_query)
        except InvalidArgument as exc:
            raise bad_input(str(exc)) from exc
        positions = {id(row): offset + i for i, row in enumerate(result.rows)}

        async def total() -> int:
            return result.total

        return ProductSearchResult(
            products=build_connection(
                result.rows,
                size,
                after=after,
                key_of=lambda row: [positions[id(row)]],
                node_of=Product.from_row,
                count=total,
            ),
            total_count=result.total,
            facets=_facets(result, search_query, ctx.runtime.settings.currency),
            corrected_query=result.corrected,
            did_you_mean=result.did_you_mean,
        )

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

    @strawberry.field(description="One variant by id or by SKU (exactly one of them).")
    async def product_variant(
        self, info: CatalogInfo, id: strawberry.ID | None = None, sku: str | None = None
    ) -> ProductVariant | None:
        if (id is None) == (sku is None):
            raise bad_input("Give exactly one of `id` and `sku`.")
        variant = await ProductVariant.resolve_reference(info, id=id, sku=sku)
        if variant is None or info.context.sees_archived:
            return variant
        product = await info.context.loaders.product.load(variant.product_uuid)
        return variant if variant.active and product is not None and product.active else None

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
    variant: ProductVariant | None = strawberry.field(default=None, description="The variant a stock change moved.")
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
class ProductOptionInput:
    name: str
    values: list[str]


@strawberry.input
class SelectedOptionInput:
    name: str
    value: str


@strawberry.input
class ProductVariantInput:
    sku: str
    options: list[SelectedOptionInput]
    price: Decimal | None = strawberry.field(default=None, description="Default: the product's price.")
    stock: int = 0
    active: bool = True
    weight_grams: int | None = strawberry.field(
        default=None, description="Shipping weight of one unit (default 500 g)."
    )


@strawberry.input
class CreateProductVariantInput:
    product_id: strawberry.ID
    sku: str
    options: list[SelectedOptionInput] = strawberry.field(
        description="One value per product option; a new value is added to its option."
    )
    price: Decimal
    stock: int = 0
    active: bool = True
    weight_grams: int | None = strawberry.field(
        default=None, description="Shipping weight of one unit (default 500 g)."
    )


@strawberry.input
class UpdateProductVariantInput:
    id: strawberry.ID
    sku: str | None = strawberry.UNSET
    price: Decimal | None = strawberry.UNSET
    active: bool | None = strawberry.UNSET
    weight_grams: int | None = strawberry.UNSET


@strawberry.type
class ProductVariantPayload:
    variant: ProductVariant | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class CreateProductImageUploadInput:
    product_id: strawberry.ID
    variant_id: strawberry.ID | None = None
    alt_text: str = ""


@strawberry.type(description="PUT the image (JPEG, PNG, WebP or GIF, at most 10 MB) as the body to `uploadUrl`.")
class ProductImageUploadPayload:
    upload_url: str | None = strawberry.field(default=None, description="Signed, single use.")
    expires_at: datetime | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class ReorderProductImagesInput:
    product_id: strawberry.ID
    image_ids: list[strawberry.ID] = strawberry.field(description="Every image of the product, in the new order.")


@strawberry.input
class RemoveProductImageInput:
    id: strawberry.ID


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
    options: list[ProductOptionInput] = strawberry.field(
        default_factory=list, description="Colour, Size, …: what its variants differ by."
    )
    variants: list[ProductVariantInput] = strawberry.field(
        default_factory=list, description="None: one default variant with the product's SKU, price and stock."
    )
    weight_grams: int | None = strawberry.field(
        default=None, description="Without variants: the default variant's shipping weight (default 500 g)."
    )


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
    product_id: strawberry.ID | None = strawberry.field(default=None, description="Alone: its default variant.")
    variant_id: strawberry.ID | None = None
    delta: int = strawberry.field(description="Units to add (negative to remove); stock never goes below zero.")


@strawberry.federation.input(inaccessible=True)
class StockLineInput:
    product_id: strawberry.ID | None = None
    variant_id: strawberry.ID | None = strawberry.field(default=None, description="Wins over productId.")
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
    variant_id: strawberry.ID
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


async def _reloaded(info: CatalogInfo, product_id: uuid.UUID | None) -> Product | None:
    """The product as it is after a change (fresh loaders: nothing read before the change)."""
    info.context.reset_loaders()
    row = await info.context.loaders.product.load(product_id) if product_id else None
    return Product.from_row(row) if row else None


def _variant_spec(
    sku: str,
    options: list[SelectedOptionInput],
    price: Decimal | None,
    stock: int,
    active: bool,
    weight_grams: int | None = None,
) -> VariantSpec:
    chosen: dict[str, str] = {}
    for option in options:
        if option.name.strip().lower() in {k.lower() for k in chosen}:
            raise DomainError(Code.INVALID, "One value per option.", ["input", "options"])
        chosen[option.name] = option.value
    return VariantSpec(sku=sku, options=chosen, price=price, stock=stock, active=active, weight_grams=weight_grams)


def _ids_to_uuids(fields: dict[str, Any]) -> dict[str, Any]:
    if fields.get("category_id") is not None:
        category = parse_uuid(fields["category_id"])
        if category is None:
            raise DomainError(Code.NOT_FOUND, "No such category.", ["input", "categoryId"])
        fields["category_id"] = category
    return fields


@strawberry.type
class Mutation:
    @strawberry.mutation(directives=[ADMIN_ONLY], description="Administrators only.")
    async def create_category(self, info: CatalogInfo, input: CreateCategoryInput) -> CategoryPayload:
        async def perform(_: uuid.UUID) -> CategoryPayload:
            row = await info.context.catalog.create_category(input.slug, input.name, input.description)
            return CategoryPayload(category=Category.from_row(row))

        return await mutate(info, CategoryPayload, perform, allow=admin)

    @strawberry.mutation(directives=[ADMIN_ONLY], description="Administrators only.")
    async def create_product(self, info: CatalogInfo, input: CreateProductInput) -> ProductPayload:
        async def perform(_: uuid.UUID) -> ProductPayload:
            fields = _ids_to_uuids(sent_fields(input, PRODUCT_FIELDS))
            options = [OptionSpec(o.name, tuple(o.values)) for o in input.options]
            variants = [
                _variant_spec(v.sku, v.options, v.price, v.stock, v.active, v.weight_grams) for v in input.variants
            ]
            row = await info.context.catalog.create_product(
                fields, options, variants, default_weight=input.weight_grams
            )
            return ProductPayload(product=Product.from_row(row))

        return await mutate(info, ProductPayload, perform, allow=admin)

    @strawberry.mutation(directives=[ADMIN_ONLY], description="Administrators only. Fields left out stay as they are.")
    async def update_product(self, info: CatalogInfo, input: UpdateProductInput) -> ProductPayload:
        async def perform(_: uuid.UUID) -> ProductPayload:
            fields = _ids_to_uuids(sent_fields(input, UPDATABLE_PRODUCT_FIELDS))
            row = await info.context.catalog.update_product(parse_uuid(input.id), fields)
            return ProductPayload(product=Product.from_row(row))

        return await mutate(info, ProductPayload, perform, allow=admin)

    @strawberry.mutation(
        directives=[ADMIN_ONLY], description="Administrators only. Archived products are no longer sold or listed."
    )
    async def archive_product(self, info: CatalogInfo, input: ArchiveProductInput) -> ProductPayload:
        async def perform(_: uuid.UUID) -> ProductPayload:
            row = await info.context.catalog.update_product(parse_uuid(input.id), {"active": False})
            return ProductPayload(product=Product.from_row(row))

        return await mutate(info, ProductPayload, perform, allow=admin)

    @strawberry.mutation(directives=[ADMIN_ONLY], description="Administrators only.")
    async def adjust_stock(self, info: CatalogInfo, input: AdjustStockInput) -> ProductPayload:
        async def perform(_: uuid.UUID) -> ProductPayload:
            product_id = parse_uuid(input.product_id) if input.product_id is not None else None
            variant_id = parse_uuid(input.variant_id) if input.variant_id is not None else None
            if input.product_id is not None and product_id is None:
                raise DomainError(Code.PRODUCT_NOT_FOUND, "No such product.", ["input", "productId"])
            if input.variant_id is not None and variant_id is None:
                raise DomainError(Code.NOT_FOUND, "No such variant.", ["input", "variantId"])
            product, variant = await info.context.catalog.adjust_stock(product_id, input.delta, variant_id)
            return ProductPayload(product=Product.from_row(product), variant=ProductVariant.from_row(variant))

        return await mutate(info, ProductPayload, perform, allow=admin)

    @strawberry.mutation(
        directives=[ADMIN_ONLY], description="Administrators only. A signed URL to PUT one image of the product to."
    )
    async def create_product_image_upload(
        self, info: CatalogInfo, input: CreateProductImageUploadInput
    ) -> ProductImageUploadPayload:
        async def perform(_: uuid.UUID) -> ProductImageUploadPayload:
            variant_id = parse_uuid(input.variant_id) if input.variant_id is not None else None
            if input.variant_id is not None and variant_id is None:
                raise DomainError(Code.NOT_FOUND, "No such variant of this product.", ["input", "variantId"])
            url, expires = await info.context.media.grant_upload(
                parse_uuid(input.product_id), variant_id, input.alt_text
            )
            return ProductImageUploadPayload(upload_url=url, expires_at=datetime.fromtimestamp(expires, UTC))

        return await mutate(info, ProductImageUploadPayload, perform, allow=admin)

    @strawberry.mutation(directives=[ADMIN_ONLY], description="Administrators only.")
    async def reorder_product_images(self, info: CatalogInfo, input: ReorderProductImagesInput) -> ProductPayload:
        async def perform(_: uuid.UUID) -> ProductPayload:
            ids = [parse_uuid(i) for i in input.image_ids]
            if any(i is None for i in ids):
                raise DomainError(Code.INVALID, "Image ids are UUIDs.", ["input", "imageIds"])
            product_id = parse_uuid(input.product_id)
            await info.context.media.reorder(product_id, [i for i in ids if i is not None])
            return ProductPayload(product=await _reloaded(info, product_id))

        return await mutate(info, ProductPayload, perform, allow=admin)

    @strawberry.mutation(
        directives=[ADMIN_ONLY], description="Administrators only. Its original and renditions are deleted too."
    )
    async def remove_product_image(self, info: CatalogInfo, input: RemoveProductImageInput) -> ProductPayload:
        async def perform(_: uuid.UUID) -> ProductPayload:
            product_id = await info.context.media.remove(parse_uuid(input.id))
            return ProductPayload(product=await _reloaded(info, product_id))

        return await mutate(info, ProductPayload, perform, allow=admin)

    @strawberry.mutation(
        directives=[ADMIN_ONLY], description="Administrators only. Adds a variant (and any new option value)."
    )
    async def create_product_variant(
        self, info: CatalogInfo, input: CreateProductVariantInput
    ) -> ProductVariantPayload:
        async def perform(_: uuid.UUID) -> ProductVariantPayload:
            spec = _variant_spec(input.sku, input.options, input.price, input.stock, input.active, input.weight_grams)
            row = await info.context.variants.create(parse_uuid(input.product_id), spec)
            return ProductVariantPayload(variant=ProductVariant.from_row(row))

        return await mutate(info, ProductVariantPayload, perform, allow=admin)

    @strawberry.mutation(
        directives=[ADMIN_ONLY],
        description="Administrators only. Fields left out stay as they are; stock: adjustStock.",
    )
    async def update_product_variant(
        self, info: CatalogInfo, input: UpdateProductVariantInput
    ) -> ProductVariantPayload:
        async def perform(_: uuid.UUID) -> ProductVariantPayload:
            fields = sent_fields(input, ("sku", "price", "active", "weight_grams"))
            row = await info.context.variants.update(parse_uuid(input.id), fields)
            return ProductVariantPayload(variant=ProductVariant.from_row(row))

        return await mutate(info, ProductVariantPayload, perform, allow=admin)

    @strawberry.federation.mutation(inaccessible=True, description="Internal: the orders subgraph only.")
    async def reserve_stock(self, info: CatalogInfo, input: ReserveStockInput) -> ReserveStockPayload:
        async def perform(_: str) -> ReserveStockPayload:
            reservation_id = parse_uuid(input.reservation_id)
            if reservation_id is None:
                raise bad_input("reservationId must be a UUID.")
            lines: list[tuple[uuid.UUID | None, uuid.UUID | None, int]] = []
            for index, line in enumerate(input.lines):
                product_id = parse_uuid(line.product_id) if line.product_id is not None else None
                variant_id = parse_uuid(line.variant_id) if line.variant_id is not None else None
                if product_id is None and variant_id is None:
                    raise DomainError(
                        Code.PRODUCT_NOT_FOUND, "No such product.", ["input", "lines", str(index), "variantId"]
                    )
                lines.append((product_id, variant_id, line.quantity))
            reserved = await info.context.catalog.reserve(reservation_id, lines)
            return ReserveStockPayload(
                lines=[
                    ReservedLine(
                        product_id=strawberry.ID(str(r.product_id)),
                        variant_id=strawberry.ID(str(r.variant_id)),
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
    "ProductVariant": CacheHint(600),
    "ProductOption": INHERIT,
    "SelectedOption": INHERIT,
    "Image": INHERIT,
    "Query.productVariant": CacheHint(0),
    "Query.productSearch": CacheHint(60),
    "ProductSearchResult": INHERIT,
    "SearchFacet": INHERIT,
    "FacetValue": INHERIT,
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
    types=[Product, ProductVariant, Category],
    cache_hints=CACHE_HINTS,
)
