-- Checkout economics (subgraphs/cart/pricing): shipping zones and methods, tax
-- rates, discount codes and automatic promotions, and the redemptions that
-- count a code's uses. The cart keeps the shopper's destination, chosen
-- method and entered code; the order keeps what it was priced at.

CREATE TABLE shipping_zones (
    id        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name      text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- ISO country codes ('*' matches every country); regions narrow a zone to
    -- some of a country's regions (empty: the whole country).
    countries text[] NOT NULL CHECK (cardinality(countries) BETWEEN 1 AND 300),
    regions   text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE shipping_methods (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    zone_id    uuid NOT NULL REFERENCES shipping_zones (id) ON DELETE CASCADE,
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- FLAT: flat_minor; BY_SUBTOTAL / BY_WEIGHT: the first band whose upTo the
    -- cart's subtotal (minor units) or weight (grams) is below; none: unavailable.
    rate_type  text NOT NULL CHECK (rate_type IN ('FLAT', 'BY_SUBTOTAL', 'BY_WEIGHT')),
    flat_minor bigint NOT NULL DEFAULT 0 CHECK (flat_minor >= 0),
    bands      jsonb NOT NULL DEFAULT '[]',
    min_days   integer NOT NULL CHECK (min_days >= 0),
    max_days   integer NOT NULL CHECK (max_days >= min_days),
    active     boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX shipping_methods_zone_idx ON shipping_methods (zone_id);

CREATE TABLE tax_rates (
    country    text NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
    -- '' is the whole country; a region's own rate wins over it.
    region     text NOT NULL DEFAULT '',
    -- Basis points: 2000 is 20 %.
    rate_bp    integer NOT NULL CHECK (rate_bp BETWEEN 0 AND 10000),
    -- Catalog prices shown to shoppers of this region already include the tax.
    prices_include_tax boolean NOT NULL DEFAULT false,
    PRIMARY KEY (country, region)
);

CREATE TABLE discounts (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- NULL for an automatic promotion (applies without a code); codes are kept upper-case.
    code        text UNIQUE CHECK (code ~ '^[A-Z0-9_-]{3,40}$'),
    title       text NOT NULL CHECK (length(title) BETWEEN 1 AND 100),
    kind        text NOT NULL CHECK (kind IN ('PERCENTAGE', 'FIXED_AMOUNT', 'FREE_SHIPPING')),
    -- PERCENTAGE: basis points of the subtotal (1000 = 10 %); FIXED_AMOUNT: minor units.
    value       bigint NOT NULL DEFAULT 0 CHECK (value >= 0),
    min_subtotal_minor bigint NOT NULL DEFAULT 0 CHECK (min_subtotal_minor >= 0),
    starts_at   timestamptz,
    ends_at     timestamptz,
    usage_limit integer CHECK (usage_limit > 0),
    per_customer_limit integer CHECK (per_customer_limit > 0),
    -- Uses counted (one per redemption row below), never past usage_limit.
    used        integer NOT NULL DEFAULT 0 CHECK (used >= 0 AND (usage_limit IS NULL OR used <= usage_limit)),
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (kind <> 'PERCENTAGE' OR value <= 10000),
    CHECK (starts_at IS NULL OR ends_at IS NULL OR starts_at < ends_at)
);
CREATE INDEX discounts_automatic_idx ON discounts (active) WHERE code IS NULL;

-- One row per use of a limited discount: written when an order is priced, in
-- one statement with the discount's counter (so a code with one use left is used
-- once however many race), removed if that checkout fails. One checkout uses a
-- discount once, however often it is retried.
CREATE TABLE discount_redemptions (
    discount_id uuid NOT NULL REFERENCES discounts (id) ON DELETE CASCADE,
    checkout_id uuid NOT NULL,
    -- The customer: a user id, or for a guest the lower-cased e-mail address.
    customer    text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (discount_id, checkout_id)
);
CREATE INDEX discount_redemptions_customer_idx ON discount_redemptions (discount_id, customer);
CREATE INDEX discount_redemptions_checkout_idx ON discount_redemptions (checkout_id);

ALTER TABLE carts ADD COLUMN ship_country text;
ALTER TABLE carts ADD COLUMN ship_region text;
ALTER TABLE carts ADD COLUMN shipping_method_id uuid;
ALTER TABLE carts ADD COLUMN discount_code text;
