"""Tables of the payments schema (SQLAlchemy Core; DDL lives in migrations/)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Integer, MetaData, String, Table, Text
from sqlalchemy.dialects.postgresql import JSONB, UUID

from subgraphs.kit.consumer import positions_table
from subgraphs.kit.db import created_at, uuid_pk
from subgraphs.kit.outbox import outbox_table

metadata = MetaData()

payments = Table(
    "payments",
    metadata,
    uuid_pk(),
    Column("order_id", UUID(as_uuid=True), nullable=False),
    Column("order_number", Text, nullable=False),
    Column("user_id", UUID(as_uuid=True), nullable=False),
    Column("provider", Text, nullable=False),
    Column("provider_ref", Text),
    Column("client_secret", Text),
    Column("next_action_url", Text),
    Column("status", Text, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("captured_minor", BigInteger, nullable=False),
    Column("refunded_minor", BigInteger, nullable=False),
    Column("method_summary", Text),
    Column("failure_reason", Text),
    Column("order_cancelled", Boolean, nullable=False),
    created_at(),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("looked_at", DateTime(timezone=True)),  # the reconciler's last question to the provider
)

payment_history = Table(
    "payment_history",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("payment_id", UUID(as_uuid=True), nullable=False),
    Column("kind", Text, nullable=False),
    Column("amount_minor", BigInteger),
    Column("detail", Text),
    Column("at", DateTime(timezone=True), nullable=False),
)

provider_events = Table(
    "provider_events",
    metadata,
    Column("provider", Text, primary_key=True),
    Column("event_id", Text, primary_key=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
)

payment_actions = Table(
    "payment_actions",
    metadata,
    uuid_pk(),
    Column("payment_id", UUID(as_uuid=True), nullable=False),
    Column("kind", Text, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("status", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    created_at(),
    Column("done_at", DateTime(timezone=True)),
)

testpay_intents = Table(
    "testpay_intents",
    metadata,
    Column("id", Text, primary_key=True),
    Column("secret", Text, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", Text, nullable=False),
    Column("captured_minor", BigInteger, nullable=False),
    Column("refunded_minor", BigInteger, nullable=False),
    Column("card_brand", Text),
    Column("card_last4", Text),
    Column("failure", Text),
    created_at(),
)

testpay_requests = Table(
    "testpay_requests",
    metadata,
    Column("idempotency_key", Text, primary_key=True),
    Column("response", JSONB, nullable=False),
    created_at(),
)

stream_positions = positions_table(metadata)
outbox = outbox_table(metadata)
