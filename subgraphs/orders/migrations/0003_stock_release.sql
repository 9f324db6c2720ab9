-- Stock that catalog holds for orders must always be given back when no order
-- keeps it, even across crashes and catalog outages.

-- A checkout notes its reservation here BEFORE asking catalog for the stock and
-- deletes the row in the transaction that writes the order. A row that outlives
-- its checkout (the process died, the request was cancelled, the order could not
-- be written) is swept: the reservation released, then the row deleted.
-- created_at is when the latest attempt with this reservation started (a retry
-- refreshes it); released_at is set when a failed attempt gave the stock back
-- early, so a concurrent attempt about to write its order knows to reserve again.
CREATE TABLE pending_checkouts (
    reservation_id  uuid PRIMARY KEY,
    user_id         uuid NOT NULL,
    idempotency_key text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    released_at     timestamptz
);
CREATE INDEX pending_checkouts_created_idx ON pending_checkouts (created_at);

-- A cancel commits first and releases the stock after; until catalog confirms,
-- stock_released_at stays NULL and the sweeper keeps trying. Orders cancelled
-- before this migration released their stock inside the cancel.
ALTER TABLE orders ADD COLUMN stock_released_at timestamptz;
UPDATE orders SET stock_released_at = updated_at WHERE status = 'CANCELLED';
CREATE INDEX orders_stock_to_release_idx ON orders (updated_at)
    WHERE status = 'CANCELLED' AND stock_released_at IS NULL;
