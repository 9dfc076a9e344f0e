-- Media assets: uploaded images and videos and their resized WebP variants. The objects live in
-- storage (S3 or a local directory) under `storage_key` and the variants' keys; the asset id is
-- part of every key, so a URL of an asset names it.
CREATE TABLE media_assets (
    id           UUID PRIMARY KEY,
    storage_key  TEXT NOT NULL CHECK (storage_key ~ '^media/[0-9]{4}/[0-9]{2}/[0-9a-f-]{36}\.(jpg|png|webp|mp4)$'),
    kind         TEXT NOT NULL CHECK (kind IN ('IMAGE', 'VIDEO')),
    mime_type    TEXT NOT NULL CHECK (mime_type IN ('image/jpeg', 'image/png', 'image/webp', 'video/mp4')),
    size_bytes   BIGINT NOT NULL CHECK (size_bytes > 0),
    width        INTEGER CHECK (width > 0),
    height       INTEGER CHECK (height > 0),
    -- {"large": {"key", "width", "height", "sizeBytes"}, "medium": ..., "thumb": ...}; {} for videos.
    variants     JSONB NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(variants) = 'object'),
    alt_text     TEXT CHECK (char_length(alt_text) <= 500),
    owner_id     UUID,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at   TIMESTAMPTZ,
    CONSTRAINT media_assets_storage_key_key UNIQUE (storage_key),
    CONSTRAINT media_assets_kind_matches_mime CHECK ((kind = 'VIDEO') = (mime_type = 'video/mp4')),
    CONSTRAINT media_assets_images_have_size CHECK (kind = 'VIDEO' OR (width IS NOT NULL AND height IS NOT NULL))
);
-- The admin table: newest first, optionally one kind.
CREATE INDEX media_assets_admin_idx ON media_assets (created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX media_assets_kind_idx ON media_assets (kind, created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE TRIGGER media_assets_updated_at BEFORE UPDATE ON media_assets
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
