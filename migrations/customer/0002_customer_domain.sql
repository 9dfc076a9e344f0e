-- Customer domain: profiles, addresses, wishlists, reviews, support tickets, loyalty.

CREATE TABLE profiles (
    user_id               UUID PRIMARY KEY,
    email                 TEXT,
    first_name            TEXT NOT NULL DEFAULT '',
    last_name             TEXT NOT NULL DEFAULT '',
    phone                 TEXT CHECK (phone IS NULL OR phone ~ '^\+[1-9][0-9]{6,14}$'),
    date_of_birth         DATE,
    marketing             JSONB NOT NULL DEFAULT '{}'::jsonb,
    preferred_showroom_id UUID,
    avatar_media_id       UUID,
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TRIGGER profiles_updated_at BEFORE UPDATE ON profiles
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
-- Admin search by name / email.
CREATE INDEX profiles_search_idx ON profiles (lower(last_name), lower(first_name));
CREATE INDEX profiles_email_idx ON profiles (lower(email));

CREATE TABLE addresses (
    id             UUID PRIMARY KEY,
    user_id        UUID NOT NULL REFERENCES profiles (user_id) ON DELETE CASCADE,
    kind           TEXT NOT NULL CHECK (kind IN ('SHIPPING', 'BILLING')),
    is_default     BOOLEAN NOT NULL DEFAULT false,
    label          TEXT,
    recipient_name TEXT NOT NULL,
    line1          TEXT NOT NULL,
    line2          TEXT,
    city           TEXT NOT NULL,
    county         TEXT,
    postcode       TEXT NOT NULL CHECK (postcode ~ '^[A-Z0-9]{2,4} [0-9][A-Z]{2}$'),
    country        TEXT NOT NULL DEFAULT 'GB' CHECK (country = 'GB'),
    phone          TEXT,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TRIGGER addresses_updated_at BEFORE UPDATE ON addresses
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE INDEX addresses_user_idx ON addresses (user_id, created_at);
CREATE INDEX addresses_postcode_idx ON addresses (postcode);
-- Exactly one default per kind: at most one here, and the service makes the first one default.
CREATE UNIQUE INDEX addresses_one_default_per_kind ON addresses (user_id, kind) WHERE is_default;

CREATE TABLE wishlist_items (
    user_id    UUID NOT NULL,
    product_id UUID NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, product_id)
);
CREATE INDEX wishlist_items_recent_idx ON wishlist_items (user_id, created_at DESC);

CREATE TABLE reviews (
    id                UUID PRIMARY KEY,
    product_id        UUID NOT NULL,
    -- NULL once the author's data was erased (the review stays, anonymised).
    user_id           UUID,
    author_name       TEXT,
    rating            SMALLINT NOT NULL CHECK (rating BETWEEN 1 AND 5),
    title             TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 150),
    body              TEXT NOT NULL CHECK (length(body) BETWEEN 1 AND 5000),
    photos            UUID[] NOT NULL DEFAULT '{}',
    status            TEXT NOT NULL DEFAULT 'PENDING'
                      CHECK (status IN ('PENDING', 'APPROVED', 'REJECTED')),
    moderation_reason TEXT,
    moderated_by      UUID,
    moderated_at      TIMESTAMPTZ,
    verified_purchase BOOLEAN NOT NULL DEFAULT false,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TRIGGER reviews_updated_at BEFORE UPDATE ON reviews
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE UNIQUE INDEX reviews_one_per_customer ON reviews (product_id, user_id);
CREATE INDEX reviews_public_recent_idx ON reviews (product_id, created_at DESC, id DESC)
    WHERE status = 'APPROVED';
CREATE INDEX reviews_public_rating_idx ON reviews (product_id, rating DESC, id DESC)
    WHERE status = 'APPROVED';
CREATE INDEX reviews_user_idx ON reviews (user_id);
CREATE INDEX reviews_queue_idx ON reviews (status, created_at);

-- "Was this helpful?": one vote per user per review.
CREATE TABLE review_votes (
    review_id  UUID NOT NULL REFERENCES reviews (id) ON DELETE CASCADE,
    user_id    UUID NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (review_id, user_id)
);
CREATE INDEX review_votes_user_idx ON review_votes (user_id);

CREATE TABLE ticket_counters (
    day  DATE PRIMARY KEY,
    last INTEGER NOT NULL
);

CREATE TABLE tickets (
    id          UUID PRIMARY KEY,
    reference   TEXT NOT NULL UNIQUE CHECK (reference ~ '^TK-[0-9]{8}-[0-9]{4,}$'),
    -- NULL once the customer's data was erased.
    user_id     UUID,
    subject     TEXT NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
    category    TEXT NOT NULL CHECK (category IN
                ('ORDER', 'BOOKING', 'PRODUCT', 'DELIVERY', 'INSTALLATION', 'BILLING', 'OTHER')),
    priority    TEXT NOT NULL DEFAULT 'NORMAL' CHECK (priority IN ('LOW', 'NORMAL', 'HIGH', 'URGENT')),
    status      TEXT NOT NULL DEFAULT 'OPEN' CHECK (status IN
                ('OPEN', 'IN_PROGRESS', 'AWAITING_CUSTOMER', 'RESOLVED', 'CLOSED')),
    order_id    UUID,
    booking_id  UUID,
    assigned_to UUID,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TRIGGER tickets_updated_at BEFORE UPDATE ON tickets
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE INDEX tickets_user_idx ON tickets (user_id, created_at DESC, id DESC);
CREATE INDEX tickets_queue_idx ON tickets (status, created_at);

CREATE TABLE ticket_messages (
    id          UUID PRIMARY KEY,
    ticket_id   UUID NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    -- NULL once a customer author's data was erased.
    author_id   UUID,
    author_role TEXT NOT NULL CHECK (author_role IN ('CUSTOMER', 'STAFF')),
    body        TEXT NOT NULL CHECK (length(body) BETWEEN 1 AND 10000),
    internal    BOOLEAN NOT NULL DEFAULT false,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (NOT internal OR author_role = 'STAFF')
);
CREATE INDEX ticket_messages_thread_idx ON ticket_messages (ticket_id, created_at, id);

-- Loyalty: one account per customer; the balance is kept in the same transaction as each
-- ledger row and can never fall below zero.
CREATE TABLE loyalty_accounts (
    user_id    UUID PRIMARY KEY,
    balance    BIGINT NOT NULL DEFAULT 0 CONSTRAINT loyalty_balance_not_negative CHECK (balance >= 0),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TRIGGER loyalty_accounts_updated_at BEFORE UPDATE ON loyalty_accounts
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE loyalty_transactions (
    id            UUID PRIMARY KEY,
    user_id       UUID NOT NULL REFERENCES loyalty_accounts (user_id) ON UPDATE CASCADE,
    kind          TEXT NOT NULL CHECK (kind IN ('EARN', 'REDEEM', 'REVERSE', 'EXPIRE', 'ADJUST')),
    points        BIGINT NOT NULL CHECK (points <> 0),
    balance_after BIGINT NOT NULL CHECK (balance_after >= 0),
    order_id      UUID,
    payment_id    UUID,
    refund_id     UUID,
    amount_pence  BIGINT,
    reason        TEXT,
    created_by    UUID,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (kind <> 'EARN' OR (points > 0 AND payment_id IS NOT NULL AND amount_pence > 0)),
    CHECK (kind <> 'REVERSE' OR (points < 0 AND refund_id IS NOT NULL AND payment_id IS NOT NULL)),
    CHECK (kind <> 'REDEEM' OR points < 0),
    CHECK (kind <> 'ADJUST' OR reason IS NOT NULL)
);
-- A payment earns once and a refund reverses once, however often their events arrive.
CREATE UNIQUE INDEX loyalty_earn_once_per_payment ON loyalty_transactions (payment_id)
    WHERE kind = 'EARN';
CREATE UNIQUE INDEX loyalty_reverse_once_per_refund ON loyalty_transactions (refund_id)
    WHERE kind = 'REVERSE';
CREATE INDEX loyalty_transactions_user_idx ON loyalty_transactions (user_id, created_at DESC, id DESC);
CREATE INDEX loyalty_transactions_payment_idx ON loyalty_transactions (payment_id);

-- The ledger is append-only: rows are never deleted, and only pseudonymisation (a new random
-- user id, cascaded from loyalty_accounts) may change one.
CREATE FUNCTION loyalty_ledger_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'the loyalty ledger is append-only' USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF (NEW.id, NEW.kind, NEW.points, NEW.balance_after, NEW.order_id, NEW.payment_id,
        NEW.refund_id, NEW.amount_pence, NEW.reason, NEW.created_by, NEW.created_at)
       IS DISTINCT FROM
       (OLD.id, OLD.kind, OLD.points, OLD.balance_after, OLD.order_id, OLD.payment_id,
        OLD.refund_id, OLD.amount_pence, OLD.reason, OLD.created_by, OLD.created_at) THEN
        RAISE EXCEPTION 'the loyalty ledger is append-only' USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER loyalty_transactions_append_only BEFORE UPDATE OR DELETE ON loyalty_transactions
    FOR EACH ROW EXECUTE FUNCTION loyalty_ledger_append_only();
