-- The catalogue: taxonomy, products, price history, sales and packages.
--
-- Every table has id / created_at / updated_at (trigger-maintained); what admins delete is soft
-- deleted (deleted_at), and slugs are unique among the rows that are not deleted.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- ---------------------------------------------------------------------------------------------
-- Taxonomy

CREATE TABLE categories (
    id              UUID PRIMARY KEY,
    family          TEXT NOT NULL CONSTRAINT categories_family_check
                        CHECK (family IN ('KITCHEN', 'BEDROOM')),
    parent_id       UUID REFERENCES categories (id),
    name            TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 120),
    slug            TEXT NOT NULL,
    description     TEXT,
    image_url       TEXT,
    seo_title       TEXT,
    seo_description TEXT,
    sort_order      INTEGER NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at      TIMESTAMPTZ
);
CREATE UNIQUE INDEX categories_slug_key ON categories (slug) WHERE deleted_at IS NULL;
CREATE INDEX categories_order_idx ON categories (sort_order, id) WHERE deleted_at IS NULL;

CREATE TABLE ranges (
    id              UUID PRIMARY KEY,
    family          TEXT CONSTRAINT ranges_family_check CHECK (family IN ('KITCHEN', 'BEDROOM')),
    name            TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 120),
    slug            TEXT NOT NULL,
    description     TEXT,
    image_url       TEXT,
    sort_order      INTEGER NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at      TIMESTAMPTZ
);
CREATE UNIQUE INDEX ranges_slug_key ON ranges (slug) WHERE deleted_at IS NULL;
CREATE INDEX ranges_order_idx ON ranges (sort_order, id) WHERE deleted_at IS NULL;

CREATE TABLE colours (
    id              UUID PRIMARY KEY,
    name            TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 80),
    slug            TEXT NOT NULL,
    hex_code        TEXT NOT NULL CONSTRAINT colours_hex_code_check
                        CHECK (hex_code ~ '^#[0-9A-Fa-f]{6}$'),
    applies_to      TEXT NOT NULL DEFAULT 'BOTH' CONSTRAINT colours_applies_to_check
                        CHECK (applies_to IN ('KITCHEN', 'BEDROOM', 'BOTH')),
    active          BOOLEAN NOT NULL DEFAULT true,
    sort_order      INTEGER NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at      TIMESTAMPTZ
);
CREATE UNIQUE INDEX colours_slug_key ON colours (slug) WHERE deleted_at IS NULL;
CREATE INDEX colours_order_idx ON colours (sort_order, id) WHERE deleted_at IS NULL;

-- Styles and finishes are data, not enums: admins add new ones.
CREATE TABLE styles (
    id              UUID PRIMARY KEY,
    code            TEXT NOT NULL CONSTRAINT styles_code_check CHECK (code ~ '^[A-Z][A-Z0-9_]*$'),
    name            TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 80),
    slug            TEXT NOT NULL,
    description     TEXT,
    sort_order      INTEGER NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at      TIMESTAMPTZ
);
CREATE UNIQUE INDEX styles_slug_key ON styles (slug) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX styles_code_key ON styles (code) WHERE deleted_at IS NULL;
CREATE INDEX styles_order_idx ON styles (sort_order, id) WHERE deleted_at IS NULL;

CREATE TABLE finishes (
    id              UUID PRIMARY KEY,
    code            TEXT NOT NULL CONSTRAINT finishes_code_check CHECK (code ~ '^[A-Z][A-Z0-9_]*$'),
    name            TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 80),
    slug            TEXT NOT NULL,
    description     TEXT,
    sort_order      INTEGER NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at      TIMESTAMPTZ
);
CREATE UNIQUE INDEX finishes_slug_key ON finishes (slug) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX finishes_code_key ON finishes (code) WHERE deleted_at IS NULL;
CREATE INDEX finishes_order_idx ON finishes (sort_order, id) WHERE deleted_at IS NULL;

