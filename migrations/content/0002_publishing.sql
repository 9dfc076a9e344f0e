-- Publishing: blog posts, CMS pages with versions, storefront content, form submissions.
-- Media are referenced by id or URL only (the media tables come in a later migration).

-- Blog ---------------------------------------------------------------------------------------
CREATE TABLE blog_posts (
    id               UUID PRIMARY KEY,
    slug             TEXT NOT NULL CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND length(slug) <= 120),
    title            TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    excerpt          TEXT NOT NULL DEFAULT '',
    content_md       TEXT NOT NULL DEFAULT '',
    content_html     TEXT NOT NULL DEFAULT '',
    reading_minutes  INTEGER NOT NULL DEFAULT 1 CHECK (reading_minutes >= 1),
    cover_media_id   UUID,
    cover_image_url  TEXT,
    author_id        UUID,
    author_name      TEXT,
    tags             TEXT[] NOT NULL DEFAULT '{}',
    category         TEXT,
    seo              JSONB NOT NULL DEFAULT '{}'::jsonb,
    status           TEXT NOT NULL DEFAULT 'DRAFT'
                     CHECK (status IN ('DRAFT', 'SCHEDULED', 'PUBLISHED', 'ARCHIVED')),
    scheduled_for    TIMESTAMPTZ,
    published_at     TIMESTAMPTZ,
    -- When `blog.published` was written to the outbox: set once, so the event goes out exactly
    -- once per post however often it is unpublished and published again.
    announced_at     TIMESTAMPTZ,
    created_by       UUID,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at       TIMESTAMPTZ,
    CONSTRAINT blog_posts_scheduled_has_time CHECK (status <> 'SCHEDULED' OR scheduled_for IS NOT NULL),
    CONSTRAINT blog_posts_published_has_time CHECK (status <> 'PUBLISHED' OR published_at IS NOT NULL)
);
-- A slug names one live post; a deleted post's slug may be reused.
CREATE UNIQUE INDEX blog_posts_slug_live_key ON blog_posts (slug) WHERE deleted_at IS NULL;
-- The public list: newest first, keyset on (published_at, id).
CREATE INDEX blog_posts_public_idx ON blog_posts (published_at DESC, id DESC)
    WHERE status = 'PUBLISHED' AND deleted_at IS NULL;
CREATE INDEX blog_posts_tags_idx ON blog_posts USING gin (tags)
    WHERE status = 'PUBLISHED' AND deleted_at IS NULL;
CREATE INDEX blog_posts_category_idx ON blog_posts (category, published_at DESC, id DESC)
    WHERE status = 'PUBLISHED' AND deleted_at IS NULL;
-- The scheduled-publish job's scan.
CREATE INDEX blog_posts_due_idx ON blog_posts (scheduled_for)
    WHERE status = 'SCHEDULED' AND deleted_at IS NULL;
