"""Per-request dataloaders of the users subgraph."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Row
from strawberry.dataloader import DataLoader

from subgraphs.kit.db import Database
from subgraphs.kit.loaders import rows_by

from .models import addresses, users

# Built once: the compiled reads are cached by these expressions, which compare by identity.
ADDRESS_ORDER = (addresses.c.is_default.desc(), addresses.c.created_at)


class Loaders:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.user = DataLoader[uuid.UUID, Row[Any] | None](self._users)
        self.addresses = DataLoader[uuid.UUID, list[Row[Any]]](self._addresses)

    async def _users(self, ids: list[uuid.UUID]) -> list[Row[Any] | None]:
        return await rows_by(self.db, users, users.c.id, ids)

    async def _addresses(self, user_ids: list[uuid.UUID]) -> list[list[Row[Any]]]:
        return await rows_by(self.db, addresses, addresses.c.user_id, user_ids, many=True, order_by=ADDRESS_ORDER)
