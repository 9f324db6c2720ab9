"""Per-request dataloaders of the cart subgraph (SQL and catalog lookups, batched)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from strawberry.dataloader import DataLoader

from subgraphs.kit.db import Database, Read
from subgraphs.kit.loaders import one_per_key, rows_by
from subgraphs.kit.service_client import ServiceClient

from .catalog_client import ProductInfo, fetch_default_variants, fetch_products
from .models import cart_items, carts
from .pricing.quote import CartState, Quote, lines_of, quote_carts
from .service import ensure_carts

# A cart to price: its id and what pricing reads from its row.
QuoteKey = tuple[uuid.UUID, CartState]


@dataclass(frozen=True)
class CartLine:
    """A cart_items row read along with its cart (the same attributes)."""

    id: uuid.UUID
    cart_id: uuid.UUID
    product_id: uuid.UUID
    variant_id: uuid.UUID
    quantity: int
    added_at: datetime


# Users' carts with their items (a row per item, or one with NULL items), items in cart order.
CARTS_WITH_ITEMS = Read(
    select(
        carts,
        cart_items.c.id.label("item_id"),
        cart_items.c.product_id.label("item_product_id"),
        cart_items.c.variant_id.label("item_variant_id"),
        cart_items.c.quantity.label("item_quantity"),
        cart_items.c.added_at.label("item_added_at"),
    )
    .select_from(carts.outerjoin(cart_items, cart_items.c.cart_id == carts.c.id))
    .where(carts.c.user_id == func.any(bindparam("keys", type_=ARRAY(carts.c.user_id.type))))
    .order_by(cart_items.c.added_at, cart_items.c.id)
)


class Loaders:
    def __init__(self, db: Database, catalog: ServiceClient, currency: str) -> None:
        self.db = db
        self.currency = currency
        self.catalog = catalog
        self.cart_of_user = DataLoader[uuid.UUID, Row[Any]](self._carts_of_users)
        self.cart = DataLoader[uuid.UUID, Row[Any] | None](self._carts)
        self.items = DataLoader[uuid.UUID, list[Row[Any]]](self._items)
        # Keyed by variant id (a line's ``variant_id``): what the line sells, priced now.
        self.product = DataLoader[uuid.UUID, ProductInfo | None](self._products)
        self.default_variant = DataLoader[uuid.UUID, uuid.UUID | None](self._default_variants)
        self.quote = DataLoader[QuoteKey, Quote](self._quotes)

    async def _carts_of_users(self, user_ids: list[uuid.UUID]) -> list[Row[Any]]:
        # Most users have their cart already: one autocommit read (which brings the carts' items
        # too, for the items loader), and the upsert's transaction (BEGIN, INSERT, SELECT, COMMIT)
        # only when one is missing.
        joined = await self.db.fetch(CARTS_WITH_ITEMS, keys=user_ids)
        items: dict[uuid.UUID, list[Row[Any]]] = {}
        for row in joined:
            lines = items.setdefault(row.id, [])
            if row.item_id is not None:
                line = CartLine(
                    row.item_id,
                    row.id,
                    row.item_product_id,
                    row.item_variant_id,
                    row.item_quantity,
                    row.item_added_at,
                )
                lines.append(cast(Row[Any], line))
        for cart_id, lines in items.items():
            self.items.prime(cart_id, lines)
        found = one_per_key(user_ids, [cast(Row[Any], row) for row in joined], lambda r: r.user_id)
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

    async def _products(self, variant_ids: list[uuid.UUID]) -> list[ProductInfo | None]:
        return await fetch_products(self.catalog, variant_ids)

    async def _default_variants(self, product_ids: list[uuid.UUID]) -> list[uuid.UUID | None]:
        return await fetch_default_variants(self.catalog, product_ids)

    async def _quotes(self, keys: list[QuoteKey]) -> list[Quote]:
        # The carts' lines and products through their own loaders (no statement more), then the rules
        # once for every cart: a fixed number of statements, whatever the number of carts and lines.
        items = await self.items.load_many([cart_id for cart_id, _ in keys])
        products = await self.product.load_many([r.variant_id for rows in items for r in rows])
        at = 0
        batch = []
        for (_, state), rows in zip(keys, items, strict=True):
            found = products[at : at + len(rows)]
            at += len(rows)
            batch.append((state, lines_of([(r.variant_id, r.quantity) for r in rows], found)))
        return await quote_carts(self.db, batch, self.currency)
