"""Per-request dataloaders of the payments subgraph (one query per batch)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Row, select
from strawberry.dataloader import DataLoader

from subgraphs.kit.db import Database
from subgraphs.kit.loaders import in_keys, many_per_key, one_per_key

from .models import payment_history, payments


class Loaders:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.by_order: DataLoader[uuid.UUID, Row[Any] | None] = DataLoader(self._by_order)
        self.by_id: DataLoader[uuid.UUID, Row[Any] | None] = DataLoader(self._by_id)
        self.history: DataLoader[uuid.UUID, list[Row[Any]]] = DataLoader(self._history)

    async def _by_order(self, keys: list[uuid.UUID]) -> list[Row[Any] | None]:
        async with self.db.read() as conn:
            rows = (await conn.execute(select(payments).where(in_keys(payments.c.order_id, keys)))).all()
        return one_per_key(keys, rows, lambda r: r.order_id)

    async def _by_id(self, keys: list[uuid.UUID]) -> list[Row[Any] | None]:
        async with self.db.read() as conn:
            rows = (await conn.execute(select(payments).where(in_keys(payments.c.id, keys)))).all()
        return one_per_key(keys, rows, lambda r: r.id)

    async def _history(self, keys: list[uuid.UUID]) -> list[list[Row[Any]]]:
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(payment_history)
                    .where(in_keys(payment_history.c.payment_id, keys))
                    .order_by(payment_history.c.id)
                )
            ).all()
        return many_per_key(keys, rows, lambda r: r.payment_id)
