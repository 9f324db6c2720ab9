-- The order saga: an order waits for its payment (PENDING_PAYMENT) until a
-- deadline, then becomes PAID or is cancelled and its stock released.
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
UPDATE orders SET status = 'PENDING_PAYMENT' WHERE status = 'PENDING';
UPDATE order_status_changes SET to_status = 'PENDING_PAYMENT' WHERE to_status = 'PENDING';
UPDATE order_status_changes SET from_status = 'PENDING_PAYMENT' WHERE from_status = 'PENDING';
ALTER TABLE orders ALTER COLUMN status SET DEFAULT 'PENDING_PAYMENT';
ALTER TABLE orders ADD CONSTRAINT orders_status_check
    CHECK (status IN ('PENDING_PAYMENT', 'PAID', 'SHIPPED', 'DELIVERED', 'CANCELLED'));
-- Unpaid by then: the reconciler cancels the order (payment_abandoned) and releases its stock.
ALTER TABLE orders ADD COLUMN payment_due_at timestamptz;
ALTER TABLE orders ADD COLUMN cancel_reason text;
ALTER TABLE orders ADD COLUMN refunded_minor bigint NOT NULL DEFAULT 0 CHECK (refunded_minor >= 0);
CREATE INDEX orders_payment_due_idx ON orders (payment_due_at) WHERE status = 'PENDING_PAYMENT';

-- How far this subgraph has read the payments stream (kit/consumer.py).
CREATE TABLE stream_positions (
    stream     text PRIMARY KEY,
    last_id    text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
