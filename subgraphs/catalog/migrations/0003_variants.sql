-- Products with variants: a product has options (Colour, Size, ...) and
-- variants, each with its own SKU, price, stock and option values. The
-- variant is what is sold: cart lines, order lines and stock reservations
-- point at it.
CREATE TABLE product_options (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    product_id  uuid NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 50),
    position    integer NOT NULL DEFAULT 0,
    "values"    text[] NOT NULL CHECK (cardinality("values") BETWEEN 1 AND 100),
    UNIQUE (product_id, name)
);

CREATE TABLE product_variants (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    product_id  uuid NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    sku         text NOT NULL UNIQUE CHECK (sku ~ '^[A-Z0-9][A-Z0-9_-]{0,63}$'),
    -- {"Colour": "Olive", "Size": "M"}: one value of each of the product's options.
    options     jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(options) = 'object'),
    price_minor bigint NOT NULL CHECK (price_minor >= 0),
    currency    char(3) NOT NULL,
    stock       integer NOT NULL CHECK (stock >= 0),
    active      boolean NOT NULL DEFAULT true,
    position    integer NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX product_variants_product_idx ON product_variants (product_id, position, id);
CREATE INDEX product_variants_options_idx ON product_variants USING gin (options jsonb_path_ops);

-- A product's price and stock are its variants' ("from" price: the cheapest
-- variant on sale; stock: the sum of the variants on sale), kept by the
-- database itself so listings, sorting and filters stay one-table queries.
CREATE FUNCTION product_variant_totals() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    pid uuid;
BEGIN
    IF TG_OP = 'DELETE' THEN
        pid := OLD.product_id;
    ELSE
        pid := NEW.product_id;
    END IF;
    UPDATE products p SET
        price_minor = COALESCE(
            (SELECT min(v.price_minor) FROM product_variants v WHERE v.product_id = pid AND v.active),
            (SELECT min(v.price_minor) FROM product_variants v WHERE v.product_id = pid),
            p.price_minor),
        stock = COALESCE((SELECT sum(v.stock) FROM product_variants v WHERE v.product_id = pid AND v.active), 0),
        updated_at = now()
    WHERE p.id = pid;
    IF TG_OP = 'UPDATE' AND OLD.product_id <> NEW.product_id THEN
        RAISE EXCEPTION 'a variant cannot move to another product';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER product_variants_totals
    AFTER INSERT OR UPDATE OR DELETE ON product_variants
    FOR EACH ROW EXECUTE FUNCTION product_variant_totals();

-- Every existing product becomes a product with one variant that keeps the
-- product's id and SKU, so lines and reservations that named the product name
-- its variant (cart and orders back-fill their variant ids the same way).
INSERT INTO product_variants (id, product_id, sku, price_minor, currency, stock, active, created_at, updated_at)
SELECT id, id, sku, price_minor, currency, stock, true, created_at, updated_at FROM products;
