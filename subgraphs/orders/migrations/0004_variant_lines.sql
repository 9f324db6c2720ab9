-- Order lines point at the variant bought (the product stays on the line too).
-- Lines from before variants name a product whose only variant shares its id
-- (catalog migration 0003_variants), so the variant id is the product id.
ALTER TABLE order_items ADD COLUMN variant_id uuid;
UPDATE order_items SET variant_id = product_id;
ALTER TABLE order_items ALTER COLUMN variant_id SET NOT NULL;
