"""Per-request dataloaders of the cart subgraph (SQL and catalog lookups, batched)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Row
from strawberry.dataloader import DataLoader

from subgraphs.kit.db import Database
from subgraphs.kit.loaders import one_per_key, rows_by
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
        # Most users have their cart already: one autocommit read, and the upsert's transaction
        # (BEGIN, INSERT, SELECT, COMMIT) only when one is missing.
        found = await rows_by(self.db, carts, carts.c.user_id, user_ids)
        if None in found:
            async with self.db.transaction() as conn:
                rows = await ensure_carts(conn, user_ids)
            found = one_per_key(user_ids, rows, lambda r: r.user_id)
        # ensure_carts created any missing cart in this very transaction.
        assert all(r is not None for r in found), "a cart went missing right after its upsert"
        return [r for r in found if r is not None]

    async def _carts(self, ids: list[uuid.UUID]) -> list[Row[Any] | None]:
        return await rows_by(self.db, carts, carts.c.id, ids)

    async def _items(self, cart_ids: list[uuid.UUID]) -> list[list[Row[Any]]]:
        order = (cart_items.c.added_at, cart_items.c.id)
        return await rows_by(self.db, cart_items, cart_items.c.cart_id, cart_ids, many=True, order_by=order)

    async def _products(self, ids: list[uuid.UUID]) -> list[ProductInfo | None]:
        return await fetch_products(self.catalog, ids)
