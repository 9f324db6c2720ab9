"""Tables of the cart schema (SQLAlchemy Core; DDL lives in migrations/)."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Integer, MetaData, Table
from sqlalchemy.dialects.postgresql import UUID

from subgraphs.kit.db import created_at, uuid_pk

metadata = MetaData()

carts = Table(
    "carts",
    metadata,
    uuid_pk(),
    Column("user_id", UUID(as_uuid=True), nullable=False),
    created_at(),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # The checkout that holds this cart now (see migrations/0002_checkout_claim.sql).
    Column("checkout_id", UUID(as_uuid=True)),
    Column("checkout_started_at", DateTime(timezone=True)),
)

cart_items = Table(
    "cart_items",
    metadata,
    uuid_pk(),
    Column("cart_id", UUID(as_uuid=True), nullable=False),
    Column("product_id", UUID(as_uuid=True), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("added_at", DateTime(timezone=True), nullable=False),
)

completed_checkouts = Table(
    "completed_checkouts",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("cart_id", UUID(as_uuid=True), nullable=False),
    created_at(),
)
