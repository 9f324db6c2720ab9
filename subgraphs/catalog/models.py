"""Tables of the catalog schema (SQLAlchemy Core; DDL lives in migrations/)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Integer, MetaData, String, Table, Text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR, UUID

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

product_options = Table(
    "product_options",
    metadata,
    uuid_pk(),
    Column("product_id", UUID(as_uuid=True), nullable=False),
    Column("name", Text, nullable=False),
    Column("position", Integer, nullable=False),
    Column("values", ARRAY(Text), nullable=False),
)

# What is sold: cart lines, order lines and reservations point at a variant. A product's own
# price_minor and stock are kept from its variants by a trigger (migrations/0003_variants.sql).
product_variants = Table(
    "product_variants",
    metadata,
    uuid_pk(),
    Column("product_id", UUID(as_uuid=True), nullable=False),
    Column("sku", Text, nullable=False),
    Column("options", JSONB, nullable=False),
    Column("price_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("stock", Integer, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("position", Integer, nullable=False),
    created_at(),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # What BY_WEIGHT shipping rates weigh (migrations/0006_variant_weights.sql).
    Column("weight_grams", Integer, nullable=False, server_default="500"),
)

# Images of products (and of one variant): see migrations/0004_media.sql and media.py.
product_media = Table(
    "product_media",
    metadata,
    uuid_pk(),
    Column("product_id", UUID(as_uuid=True), nullable=False),
    Column("variant_id", UUID(as_uuid=True)),
    Column("position", Integer, nullable=False),
    Column("alt_text", Text, nullable=False),
    Column("storage_key", Text),
    Column("demo", JSONB),
    Column("content_type", Text, nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    created_at(),
)

media_uploads = Table(
    "media_uploads",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("used_at", DateTime(timezone=True), nullable=False),
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
