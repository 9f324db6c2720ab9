"""Per-request dataloaders of the catalog subgraph."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Row, select
from strawberry.dataloader import DataLoader

from subgraphs.kit.db import Database
from subgraphs.kit.loaders import one_per_key

from .models import categories, products


class Loaders:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.product = DataLoader[uuid.UUID, Row[Any] | None](self._products)
        self.product_by_sku = DataLoader[str, Row[Any] | None](self._products_by_sku)
        self.category = DataLoader[uuid.UUID, Row[Any] | None](self._categories)

    async def _products(self, ids: list[uuid.UUID]) -> list[Row[Any] | None]:
        async with self.db.read() as conn:
            rows = (await conn.execute(select(products).where(products.c.id.in_(ids)))).all()
        return one_per_key(ids, rows, lambda r: r.id)

    async def _products_by_sku(self, skus: list[str]) -> list[Row[Any] | None]:
        async with self.db.read() as conn:
            rows = (await conn.execute(select(products).where(products.c.sku.in_(skus)))).all()
        return one_per_key(skus, rows, lambda r: r.sku)

    async def _categories(self, ids: list[uuid.UUID]) -> list[Row[Any] | None]:
        async with self.db.read() as conn:
            rows = (await conn.execute(select(categories).where(categories.c.id.in_(ids)))).all()
        return one_per_key(ids, rows, lambda r: r.id)