CREATE TABLE sizes (
    id              UUID PRIMARY KEY,
    title           TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 120),
    slug            TEXT NOT NULL,
    description     TEXT,
    image_url       TEXT,
    width_mm        INTEGER CONSTRAINT sizes_width_check CHECK (width_mm > 0),
    height_mm       INTEGER CONSTRAINT sizes_height_check CHECK (height_mm > 0),
    depth_mm        INTEGER CONSTRAINT sizes_depth_check CHECK (depth_mm > 0),
    sort_order      INTEGER NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at      TIMESTAMPTZ
);
CREATE UNIQUE INDEX sizes_slug_key ON sizes (slug) WHERE deleted_at IS NULL;
CREATE INDEX sizes_order_idx ON sizes (sort_order, id) WHERE deleted_at IS NULL;

-- ---------------------------------------------------------------------------------------------
-- Products

CREATE TABLE products (
    id              UUID PRIMARY KEY,
    sku             TEXT NOT NULL CONSTRAINT products_sku_check CHECK (sku ~ '^[A-Z0-9][A-Z0-9-]{2,40}$'),
    title           TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    slug            TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    category        TEXT NOT NULL CONSTRAINT products_category_check
                        CHECK (category IN ('KITCHEN', 'BEDROOM')),
    subcategory_id  UUID REFERENCES categories (id),
    range_id        UUID REFERENCES ranges (id),
    style_id        UUID REFERENCES styles (id),
    finish_id       UUID REFERENCES finishes (id),
    -- NULL = price on consultation.
    price_pence     BIGINT CONSTRAINT products_price_check CHECK (price_pence >= 0),
    currency        TEXT NOT NULL DEFAULT 'GBP' CHECK (currency ~ '^[A-Z]{3}$'),
    -- The price sort key: price on consultation sorts as the dearest.
    price_sort      BIGINT GENERATED ALWAYS AS (coalesce(price_pence, 9223372036854775807)) STORED,
    status          TEXT NOT NULL DEFAULT 'DRAFT' CONSTRAINT products_status_check
                        CHECK (status IN ('DRAFT', 'PUBLISHED', 'ARCHIVED')),
    featured        BOOLEAN NOT NULL DEFAULT false,
    popularity      BIGINT NOT NULL DEFAULT 0 CHECK (popularity >= 0),
    images          JSONB NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(images) = 'array'),
    seo_title       TEXT,
    seo_description TEXT,
    -- Weighted: title A, range/style/colours B, finish C, description D (see product_search_refresh).
    search          TSVECTOR NOT NULL DEFAULT ''::tsvector,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at      TIMESTAMPTZ
);
CREATE UNIQUE INDEX products_slug_key ON products (slug) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX products_sku_key ON products (sku) WHERE deleted_at IS NULL;

-- Public listing: one partial index per sort key, keyset on (key, id). Scanned backwards for
-- descending sorts; the category variants serve the common `category=` filter.
CREATE INDEX products_public_created_idx ON products (created_at, id)
    WHERE status = 'PUBLISHED' AND deleted_at IS NULL;
CREATE INDEX products_public_price_idx ON products (price_sort, id)
    WHERE status = 'PUBLISHED' AND deleted_at IS NULL;
CREATE INDEX products_public_title_idx ON products (title, id)
    WHERE status = 'PUBLISHED' AND deleted_at IS NULL;
CREATE INDEX products_public_popularity_idx ON products (popularity, id)
    WHERE status = 'PUBLISHED' AND deleted_at IS NULL;
CREATE INDEX products_public_category_created_idx ON products (category, created_at, id)
    WHERE status = 'PUBLISHED' AND deleted_at IS NULL;
CREATE INDEX products_public_category_price_idx ON products (category, price_sort, id)
    WHERE status = 'PUBLISHED' AND deleted_at IS NULL;
CREATE INDEX products_public_category_popularity_idx ON products (category, popularity, id)
    WHERE status = 'PUBLISHED' AND deleted_at IS NULL;
