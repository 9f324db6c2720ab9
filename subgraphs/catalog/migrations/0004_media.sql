-- Product media: images of a product (and optionally of one of its variants),
-- in the order shown. An uploaded image keeps its original on the storage
-- backend under storage_key; a demo image (seed) has no original but a
-- drawing spec, and its renditions are drawn on first request. Renditions
-- (resized WebP/JPEG) are derived, cached on the storage backend, and served
-- at URLs that never change for a media id (an image is never edited: a new
-- upload is a new id), so they are cacheable for ever.
CREATE TABLE product_media (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    product_id   uuid NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    variant_id   uuid REFERENCES product_variants (id) ON DELETE SET NULL,
    position     integer NOT NULL DEFAULT 0,
    alt_text     text NOT NULL DEFAULT '' CHECK (length(alt_text) <= 500),
    storage_key  text,
    demo         jsonb,
    content_type text NOT NULL,
    width        integer NOT NULL CHECK (width > 0),
    height       integer NOT NULL CHECK (height > 0),
    bytes        bigint NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK ((storage_key IS NULL) <> (demo IS NULL))
);
CREATE INDEX product_media_product_idx ON product_media (product_id, position, id);
CREATE INDEX product_media_variant_idx ON product_media (variant_id) WHERE variant_id IS NOT NULL;

-- Signed upload URLs are single-use: a token's id is recorded when used.
CREATE TABLE media_uploads (
    id         uuid PRIMARY KEY,
    used_at    timestamptz NOT NULL DEFAULT now()
);
