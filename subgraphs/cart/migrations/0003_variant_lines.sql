-- Cart lines point at the variant sold (the product stays on the line too).
-- Lines from before variants name a product whose only variant shares its id
-- (catalog migration 0003_variants), so the variant id is the product id.
ALTER TABLE cart_items ADD COLUMN variant_id uuid;
UPDATE cart_items SET variant_id = product_id;
ALTER TABLE cart_items ALTER COLUMN variant_id SET NOT NULL;
ALTER TABLE cart_items DROP CONSTRAINT cart_items_cart_id_product_id_key;
ALTER TABLE cart_items ADD CONSTRAINT cart_items_cart_id_variant_id_key UNIQUE (cart_id, variant_id);
