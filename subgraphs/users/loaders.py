"""Per-request dataloaders of the users subgraph."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Row, select
from strawberry.dataloader import DataLoader

from subgraphs.kit.db import Database
from subgraphs.kit.loaders import many_per_key, one_per_key

from .models import addresses, users


class Loaders:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.user = DataLoader[uuid.UUID, Row[Any] | None](self._users)
        self.addresses = DataLoader[uuid.UUID, list[Row[Any]]](self._addresses)

    async def _users(self, ids: list[uuid.UUID]) -> list[Row[Any] | None]:
        async with self.db.read() as conn:
            rows = (await conn.execute(select(users).where(users.c.id.in_(ids)))).all()
        return one_per_key(ids, rows, lambda r: r.id)

    async def _addresses(self, user_ids: list[uuid.UUID]) -> list[list[Row[Any]]]:
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(addresses)
                    .where(addresses.c.user_id.in_(user_ids))
                    .order_by(addresses.c.is_default.desc(), addresses.c.created_at)
                )
            ).all()
        return many_per_key(user_ids, rows, lambda r: r.user_id)
