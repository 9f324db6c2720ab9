-- The priced breakdown an order was placed at (cart's pricing: shipping, tax,
-- discounts), kept as stored columns: later price or rule changes do not
-- rewrite it. Orders placed before have no discounts or tax (the defaults).
ALTER TABLE orders ADD COLUMN discounts_minor bigint NOT NULL DEFAULT 0 CHECK (discounts_minor >= 0);
ALTER TABLE orders ADD COLUMN tax_minor bigint NOT NULL DEFAULT 0 CHECK (tax_minor >= 0);
ALTER TABLE orders ADD COLUMN tax_included boolean NOT NULL DEFAULT false;
-- "Standard (2-4 days)": the method's name and estimate as the shopper chose it.
ALTER TABLE orders ADD COLUMN shipping_method text;
ALTER TABLE orders ADD COLUMN discount_codes text[] NOT NULL DEFAULT '{}';
ALTER TABLE order_items ADD COLUMN tax_minor bigint NOT NULL DEFAULT 0 CHECK (tax_minor >= 0);
ALTER TABLE order_items ADD COLUMN discount_minor bigint NOT NULL DEFAULT 0 CHECK (discount_minor >= 0);
