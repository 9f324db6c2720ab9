"""Tables of the orders schema (SQLAlchemy Core; DDL lives in migrations/)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Integer, MetaData, String, Table, Text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from subgraphs.kit.consumer import positions_table
from subgraphs.kit.db import created_at, uuid_pk
from subgraphs.kit.outbox import outbox_table

metadata = MetaData()

orders = Table(
    "orders",
    metadata,
    uuid_pk(),
    Column("number", BigInteger, nullable=False),
    Column("user_id", UUID(as_uuid=True), nullable=False),
    Column("status", Text, nullable=False),
    Column("idempotency_key", Text, nullable=False),
    Column("reservation_id", UUID(as_uuid=True), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("subtotal_minor", BigInteger, nullable=False),
    Column("shipping_minor", BigInteger, nullable=False),
    Column("total_minor", BigInteger, nullable=False),
    Column("shipping_address", JSONB, nullable=False),
    # The priced breakdown as placed (migrations/0004_priced_orders.sql).
    Column("discounts_minor", BigInteger, nullable=False, server_default="0"),
    Column("tax_minor", BigInteger, nullable=False, server_default="0"),
    Column("tax_included", Boolean, nullable=False, server_default="false"),
    Column("shipping_method", Text),
    Column("discount_codes", ARRAY(Text), nullable=False, server_default="{}"),
    created_at(),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Set once catalog has taken back a cancelled order's stock (NULL: the sweeper retries).
    Column("stock_released_at", DateTime(timezone=True)),
    # The order saga (migrations/0004): when an unpaid order is given up, why a cancel happened,
    # what the payment has refunded.
    Column("payment_due_at", DateTime(timezone=True)),
    Column("cancel_reason", Text),
    Column("refunded_minor", BigInteger, nullable=False),
    # Guest checkout (migrations/0005): the address a guest ordered with, and when an account claimed it.
    Column("guest_email", Text),
    Column("claimed_at", DateTime(timezone=True)),
)

order_items = Table(
    "order_items",
    metadata,
    uuid_pk(),
    Column("order_id", UUID(as_uuid=True), nullable=False),
    Column("position", Integer, nullable=False),
    Column("product_id", UUID(as_uuid=True), nullable=False),
    # The variant bought (migrations/0004_variant_lines.sql); product_id is its product.
    Column("variant_id", UUID(as_uuid=True), nullable=False),
    Column("sku", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("unit_price_minor", BigInteger, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("tax_minor", BigInteger, nullable=False, server_default="0"),
    Column("discount_minor", BigInteger, nullable=False, server_default="0"),
)

order_status_changes = Table(
    "order_status_changes",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("order_id", UUID(as_uuid=True), nullable=False),
    Column("from_status", Text),
    Column("to_status", Text, nullable=False),
    Column("changed_by", UUID(as_uuid=True)),
    Column("changed_at", DateTime(timezone=True), nullable=False),
)

# Checkouts between "about to reserve stock" and "order written" (see migrations/0003).
pending_checkouts = Table(
    "pending_checkouts",
    metadata,
    Column("reservation_id", UUID(as_uuid=True), primary_key=True),
    Column("user_id", UUID(as_uuid=True), nullable=False),
    Column("idempotency_key", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("released_at", DateTime(timezone=True)),
)

outbox = outbox_table(metadata)
stream_positions = positions_table(metadata)
