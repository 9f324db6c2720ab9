-- Change events for caches (product price/name/stock/active changed, category
-- changed): written in the same transaction as the change, relayed to the
-- catalog:events Redis Stream, read by every router's entity cache.
CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    event_type   text NOT NULL,
    aggregate_id uuid NOT NULL,
    payload      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;