CREATE INDEX blog_posts_admin_idx ON blog_posts (created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE TRIGGER blog_posts_updated_at BEFORE UPDATE ON blog_posts
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Pages --------------------------------------------------------------------------------------
CREATE TABLE pages (
    id                   UUID PRIMARY KEY,
    slug                 TEXT NOT NULL CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND length(slug) <= 120),
    page_type            TEXT NOT NULL CHECK (page_type IN ('ABOUT', 'FINANCE', 'PROCESS',
                             'WHY_CHOOSE_US', 'CONTACT', 'FAQS', 'TERMS', 'PRIVACY', 'COOKIES',
                             'CAREERS', 'LANDING')),
    -- The working copy (what the next publish makes live).
    title                TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    blocks               JSONB NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(blocks) = 'array'),
    seo                  JSONB NOT NULL DEFAULT '{}'::jsonb,
    -- Landing pages are live only inside this window (either end open).
    valid_from           TIMESTAMPTZ,
    valid_until          TIMESTAMPTZ,
    draft_version        INTEGER NOT NULL DEFAULT 1,
    published_version    INTEGER,
    published_at         TIMESTAMPTZ,
    created_by           UUID,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at           TIMESTAMPTZ,
    CONSTRAINT pages_window_ordered CHECK (valid_from IS NULL OR valid_until IS NULL OR valid_from < valid_until),
    CONSTRAINT pages_window_only_landing CHECK (page_type = 'LANDING' OR (valid_from IS NULL AND valid_until IS NULL))
);
CREATE UNIQUE INDEX pages_slug_live_key ON pages (slug) WHERE deleted_at IS NULL;
CREATE INDEX pages_admin_idx ON pages (created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE TRIGGER pages_updated_at BEFORE UPDATE ON pages
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Every saved state of a page, numbered from 1; `published_at` marks the versions that went live.
CREATE TABLE page_versions (
    page_id       UUID NOT NULL REFERENCES pages (id) ON DELETE CASCADE,
    version       INTEGER NOT NULL CHECK (version >= 1),
    title         TEXT NOT NULL,
    blocks        JSONB NOT NULL,
    seo           JSONB NOT NULL,
    created_by    UUID,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at  TIMESTAMPTZ,
    PRIMARY KEY (page_id, version)
);

-- Storefront content -------------------------------------------------------------------------
-- Ordered lists share one shape: a `position` (ascending on the storefront), soft delete.
CREATE TABLE hero_slides (
    id            UUID PRIMARY KEY,
    title         TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    media         JSONB NOT NULL,
    button_text   TEXT,
    button_link   TEXT,
    position      INTEGER NOT NULL DEFAULT 0,
    active        BOOLEAN NOT NULL DEFAULT true,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at    TIMESTAMPTZ
);
CREATE INDEX hero_slides_order_idx ON hero_slides (position, id) WHERE deleted_at IS NULL;
CREATE TRIGGER hero_slides_updated_at BEFORE UPDATE ON hero_slides
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- The media wall is one object: the singleton index allows a single live row.
CREATE TABLE media_wall (
    id                    UUID PRIMARY KEY,
    title                 TEXT NOT NULL,
    description           TEXT NOT NULL DEFAULT '',
    background_image_url  TEXT,
    background_media_id   UUID,
    images                JSONB NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(images) = 'array'),
    singleton             BOOLEAN NOT NULL DEFAULT true CHECK (singleton),
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT media_wall_singleton UNIQUE (singleton)
);
CREATE TRIGGER media_wall_updated_at BEFORE UPDATE ON media_wall
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE projects (
    id            UUID PRIMARY KEY,
    title         TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    images        JSONB NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(images) = 'array'),
    category      TEXT NOT NULL CHECK (category IN ('KITCHEN', 'BEDROOM')),
    location      TEXT,
    completed_at  DATE,
    position      INTEGER NOT NULL DEFAULT 0,
    active        BOOLEAN NOT NULL DEFAULT true,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at    TIMESTAMPTZ
);
CREATE INDEX projects_order_idx ON projects (position, id) WHERE deleted_at IS NULL;
CREATE TRIGGER projects_updated_at BEFORE UPDATE ON projects
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE finance_options (
    id            UUID PRIMARY KEY,
    title         TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    -- Annual percentage rate in basis points (1990 = 19.9 %), never a float.
    apr_bps       INTEGER CHECK (apr_bps IS NULL OR apr_bps BETWEEN 0 AND 10000),
    term_months   INTEGER CHECK (term_months IS NULL OR term_months BETWEEN 1 AND 240),
    min_spend_pence BIGINT CHECK (min_spend_pence IS NULL OR min_spend_pence >= 0),
    link          TEXT,
    position      INTEGER NOT NULL DEFAULT 0,
    active        BOOLEAN NOT NULL DEFAULT true,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at    TIMESTAMPTZ
);
CREATE INDEX finance_options_order_idx ON finance_options (position, id) WHERE deleted_at IS NULL;
CREATE TRIGGER finance_options_updated_at BEFORE UPDATE ON finance_options
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE faqs (
    id            UUID PRIMARY KEY,
    question      TEXT NOT NULL,
    answer        TEXT NOT NULL,
    category      TEXT,
    position      INTEGER NOT NULL DEFAULT 0,
    active        BOOLEAN NOT NULL DEFAULT true,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at    TIMESTAMPTZ
);
CREATE INDEX faqs_order_idx ON faqs (position, id) WHERE deleted_at IS NULL;
CREATE TRIGGER faqs_updated_at BEFORE UPDATE ON faqs
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE accreditations (
    id            UUID PRIMARY KEY,
    name          TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('ACCREDITATION', 'PARTNER')),
    logo_url      TEXT,
    logo_media_id UUID,
    link          TEXT,
    position      INTEGER NOT NULL DEFAULT 0,
    active        BOOLEAN NOT NULL DEFAULT true,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at    TIMESTAMPTZ
);
CREATE INDEX accreditations_order_idx ON accreditations (position, id) WHERE deleted_at IS NULL;
CREATE TRIGGER accreditations_updated_at BEFORE UPDATE ON accreditations
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE testimonials (
    id            UUID PRIMARY KEY,
    name          TEXT NOT NULL,
    text          TEXT NOT NULL,
    rating        SMALLINT CHECK (rating IS NULL OR rating BETWEEN 1 AND 5),
    location      TEXT,
    media         JSONB,
    position      INTEGER NOT NULL DEFAULT 0,
    active        BOOLEAN NOT NULL DEFAULT true,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at    TIMESTAMPTZ
);
CREATE INDEX testimonials_order_idx ON testimonials (position, id) WHERE deleted_at IS NULL;
CREATE TRIGGER testimonials_updated_at BEFORE UPDATE ON testimonials
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Forms --------------------------------------------------------------------------------------
CREATE TABLE contact_submissions (
    id            UUID PRIMARY KEY,
    name          TEXT NOT NULL,
    email         TEXT NOT NULL,
    phone         TEXT,
    subject       TEXT NOT NULL,
    message       TEXT NOT NULL,
    enquiry_type  TEXT NOT NULL CHECK (enquiry_type IN ('GENERAL', 'KITCHEN', 'BEDROOM',
                      'SHOWROOM', 'ORDER', 'COMPLAINT', 'OTHER')),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX contact_submissions_admin_idx ON contact_submissions (created_at DESC, id DESC);

CREATE TABLE business_enquiries (
    id             UUID PRIMARY KEY,
    name           TEXT NOT NULL,
    company_name   TEXT,
    email          TEXT NOT NULL,
    phone          TEXT NOT NULL,
    business_type  TEXT NOT NULL CHECK (business_type IN ('TRADE', 'COMMERCIAL', 'PARTNERSHIP', 'OTHER')),
    message        TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX business_enquiries_admin_idx ON business_enquiries (created_at DESC, id DESC);

-- One row per address (lower-cased); the token both confirms and unsubscribes.
CREATE TABLE newsletter_subscriptions (
    id               UUID PRIMARY KEY,
    email            TEXT NOT NULL,
    name             TEXT,
    preferences      TEXT[] NOT NULL DEFAULT '{}',
    source           TEXT,
    token            TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'PENDING'
                     CHECK (status IN ('PENDING', 'CONFIRMED', 'UNSUBSCRIBED')),
    confirmed_at     TIMESTAMPTZ,
    unsubscribed_at  TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT newsletter_email_key UNIQUE (email),
    CONSTRAINT newsletter_token_key UNIQUE (token),
    CONSTRAINT newsletter_email_lower CHECK (email = lower(email))
);
CREATE INDEX newsletter_admin_idx ON newsletter_subscriptions (created_at DESC, id DESC);
CREATE TRIGGER newsletter_subscriptions_updated_at BEFORE UPDATE ON newsletter_subscriptions
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
