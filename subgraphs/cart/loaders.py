"""Per-request dataloaders of the cart subgraph (SQL and catalog lookups, batched)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Row, select
from strawberry.dataloader import DataLoader

from subgraphs.kit.db import Database
from subgraphs.kit.loaders import many_per_key, one_per_key
from subgraphs.kit.service_client import ServiceClient

from .catalog_client import ProductInfo, fetch_products
from .models import cart_items, carts
from .service import ensure_carts


class Loaders:
    def __init__(self, db: Database, catalog: ServiceClient) -> None:
        self.db = db
        self.catalog = catalog
        self.cart_of_user = DataLoader[uuid.UUID, Row[Any]](self._carts_of_users)
        self.cart = DataLoader[uuid.UUID, Row[Any] | None](self._carts)
        self.items = DataLoader[uuid.UUID, list[Row[Any]]](self._items)
        self.product = DataLoader[uuid.UUID, ProductInfo | None](self._products)

    async def _carts_of_users(self, user_ids: list[uuid.UUID]) -> list[Row[Any]]:
        async with self.db.transaction() as conn:
            rows = await ensure_carts(conn, user_ids)
        found = one_per_key(user_ids, rows, lambda r: r.user_id)
        return [r for r in found if r is not None]

    async def _carts(self, ids: list[uuid.UUID]) -> list[Row[Any] | None]:
        async with self.db.read() as conn:
            rows = (await conn.execute(select(carts).where(carts.c.id.in_(ids)))).all()
        return one_per_key(ids, rows, lambda r: r.id)

    async def _items(self, cart_ids: list[uuid.UUID]) -> list[list[Row[Any]]]:
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(cart_items)
                    .where(cart_items.c.cart_id.in_(cart_ids))
                    .order_by(cart_items.c.added_at, cart_items.c.id)
                )
            ).all()
        return many_per_key(cart_ids, rows, lambda r: r.cart_id)

    async def _products(self, ids: list[uuid.UUID]) -> list[ProductInfo | None]:
        return await fetch_products(self.catalog, ids)
