-- The sitemap trigger: every blog.published counts a publish; a job asks content to refresh the
-- sitemap (POST /internal/sitemap/refresh) while publishes are unanswered, with a backoff after
-- failures, and clears the stale mark only for the publishes it saw (one arriving during the call
-- keeps the sitemap stale for the next round).
ALTER TABLE sitemap_state
    ADD COLUMN publishes       BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN refreshed_at    TIMESTAMPTZ,
    ADD COLUMN attempts        INT NOT NULL DEFAULT 0,
    ADD COLUMN next_attempt_at TIMESTAMPTZ,
    ADD COLUMN last_error      TEXT;
