-- Orders domain: carts, coupons and their redemptions, tax rules, shipping rates, orders with
-- item snapshots and status history, admin notes, and idempotency records.
-- Money is integer pence (GBP); rates are basis points (2000 = 20%).

-- ---------------------------------------------------------------------------------------------
-- Carts: a user's cart (one per user) or a guest cart found by the SHA-256 of its opaque token.
CREATE TABLE carts (
    id          UUID PRIMARY KEY,
    user_id     UUID UNIQUE,
    token_hash  TEXT UNIQUE,
    -- Guest carts lapse 30 days after their last change; user carts do not.
    expires_at  TIMESTAMPTZ,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT carts_owner_check CHECK ((user_id IS NULL) <> (token_hash IS NULL))
);
CREATE TRIGGER carts_updated_at BEFORE UPDATE ON carts
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE INDEX carts_guest_expiry_idx ON carts (expires_at) WHERE user_id IS NULL;

CREATE TABLE cart_items (
    id          UUID PRIMARY KEY,
    cart_id     UUID NOT NULL REFERENCES carts (id) ON DELETE CASCADE,
    product_id  UUID NOT NULL,
    variant_id  UUID,
    quantity    INTEGER NOT NULL CONSTRAINT cart_items_quantity_check CHECK (quantity BETWEEN 1 AND 100),
    -- The unit price the shopper last saw (pence); a different current price flags the line.
    seen_unit_price BIGINT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TRIGGER cart_items_updated_at BEFORE UPDATE ON cart_items
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
-- One line per product/variant: adding it again raises the quantity.
CREATE UNIQUE INDEX cart_items_one_per_product ON cart_items (cart_id, product_id, variant_id)
    NULLS NOT DISTINCT;

-- ---------------------------------------------------------------------------------------------
-- Coupons
CREATE TABLE coupons (
    id                 UUID PRIMARY KEY,
    code               TEXT NOT NULL CHECK (code ~ '^[A-Z0-9_-]{3,32}$'),
    description        TEXT,
    kind               TEXT NOT NULL CHECK (kind IN ('PERCENTAGE', 'FIXED')),
    -- PERCENTAGE: basis points (1000 = 10%); FIXED: pence.
    value              BIGINT NOT NULL CHECK (value > 0),
    min_order_pence    BIGINT NOT NULL DEFAULT 0 CHECK (min_order_pence >= 0),
    max_discount_pence BIGINT CHECK (max_discount_pence IS NULL OR max_discount_pence > 0),
    usage_limit        INTEGER CHECK (usage_limit IS NULL OR usage_limit > 0),
    per_customer_limit INTEGER CHECK (per_customer_limit IS NULL OR per_customer_limit > 0),
    starts_at          TIMESTAMPTZ,
    ends_at            TIMESTAMPTZ,
    active             BOOLEAN NOT NULL DEFAULT true,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT coupons_percentage_check CHECK (kind <> 'PERCENTAGE' OR value <= 10000),
    CONSTRAINT coupons_window_check CHECK (starts_at IS NULL OR ends_at IS NULL OR starts_at < ends_at)
);
CREATE TRIGGER coupons_updated_at BEFORE UPDATE ON coupons
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE UNIQUE INDEX coupons_code_key ON coupons (code);

-- ---------------------------------------------------------------------------------------------
-- Tax rules: one per country; the rate applies to goods and shipping alike.
CREATE TABLE tax_rules (
    id          UUID PRIMARY KEY,
    country     TEXT NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
    name        TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    rate_bp     INTEGER NOT NULL CHECK (rate_bp BETWEEN 0 AND 10000),
    active      BOOLEAN NOT NULL DEFAULT true,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TRIGGER tax_rules_updated_at BEFORE UPDATE ON tax_rules
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE UNIQUE INDEX tax_rules_country_key ON tax_rules (country);
INSERT INTO tax_rules (id, country, name, rate_bp)
VALUES ('0192f000-0000-7000-8000-000000000001', 'GB', 'UK VAT standard rate', 2000);

-- ---------------------------------------------------------------------------------------------
-- Shipping rates, by method code.
CREATE TABLE shipping_rates (
    id              UUID PRIMARY KEY,
    code            TEXT NOT NULL CHECK (code ~ '^[A-Z][A-Z0-9_]{1,31}$'),
    name            TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    description     TEXT,
    price_pence     BIGINT NOT NULL CHECK (price_pence >= 0),
    -- Orders whose goods (after discount) reach this ship free.
    free_over_pence BIGINT CHECK (free_over_pence IS NULL OR free_over_pence >= 0),
    countries       TEXT[] NOT NULL DEFAULT '{GB}',
    min_days        INTEGER NOT NULL DEFAULT 1 CHECK (min_days >= 0),
    max_days        INTEGER NOT NULL DEFAULT 5,
    active          BOOLEAN NOT NULL DEFAULT true,
    sort_order      INTEGER NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT shipping_rates_days_check CHECK (max_days >= min_days)
);
CREATE TRIGGER shipping_rates_updated_at BEFORE UPDATE ON shipping_rates
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE UNIQUE INDEX shipping_rates_code_key ON shipping_rates (code);
INSERT INTO shipping_rates (id, code, name, description, price_pence, free_over_pence, min_days, max_days, sort_order)
VALUES
    ('0192f000-0000-7000-8000-000000000101', 'STANDARD', 'Standard delivery',
     'Delivered in 3–5 working days; free on orders over £500.', 995, 50000, 3, 5, 1),
    ('0192f000-0000-7000-8000-000000000102', 'EXPRESS', 'Express delivery',
     'Next working day when ordered before 2pm.', 2495, NULL, 1, 1, 2);

-- ---------------------------------------------------------------------------------------------
-- Orders
CREATE TABLE orders (
    id                     UUID PRIMARY KEY,
    order_number           TEXT NOT NULL CHECK (order_number ~ '^ORD-[0-9]{8}-[A-Z0-9]{6}$'),
    -- The customer (orders need an account); kept after erasure as a pseudonymous key.
    user_id                UUID,
    -- Contact email; NULL once erased.
    customer_email         TEXT,
    status                 TEXT NOT NULL DEFAULT 'PENDING'
                           CHECK (status IN ('PENDING', 'CONFIRMED', 'PROCESSING', 'SHIPPED', 'DELIVERED', 'CANCELLED')),
    payment_status         TEXT NOT NULL DEFAULT 'UNPAID'
                           CHECK (payment_status IN ('UNPAID', 'PAID', 'PARTIALLY_REFUNDED', 'REFUNDED')),
    currency               TEXT NOT NULL DEFAULT 'GBP' CHECK (currency = 'GBP'),
    subtotal_pence         BIGINT NOT NULL CHECK (subtotal_pence >= 0),
    discount_pence         BIGINT NOT NULL DEFAULT 0 CHECK (discount_pence >= 0),
    shipping_pence         BIGINT NOT NULL DEFAULT 0 CHECK (shipping_pence >= 0),
    tax_pence              BIGINT NOT NULL DEFAULT 0 CHECK (tax_pence >= 0),
    total_pence            BIGINT NOT NULL CHECK (total_pence >= 0),
    vat_rate_bp            INTEGER NOT NULL CHECK (vat_rate_bp BETWEEN 0 AND 10000),
    prices_include_vat     BOOLEAN NOT NULL,
    coupon_id              UUID REFERENCES coupons (id),
    coupon_code            TEXT,
    shipping_method        TEXT NOT NULL,
    shipping_address       JSONB NOT NULL,
    billing_address        JSONB NOT NULL,
    -- Unpaid orders are cancelled (stock released) after this.
    reservation_expires_at TIMESTAMPTZ,
    tracking_number        TEXT,
    carrier                TEXT,
    paid_at                TIMESTAMPTZ,
    shipped_at             TIMESTAMPTZ,
    delivered_at           TIMESTAMPTZ,
    cancelled_at           TIMESTAMPTZ,
    cancel_reason          TEXT,
    erased_at              TIMESTAMPTZ,
    created_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT orders_total_check CHECK (
        total_pence = subtotal_pence - discount_pence + shipping_pence
                      + CASE WHEN prices_include_vat THEN 0 ELSE tax_pence END)
);
CREATE TRIGGER orders_updated_at BEFORE UPDATE ON orders
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE UNIQUE INDEX orders_order_number_key ON orders (order_number);
-- The customer's list (keyset on created_at, id).
CREATE INDEX orders_user_recent_idx ON orders (user_id, created_at DESC, id DESC);
-- The admin list and revenue reports.
CREATE INDEX orders_recent_idx ON orders (created_at DESC, id DESC);
CREATE INDEX orders_status_idx ON orders (status, created_at DESC);
-- The expiry job's scan: unpaid pending orders by deadline.
CREATE INDEX orders_expiring_idx ON orders (reservation_expires_at)
    WHERE status = 'PENDING' AND payment_status = 'UNPAID';

CREATE TABLE order_items (
    id          UUID PRIMARY KEY,
    order_id    UUID NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    product_id  UUID NOT NULL,
    variant_id  UUID,
    -- Snapshot at purchase: later catalogue changes do not alter the order.
    sku         TEXT NOT NULL,
    title       TEXT NOT NULL,
    image_url   TEXT,
    unit_price_pence BIGINT NOT NULL CHECK (unit_price_pence >= 0),
    quantity    INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 100),
    line_total_pence BIGINT NOT NULL CHECK (line_total_pence = unit_price_pence * quantity),
    UNIQUE (order_id, position)
);
CREATE INDEX order_items_product_idx ON order_items (product_id);

CREATE TABLE order_status_history (
    id          UUID PRIMARY KEY,
    order_id    UUID NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    from_status TEXT,
    to_status   TEXT NOT NULL,
    -- NULL actor = the system (e.g. the expiry job or a webhook).
    actor_id    UUID,
    actor_role  TEXT NOT NULL,
    reason      TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX order_status_history_order_idx ON order_status_history (order_id, created_at, id);

CREATE TABLE order_notes (
    id          UUID PRIMARY KEY,
    order_id    UUID NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    author_id   UUID NOT NULL,
    body        TEXT NOT NULL CHECK (length(body) BETWEEN 1 AND 2000),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX order_notes_order_idx ON order_notes (order_id, created_at, id);

-- One redemption per order; cancelled orders give theirs back (the row is deleted).
CREATE TABLE coupon_redemptions (
    id           UUID PRIMARY KEY,
    coupon_id    UUID NOT NULL REFERENCES coupons (id),
    order_id     UUID NOT NULL UNIQUE REFERENCES orders (id) ON DELETE CASCADE,
    user_id      UUID,
    amount_pence BIGINT NOT NULL CHECK (amount_pence >= 0),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX coupon_redemptions_coupon_user_idx ON coupon_redemptions (coupon_id, user_id);

-- ---------------------------------------------------------------------------------------------
-- Idempotency records for POSTs that take an Idempotency-Key (orders, payment intents).
-- Keyed by who asked and the key; `request_hash` covers method, path and body so the same key
-- with another request is refused. `response_*` is NULL while the first request is in flight.
CREATE TABLE idempotency_records (
    caller           TEXT NOT NULL,
    key              TEXT NOT NULL,
    request_hash     TEXT NOT NULL,
    response_status  SMALLINT,
    response_headers JSONB,
    response_body    BYTEA,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- An in-flight record older than this is treated as abandoned (its request died).
    locked_until     TIMESTAMPTZ NOT NULL,
    expires_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (caller, key)
);
CREATE INDEX idempotency_records_expiry_idx ON idempotency_records (expires_at);
