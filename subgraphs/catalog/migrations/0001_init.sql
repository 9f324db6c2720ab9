CREATE TABLE categories (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    description text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE products (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    sku         text NOT NULL UNIQUE CHECK (sku ~ '^[A-Z0-9][A-Z0-9_-]{0,63}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description text NOT NULL DEFAULT '',
    -- Money as integer minor units, never floats.
    price_minor bigint NOT NULL CHECK (price_minor >= 0),
    currency    char(3) NOT NULL,
    -- The database itself refuses negative stock, whatever the code does.
    stock       integer NOT NULL CHECK (stock >= 0),
    image_url   text,
    active      boolean NOT NULL DEFAULT true,
    category_id uuid REFERENCES categories (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    search      tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', name), 'A')
        || setweight(to_tsvector('english', description), 'B')
        || setweight(to_tsvector('simple', sku), 'A')
    ) STORED
);
CREATE INDEX products_search_idx ON products USING gin (search);
CREATE INDEX products_category_idx ON products (category_id);
-- Keyset pagination: one index per sort order (with the id tie-breaker).
CREATE INDEX products_price_idx ON products (price_minor, id);
CREATE INDEX products_name_idx ON products (name, id);
CREATE INDEX products_newest_idx ON products (created_at, id);

-- Stock held for an order, keyed by the id the orders subgraph chose, so a
-- retried reservation (same id) never takes stock twice.
CREATE TABLE stock_reservations (
    id          uuid PRIMARY KEY,
    lines       jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    released_at timestamptz
);
