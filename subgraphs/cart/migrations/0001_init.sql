CREATE TABLE carts (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- One cart per signed-in user.
    user_id    uuid NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cart_items (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    cart_id    uuid NOT NULL REFERENCES carts (id) ON DELETE CASCADE,
    product_id uuid NOT NULL,
    quantity   integer NOT NULL CHECK (quantity BETWEEN 1 AND 99),
    added_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (cart_id, product_id)
);

-- Checkouts already taken out of a cart, so a retried checkout removes its
-- lines only once.
CREATE TABLE completed_checkouts (
    id         uuid PRIMARY KEY,
    cart_id    uuid NOT NULL REFERENCES carts (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now()
);
