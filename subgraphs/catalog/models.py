"""Tables of the catalog schema (SQLAlchemy Core; DDL lives in migrations/)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Integer, MetaData, String, Table, Text
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR, UUID

from subgraphs.kit.db import created_at, uuid_pk
from subgraphs.kit.outbox import outbox_table

metadata = MetaData()

categories = Table(
    "categories",
    metadata,
    uuid_pk(),
    Column("slug", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("description", Text),
    created_at(),
)

products = Table(
    "products",
    metadata,
    uuid_pk(),
    Column("sku", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("price_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("stock", Integer, nullable=False),
    Column("image_url", Text),
    Column("active", Boolean, nullable=False),
    Column("category_id", UUID(as_uuid=True)),
    created_at(),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("search", TSVECTOR),
)

stock_reservations = Table(
    "stock_reservations",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("lines", JSONB, nullable=False),
    created_at(),
    Column("released_at", DateTime(timezone=True)),
)

# Change events for the routers' entity caches (see events.py).
outbox = outbox_table(metadata)
