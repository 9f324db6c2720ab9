"""Per-request dataloaders of the catalog subgraph.

``Category.products`` for many categories at once is one LATERAL query per distinct listing
(search, filters, sort, page size, cursor), and its ``totalCount`` one ``GROUP BY`` query per
distinct filter set, however many categories are listed.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Row
from strawberry.dataloader import DataLoader

from subgraphs.kit.db import Database
from subgraphs.kit.loaders import one_per_key, rows_by

from .models import categories, product_media, product_options, product_variants, products
from .service import ProductListing, ProductQuery, products_by

PRODUCTS_BY_ID = products_by(products.c.id)
PRODUCTS_BY_SKU = products_by(products.c.sku)
# Built once: rows_by caches its compiled statement by these expressions.
VARIANT_ORDER = (product_variants.c.position, product_variants.c.id)
OPTION_ORDER = (product_options.c.position, product_options.c.name)
MEDIA_ORDER = (product_media.c.position, product_media.c.id)


@dataclass(frozen=True)
class CategoryPageKey:
    """One page of one category's products: ``after`` is a cursor parsed by ``ProductListing.parse_cursor``."""

    category_id: uuid.UUID
    query: ProductQuery
    limit: int
    after: tuple[Any, uuid.UUID] | None


@dataclass(frozen=True)
class CategoryCountKey:
    category_id: uuid.UUID
    query: ProductQuery


class Loaders:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.product = DataLoader[uuid.UUID, Row[Any] | None](self._products)
        self.product_by_sku = DataLoader[str, Row[Any] | None](self._products_by_sku)
        self.category = DataLoader[uuid.UUID, Row[Any] | None](self._categories)
        self.category_page = DataLoader[CategoryPageKey, list[Row[Any]]](self._category_pages)
        self.category_count = DataLoader[CategoryCountKey, int](self._category_counts)
        self.variants_of = DataLoader[uuid.UUID, list[Row[Any]]](self._variants_of)
        self.options_of = DataLoader[uuid.UUID, list[Row[Any]]](self._options_of)
        self.variant = DataLoader[uuid.UUID, Row[Any] | None](self._variants)
        self.media_of = DataLoader[uuid.UUID, list[Row[Any]]](self._media_of)
        self.variant_by_sku = DataLoader[str, Row[Any] | None](self._variants_by_sku)

    async def _variants_of(self, product_ids: list[uuid.UUID]) -> list[list[Row[Any]]]:
        """Each product's variants in its order (one statement for any number of products)."""
        return await rows_by(
            self.db,
            product_variants,
            product_variants.c.product_id,
            product_ids,
            many=True,
            order_by=VARIANT_ORDER,
        )

    async def _options_of(self, product_ids: list[uuid.UUID]) -> list[list[Row[Any]]]:
        return await rows_by(
            self.db,
            product_options,
            product_options.c.product_id,
            product_ids,
            many=True,
            order_by=OPTION_ORDER,
        )

    async def _media_of(self, product_ids: list[uuid.UUID]) -> list[list[Row[Any]]]:
        """Each product's images in its order (one statement for any number of products)."""
        return await rows_by(
            self.db, product_media, product_media.c.product_id, product_ids, many=True, order_by=MEDIA_ORDER
        )

    async def _variants(self, ids: list[uuid.UUID]) -> list[Row[Any] | None]:
        return await rows_by(self.db, product_variants, product_variants.c.id, ids)

    async def _variants_by_sku(self, skus: list[str]) -> list[Row[Any] | None]:
        return await rows_by(self.db, product_variants, product_variants.c.sku, skus)

    async def _products(self, ids: list[uuid.UUID]) -> list[Row[Any] | None]:
        rows = await self.db.fetch(PRODUCTS_BY_ID, keys=ids)
        return cast(list[Row[Any] | None], one_per_key(ids, rows, lambda r: r.id))

    async def _products_by_sku(self, skus: list[str]) -> list[Row[Any] | None]:
        rows = await self.db.fetch(PRODUCTS_BY_SKU, keys=skus)
        return cast(list[Row[Any] | None], one_per_key(skus, rows, lambda r: r.sku))

    async def _categories(self, ids: list[uuid.UUID]) -> list[Row[Any] | None]:
        return await rows_by(self.db, categories, categories.c.id, ids)

    async def _category_pages(self, keys: list[CategoryPageKey]) -> list[list[Row[Any]]]:
        groups: dict[tuple[ProductQuery, int, tuple[Any, uuid.UUID] | None], list[uuid.UUID]] = defaultdict(list)
        for key in keys:
            groups[(key.query, key.limit, key.after)].append(key.category_id)
        found: dict[CategoryPageKey, list[Row[Any]]] = {k: [] for k in keys}
        async with self.db.read() as conn:
            for (query, limit, after), category_ids in groups.items():
                statement = ProductListing(query).pages(category_ids, limit, after)
                for row in (await conn.execute(statement)).all():
                    found[CategoryPageKey(row.category_id, query, limit, after)].append(row)
        return [found[k] for k in keys]

    async def _category_counts(self, keys: list[CategoryCountKey]) -> list[int]:
        groups: dict[ProductQuery, list[uuid.UUID]] = defaultdict(list)
        for key in keys:
            groups[key.query].append(key.category_id)
        counts: dict[CategoryCountKey, int] = {}
        async with self.db.read() as conn:
            for query, category_ids in groups.items():
                for row in (await conn.execute(ProductListing(query).counts(category_ids))).all():
                    counts[CategoryCountKey(row.category_id, query)] = row.total
        return [counts.get(k, 0) for k in keys]
