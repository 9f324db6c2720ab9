"""Tables of the users schema (SQLAlchemy Core; DDL lives in migrations/)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, LargeBinary, MetaData, String, Table, Text
from sqlalchemy.dialects.postgresql import JSONB, UUID

from subgraphs.kit.db import created_at, uuid_pk
from subgraphs.kit.outbox import outbox_table

metadata = MetaData()

users = Table(
    "users",
    metadata,
    uuid_pk(),
    Column("email", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("role", Text, nullable=False),
    created_at(),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("sessions_valid_after", DateTime(timezone=True), nullable=False),
    # Shipping and delivery mail wanted (non-transactional; see migrations/0003).
    Column("order_update_emails", Boolean, nullable=False),
)

addresses = Table(
    "addresses",
    metadata,
    uuid_pk(),
    Column("user_id", UUID(as_uuid=True), nullable=False),
    Column("name", Text, nullable=False),
    Column("line1", Text, nullable=False),
    Column("line2", Text),
    Column("city", Text, nullable=False),
    Column("region", Text),
    Column("postal_code", Text, nullable=False),
    Column("country", String(2), nullable=False),
    Column("phone", Text),
    Column("is_default", Boolean, nullable=False),
    created_at(),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    uuid_pk(),
    Column("user_id", UUID(as_uuid=True), nullable=False),
    Column("family_id", UUID(as_uuid=True), nullable=False),
    Column("secret_hash", LargeBinary, nullable=False),
    created_at(),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", Text, primary_key=True),
    Column("private_pem", Text, nullable=False),
    Column("public_jwk", JSONB, nullable=False),
    created_at(),
    Column("retired_at", DateTime(timezone=True)),
)

password_resets = Table(
    "password_resets",
    metadata,
    uuid_pk(),
    Column("user_id", UUID(as_uuid=True), nullable=False),
    Column("token_hash", LargeBinary, nullable=False),
    created_at(),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True)),
)

# Account events, relayed to <prefix>users:events (see events.py).
outbox = outbox_table(metadata)