-- Facet filters.
CREATE INDEX products_range_idx ON products (range_id) WHERE deleted_at IS NULL;
CREATE INDEX products_style_idx ON products (style_id) WHERE deleted_at IS NULL;
CREATE INDEX products_finish_idx ON products (finish_id) WHERE deleted_at IS NULL;
-- Search and type-ahead.
CREATE INDEX products_search_idx ON products USING gin (search);
CREATE INDEX products_title_trgm_idx ON products USING gin (title gin_trgm_ops)
    WHERE status = 'PUBLISHED' AND deleted_at IS NULL;
-- Admin table (offset paged, newest first).
CREATE INDEX products_admin_idx ON products (created_at DESC, id DESC) WHERE deleted_at IS NULL;

-- A popularity flush counts views; it is not an edit, so it leaves updated_at alone.
CREATE TRIGGER products_updated_at BEFORE UPDATE ON products
    FOR EACH ROW WHEN (OLD.popularity IS NOT DISTINCT FROM NEW.popularity)
    EXECUTE FUNCTION set_updated_at();

CREATE TABLE product_colours (
    product_id UUID NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    colour_id  UUID NOT NULL REFERENCES colours (id),
    PRIMARY KEY (product_id, colour_id)
);
CREATE INDEX product_colours_colour_idx ON product_colours (colour_id, product_id);

CREATE TABLE product_sizes (
    product_id UUID NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    size_id    UUID NOT NULL REFERENCES sizes (id),
    PRIMARY KEY (product_id, size_id)
);
CREATE INDEX product_sizes_size_idx ON product_sizes (size_id, product_id);

-- Recomputes the search document of the given products from their own text and the names of
-- their range, style, finish and colours (called in the transaction that changes any of them).
CREATE FUNCTION product_search_refresh(ids UUID[]) RETURNS void
LANGUAGE sql AS $$
    UPDATE products p SET search =
        setweight(to_tsvector('english', p.title), 'A')
        || setweight(to_tsvector('english', coalesce(r.name, '')), 'B')
        || setweight(to_tsvector('english', coalesce(s.name, '')), 'B')
        || setweight(to_tsvector('english', coalesce(
               (SELECT string_agg(c.name, ' ') FROM product_colours pc
                  JOIN colours c ON c.id = pc.colour_id WHERE pc.product_id = p.id), '')), 'B')
        || setweight(to_tsvector('english', coalesce(f.name, '')), 'C')
        || setweight(to_tsvector('english', p.description), 'D')
    FROM products p2
    LEFT JOIN ranges r ON r.id = p2.range_id
    LEFT JOIN styles s ON s.id = p2.style_id
    LEFT JOIN finishes f ON f.id = p2.finish_id
    WHERE p.id = p2.id AND p.id = ANY(ids);
$$;

