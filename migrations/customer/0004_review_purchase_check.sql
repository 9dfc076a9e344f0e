-- Verified-purchase badges on reviews. A review is checked against order-payment when it is
-- written; when that check could not be answered (order-payment away) or its answer may have
-- changed (the author paid or was refunded since), the review is due for a re-check, which a
-- background job performs with backoff. `verify_due_at` NULL = settled.
ALTER TABLE reviews
    ADD COLUMN verify_due_at       TIMESTAMPTZ,
    ADD COLUMN verify_attempts     INTEGER NOT NULL DEFAULT 0
                                   CONSTRAINT reviews_verify_attempts_check CHECK (verify_attempts >= 0),
    -- When order-payment last answered for this review (NULL: never).
    ADD COLUMN purchase_checked_at TIMESTAMPTZ;
-- The job's scan: only reviews awaiting a check, oldest due first.
CREATE INDEX reviews_verify_due_idx ON reviews (verify_due_at) WHERE verify_due_at IS NOT NULL;
