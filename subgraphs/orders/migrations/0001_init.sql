-- Human-readable order numbers: SG-100001, SG-100002, ...
CREATE SEQUENCE order_numbers START 100001;

CREATE TABLE orders (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    number           bigint NOT NULL UNIQUE DEFAULT nextval('order_numbers'),
    user_id          uuid NOT NULL,
    status           text NOT NULL DEFAULT 'PENDING'
                     CHECK (status IN ('PENDING', 'PAID', 'SHIPPED', 'DELIVERED', 'CANCELLED')),
    idempotency_key  text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    -- The catalog reservation that holds this order's stock (released on cancel).
    reservation_id   uuid NOT NULL UNIQUE,
    currency         char(3) NOT NULL,
    subtotal_minor   bigint NOT NULL CHECK (subtotal_minor >= 0),
    shipping_minor   bigint NOT NULL DEFAULT 0 CHECK (shipping_minor >= 0),
    total_minor      bigint NOT NULL CHECK (total_minor >= 0),
    shipping_address jsonb NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    -- The same key from the same shopper is the same checkout.
    UNIQUE (user_id, idempotency_key)
);
CREATE INDEX orders_user_idx ON orders (user_id, created_at DESC, id DESC);
CREATE INDEX orders_created_idx ON orders (created_at DESC, id DESC);

CREATE TABLE order_items (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id         uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    position         integer NOT NULL,
    product_id       uuid NOT NULL,
    -- Snapshots taken at checkout: later catalog changes do not rewrite history.
    sku              text NOT NULL,
    name             text NOT NULL,
    unit_price_minor bigint NOT NULL CHECK (unit_price_minor >= 0),
    quantity         integer NOT NULL CHECK (quantity > 0),
    UNIQUE (order_id, position)
);

CREATE TABLE order_status_changes (
    id          bigserial PRIMARY KEY,
    order_id    uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    from_status text,
    to_status   text NOT NULL,
    changed_by  uuid,
    changed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_status_changes_order_idx ON order_status_changes (order_id, id);

-- Transactional outbox: every order change writes its event here in the same
-- transaction; a relay publishes rows in id order and marks them sent.
CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    event_type   text NOT NULL,
    aggregate_id uuid NOT NULL,
    payload      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;
