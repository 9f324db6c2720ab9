"""Per-request dataloaders of the orders subgraph.

``User.orders`` for many users at once is one LATERAL query per distinct page
request, not one query per user.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, func, literal, select, tuple_
from sqlalchemy.dialects.postgresql import UUID, array
from sqlalchemy.ext.asyncio import AsyncConnection
from strawberry.dataloader import DataLoader

from subgraphs.kit.db import Database
from subgraphs.kit.loaders import in_keys, rows_by

from .models import order_items, orders


async def items_of_orders(db: Database | AsyncConnection, order_ids: Sequence[uuid.UUID]) -> list[list[Row[Any]]]:
    """The items of each order, in their positions: one query (the loader's and the event feed's)."""
    order = (order_items.c.order_id, order_items.c.position)
    return await rows_by(db, order_items, order_items.c.order_id, order_ids, many=True, order_by=order)


@dataclass(frozen=True)
class PageKey:
    """One user's page of orders: ``after`` is the decoded cursor (created_at, id)."""

    user_id: uuid.UUID
    limit: int
    after: tuple[datetime, uuid.UUID] | None
    status: str | None


@dataclass(frozen=True)
class OrderLine:
    """An order_items row read along with its order (the same attributes)."""

    id: uuid.UUID
    order_id: uuid.UUID
    position: int
    product_id: uuid.UUID
    sku: str
    name: str
    unit_price_minor: int
    quantity: int
    variant_id: uuid.UUID
    tax_minor: int = 0
    discount_minor: int = 0


class Loaders:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.order = DataLoader[uuid.UUID, Row[Any] | None](self._orders)
        self.items = DataLoader[uuid.UUID, list[Row[Any]]](self._items)
        self.page = DataLoader[PageKey, list[Row[Any]]](self._pages)
        self.count = DataLoader[tuple[uuid.UUID, str | None], int](self._counts)
        # Items read with their orders (``prime_items``): available without awaiting the loader.
        self.read_items: dict[uuid.UUID, list[Row[Any]]] = {}

    def prime_items(self, rows: Sequence[Any]) -> list[Any]:
        """Orders read with their items (a row per item, ``item_*`` columns; an order without any has
        one row with NULLs): the items go to the items loader; one row per order is returned, in order."""
        orders_seen: dict[uuid.UUID, Any] = {}
        lines: dict[uuid.UUID, list[Row[Any]]] = {}
        for row in rows:
            orders_seen.setdefault(row.id, row)
            found = lines.setdefault(row.id, [])
            if row.item_id is not None:
                line = OrderLine(
                    row.item_id,
                    row.id,
                    row.item_position,
                    row.item_product_id,
                    row.item_sku,
                    row.item_name,
                    row.item_unit_price_minor,
                    row.item_quantity,
                    row.item_variant_id,
                    row.item_tax_minor,
                    row.item_discount_minor,
                )
                found.append(cast(Row[Any], line))
        for order_id, items in lines.items():
            self.items.prime(order_id, items)
        self.read_items.update(lines)
        return list(orders_seen.values())

    async def _orders(self, ids: list[uuid.UUID]) -> list[Row[Any] | None]:
        return await rows_by(self.db, orders, orders.c.id, ids)

    async def _items(self, order_ids: list[uuid.UUID]) -> list[list[Row[Any]]]:
        return await items_of_orders(self.db, order_ids)

    async def _pages(self, keys: list[PageKey]) -> list[list[Row[Any]]]:
        groups: dict[tuple[Any, ...], list[uuid.UUID]] = defaultdict(list)
        for key in keys:
            groups[(key.limit, key.after, key.status)].append(key.user_id)
        found: dict[PageKey, list[Row[Any]]] = {}
        async with self.db.read() as conn:
            for (limit, after, status), user_ids in groups.items():
                ids = array(user_ids, type_=UUID(as_uuid=True))
                users = func.unnest(ids).table_valued("user_id").render_derived(name="u")
                page = select(orders).where(orders.c.user_id == users.c.user_id)
                if status is not None:
                    page = page.where(orders.c.status == status)
                if after is not None:
                    page = page.where(
                        tuple_(orders.c.created_at, orders.c.id) < tuple_(literal(after[0]), literal(after[1]))
                    )
                lateral = page.order_by(orders.c.created_at.desc(), orders.c.id.desc()).limit(limit).lateral("o")
                rows = (await conn.execute(select(lateral).select_from(users).join(lateral, literal(True)))).all()
                for user_id in user_ids:
                    found[PageKey(user_id, limit, after, status)] = []
                for row in rows:
                    found[PageKey(row.user_id, limit, after, status)].append(row)
        return [found[k] for k in keys]

    async def _counts(self, keys: list[tuple[uuid.UUID, str | None]]) -> list[int]:
        counts: dict[tuple[uuid.UUID, str | None], int] = {}
        async with self.db.read() as conn:
            for status in {s for _, s in keys}:
                user_ids = [u for u, s in keys if s == status]
                query = select(orders.c.user_id, func.count()).where(in_keys(orders.c.user_id, user_ids))
                if status is not None:
                    query = query.where(orders.c.status == status)
                for user_id, n in (await conn.execute(query.group_by(orders.c.user_id))).all():
                    counts[(user_id, status)] = n
        return [counts.get(k, 0) for k in keys]
