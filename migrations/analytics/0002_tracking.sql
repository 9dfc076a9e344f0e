-- Tracking events (client, GTM and server-side), funnels and daily aggregates.
--
-- One table, not monthly partitions: `message_id` must be unique across all time (a redelivered
-- flush batch or domain event inserts nothing twice), and a partitioned table's unique keys must
-- contain the partition key. Rows arrive roughly in time order, so a BRIN index on the time
-- column is a few pages and still prunes range scans; retention deletes by time.
CREATE TABLE tracking_events (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id    TEXT NOT NULL,
    event         TEXT NOT NULL,
    source        TEXT NOT NULL CHECK (source IN ('CLIENT', 'GTM', 'SERVER')),
    properties    JSONB NOT NULL DEFAULT '{}'::jsonb,
    user_id       UUID,
    anonymous_id  TEXT,
    session_id    TEXT,
    -- Who did it, for visitors and funnels: the user when known, else the browser.
    actor         TEXT GENERATED ALWAYS AS (COALESCE(user_id::text, anonymous_id, session_id)) STORED,
    page_url      TEXT,
    page_path     TEXT,
    referrer      TEXT,
    referrer_host TEXT,
    -- Never the raw address: a keyed, daily-rotating hash of the truncated address.
    ip_hash       TEXT,
    device        TEXT,
    browser       TEXT,
    os            TEXT,
    -- Money in minor units (purchases).
    revenue       BIGINT,
    currency      TEXT,
    occurred_at   TIMESTAMPTZ NOT NULL,
    received_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT tracking_events_message_id_key UNIQUE (message_id),
    CONSTRAINT tracking_events_event_len CHECK (length(event) BETWEEN 1 AND 100)
);

CREATE INDEX tracking_events_occurred_brin ON tracking_events USING brin (occurred_at)
    WITH (pages_per_range = 32);
-- Funnels and per-event exports read one event name over a time range.
CREATE INDEX tracking_events_event_time ON tracking_events (event, occurred_at);

-- Days whose aggregates must be recomputed: written in the same statement as the events.
CREATE TABLE aggregate_dirty_days (
    day       DATE PRIMARY KEY,
    marked_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Daily aggregates: one row per (day, metric, dimension); dimension '' is the total.
CREATE TABLE daily_metrics (
    day        DATE NOT NULL,
    metric     TEXT NOT NULL,
    dimension  TEXT NOT NULL DEFAULT '',
    value      BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (day, metric, dimension)
);

-- Admin-defined funnels: ordered steps, each an event name with property filters and a window.
CREATE TABLE funnels (
    id         UUID PRIMARY KEY,
    name       TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    steps      JSONB NOT NULL CHECK (jsonb_typeof(steps) = 'array'),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TRIGGER funnels_updated_at BEFORE UPDATE ON funnels
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- The seed's rule: a published blog post makes the sitemap stale until content regenerates it.
CREATE TABLE sitemap_state (
    id          BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
    stale_since TIMESTAMPTZ,
    last_post   UUID
);
