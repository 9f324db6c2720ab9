-- Variant weights (issue 17): what BY_WEIGHT shipping rates weigh, in grams, set by the shop team
-- (createProduct / createProductVariant / updateProductVariant). Before this every unit weighed the
-- cart's assumed 500 g; the demo catalog's variants get their category's typical weight.
ALTER TABLE product_variants
    ADD COLUMN weight_grams integer NOT NULL DEFAULT 500 CHECK (weight_grams BETWEEN 0 AND 1000000);
UPDATE product_variants v SET weight_grams = w.grams
FROM products p
JOIN categories c ON c.id = p.category_id
JOIN (VALUES ('audio', 400), ('computers', 1800), ('kitchen', 2500), ('home', 1500), ('outdoor', 2000),
             ('fitness', 6000), ('books', 450), ('toys', 600), ('beauty', 200), ('apparel', 350),
             ('shoes', 900), ('garden', 3000)) AS w (slug, grams) ON w.slug = c.slug
WHERE p.id = v.product_id;