CREATE TABLE price_history (
    id              UUID PRIMARY KEY,
    product_id      UUID NOT NULL REFERENCES products (id),
    old_price_pence BIGINT,
    new_price_pence BIGINT,
    currency        TEXT NOT NULL,
    changed_by      UUID,
    changed_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX price_history_product_idx ON price_history (product_id, changed_at DESC, id DESC);

-- ---------------------------------------------------------------------------------------------
-- Sales and packages

CREATE TABLE sales (
    id               UUID PRIMARY KEY,
    title            TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description      TEXT NOT NULL DEFAULT '',
    image_url        TEXT,
    discount_percent INTEGER CONSTRAINT sales_discount_check CHECK (discount_percent BETWEEN 1 AND 100),
    categories       TEXT[] NOT NULL DEFAULT '{}'
                         CHECK (categories <@ ARRAY['KITCHEN', 'BEDROOM']),
    valid_from       TIMESTAMPTZ NOT NULL,
    valid_until      TIMESTAMPTZ NOT NULL,
    terms            TEXT,
    product_ids      UUID[] NOT NULL DEFAULT '{}',
    sort_order       INTEGER NOT NULL DEFAULT 0,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at       TIMESTAMPTZ,
    CONSTRAINT sales_validity_check CHECK (valid_until > valid_from)
);
CREATE INDEX sales_current_idx ON sales (valid_until, valid_from) WHERE deleted_at IS NULL;
CREATE INDEX sales_order_idx ON sales (sort_order, id) WHERE deleted_at IS NULL;

CREATE TABLE packages (
    id              UUID PRIMARY KEY,
    title           TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description     TEXT NOT NULL DEFAULT '',
    image_url       TEXT,
    price_pence     BIGINT CONSTRAINT packages_price_check CHECK (price_pence >= 0),
    currency        TEXT NOT NULL DEFAULT 'GBP' CHECK (currency ~ '^[A-Z]{3}$'),
    features        TEXT[] NOT NULL DEFAULT '{}',
    popular         BOOLEAN NOT NULL DEFAULT false,
    sort_order      INTEGER NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at      TIMESTAMPTZ
);
CREATE INDEX packages_order_idx ON packages (sort_order, id) WHERE deleted_at IS NULL;

DO $$
DECLARE t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['categories', 'ranges', 'colours', 'styles', 'finishes', 'sizes',
                             'price_history', 'sales', 'packages'] LOOP
        EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE ON %I FOR EACH ROW EXECUTE FUNCTION set_updated_at()',
                       t || '_updated_at', t);
    END LOOP;
END $$;

-- ---------------------------------------------------------------------------------------------
-- Inventory

-- One row per tracked stock unit: the product itself (size and colour NULL) or one of its
-- size/colour variants.
CREATE TABLE stock_items (
    id                  UUID PRIMARY KEY,
    product_id          UUID NOT NULL REFERENCES products (id),
    size_id             UUID REFERENCES sizes (id),
    colour_id           UUID REFERENCES colours (id),
    on_hand             INTEGER NOT NULL DEFAULT 0 CONSTRAINT stock_items_on_hand_check CHECK (on_hand >= 0),
    reserved            INTEGER NOT NULL DEFAULT 0 CONSTRAINT stock_items_reserved_check CHECK (reserved >= 0),
    low_stock_threshold INTEGER NOT NULL DEFAULT 0 CHECK (low_stock_threshold >= 0),
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT stock_items_available_check CHECK (reserved <= on_hand),
    CONSTRAINT stock_items_variant_key UNIQUE NULLS NOT DISTINCT (product_id, size_id, colour_id)
);
CREATE TRIGGER stock_items_updated_at BEFORE UPDATE ON stock_items
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- The ledger: every change of on_hand or reserved, and why.
CREATE TABLE stock_movements (
    id              UUID PRIMARY KEY,
    stock_item_id   UUID NOT NULL REFERENCES stock_items (id),
    on_hand_delta   INTEGER NOT NULL,
    reserved_delta  INTEGER NOT NULL,
    reason          TEXT NOT NULL CHECK (reason IN ('RESTOCK', 'RESERVATION', 'RESERVATION_RELEASED',
                                                    'SALE', 'RETURN', 'ADJUSTMENT')),
    order_id        UUID,
    actor_id        UUID,
    note            TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX stock_movements_item_idx ON stock_movements (stock_item_id, created_at DESC);

CREATE TABLE reservations (
    id          UUID PRIMARY KEY,
    order_id    UUID NOT NULL CONSTRAINT reservations_order_key UNIQUE,
    status      TEXT NOT NULL DEFAULT 'ACTIVE'
                    CHECK (status IN ('ACTIVE', 'COMMITTED', 'RELEASED', 'EXPIRED')),
    expires_at  TIMESTAMPTZ NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX reservations_expiry_idx ON reservations (expires_at) WHERE status = 'ACTIVE';
CREATE TRIGGER reservations_updated_at BEFORE UPDATE ON reservations
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE reservation_items (
    reservation_id UUID NOT NULL REFERENCES reservations (id),
    stock_item_id  UUID NOT NULL REFERENCES stock_items (id),
    quantity       INTEGER NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (reservation_id, stock_item_id)
);
