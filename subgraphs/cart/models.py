"""Tables of the cart schema (SQLAlchemy Core; DDL lives in migrations/)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Integer, MetaData, Table, Text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from subgraphs.kit.db import created_at, uuid_pk

metadata = MetaData()

carts = Table(
    "carts",
    metadata,
    uuid_pk(),
    Column("user_id", UUID(as_uuid=True)),  # NULL: a guest cart
    created_at(),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # The checkout that holds this cart now (see migrations/0002_checkout_claim.sql).
    Column("checkout_id", UUID(as_uuid=True)),
    Column("checkout_started_at", DateTime(timezone=True)),
    # What the shopper chose for pricing (pricing/): destination, shipping method, discount code.
    Column("ship_country", Text),
    Column("ship_region", Text),
    Column("shipping_method_id", UUID(as_uuid=True)),
    Column("discount_code", Text),
    # A guest cart (user_id NULL) merged into an account's cart: dead from then on.
    Column("merged_into", UUID(as_uuid=True)),
    Column("merged_at", DateTime(timezone=True)),
)

cart_items = Table(
    "cart_items",
    metadata,
    uuid_pk(),
    Column("cart_id", UUID(as_uuid=True), nullable=False),
    Column("product_id", UUID(as_uuid=True), nullable=False),
    # What the line sells (migrations/0003_variant_lines.sql); product_id is its product.
    Column("variant_id", UUID(as_uuid=True), nullable=False),
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

# --- checkout economics (pricing/; see migrations/0003_pricing.sql) ---

shipping_zones = Table(
    "shipping_zones",
    metadata,
    uuid_pk(),
    Column("name", Text, nullable=False),
    Column("countries", ARRAY(Text), nullable=False),
    Column("regions", ARRAY(Text), nullable=False),
    created_at(),
)

shipping_methods = Table(
    "shipping_methods",
    metadata,
    uuid_pk(),
    Column("zone_id", UUID(as_uuid=True), nullable=False),
    Column("name", Text, nullable=False),
    Column("rate_type", Text, nullable=False),
    Column("flat_minor", BigInteger, nullable=False),
    Column("bands", JSONB, nullable=False),
    Column("min_days", Integer, nullable=False),
    Column("max_days", Integer, nullable=False),
    Column("active", Boolean, nullable=False),
    created_at(),
)

tax_rates = Table(
    "tax_rates",
    metadata,
    Column("country", Text, primary_key=True),
    Column("region", Text, primary_key=True),
    Column("rate_bp", Integer, nullable=False),
    Column("prices_include_tax", Boolean, nullable=False),
)

discounts = Table(
    "discounts",
    metadata,
    uuid_pk(),
    Column("code", Text),
    Column("title", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("value", BigInteger, nullable=False),
    Column("min_subtotal_minor", BigInteger, nullable=False),
    Column("starts_at", DateTime(timezone=True)),
    Column("ends_at", DateTime(timezone=True)),
    Column("usage_limit", Integer),
    Column("per_customer_limit", Integer),
    Column("used", Integer, nullable=False, server_default="0"),
    Column("active", Boolean, nullable=False),
    created_at(),
)

discount_redemptions = Table(
    "discount_redemptions",
    metadata,
    Column("discount_id", UUID(as_uuid=True), primary_key=True),
    Column("checkout_id", UUID(as_uuid=True), primary_key=True),
    Column("customer", Text, nullable=False),
    created_at(),
)
