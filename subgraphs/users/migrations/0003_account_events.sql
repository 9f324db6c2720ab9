-- Account events (kit/outbox.py): written in the transaction of the change, relayed
-- to the <prefix>users:events Redis Stream; the notifications worker turns
-- account.password_reset_requested into the reset mail. It replaces mail_outbox:
-- users no longer holds mail; the worker renders and sends it.
CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    event_type   text NOT NULL,
    aggregate_id uuid NOT NULL,
    payload      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;

DROP TABLE mail_outbox;

-- The shopper's choice for non-transactional mail (shipping and delivery updates).
-- Order confirmations, payment and cancellation notices and resets are always sent.
ALTER TABLE users ADD COLUMN order_update_emails boolean NOT NULL DEFAULT true;
