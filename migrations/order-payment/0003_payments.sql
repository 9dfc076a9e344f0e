-- Payments domain: Stripe payments, received Stripe events, invoices with a gap-free yearly
-- counter, refunds, and the dispute flag on orders. Money is integer pence (GBP).

-- ---------------------------------------------------------------------------------------------
-- One row per Stripe PaymentIntent created for an order. An order may have several (a failed
-- attempt, then a retry); state only moves forward: PENDING → FAILED → SUCCEEDED is allowed
-- (a failed attempt can be retried on the same intent), SUCCEEDED and CANCELLED are final.
CREATE TABLE payments (
    id                    UUID PRIMARY KEY,
    order_id              UUID NOT NULL REFERENCES orders (id),
    user_id               UUID,
    provider              TEXT NOT NULL DEFAULT 'STRIPE' CHECK (provider IN ('STRIPE')),
    payment_intent_id     TEXT NOT NULL,
    amount_pence          BIGINT NOT NULL CHECK (amount_pence > 0),
    currency              TEXT NOT NULL DEFAULT 'GBP' CHECK (currency = 'GBP'),
    status                TEXT NOT NULL DEFAULT 'PENDING'
                          CHECK (status IN ('PENDING', 'SUCCEEDED', 'FAILED', 'CANCELLED')),
    failure_code          TEXT,
    failure_message       TEXT,
    charge_id             TEXT,
    -- Settled refunds only; pending ones are counted from `refunds`.
    amount_refunded_pence BIGINT NOT NULL DEFAULT 0,
    succeeded_at          TIMESTAMPTZ,
    failed_at             TIMESTAMPTZ,
    cancelled_at          TIMESTAMPTZ,
    -- When the reconciliation job last asked Stripe about it.
    checked_at            TIMESTAMPTZ,
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT payments_refunded_check CHECK (amount_refunded_pence BETWEEN 0 AND amount_pence)
);
CREATE TRIGGER payments_updated_at BEFORE UPDATE ON payments
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE UNIQUE INDEX payments_payment_intent_key ON payments (payment_intent_id);
CREATE INDEX payments_order_idx ON payments (order_id, created_at);
-- The reconciliation job's scan.
CREATE INDEX payments_pending_idx ON payments (created_at) WHERE status IN ('PENDING', 'FAILED');

-- ---------------------------------------------------------------------------------------------
-- Every Stripe event applied (or deliberately ignored), so a redelivery changes nothing.
CREATE TABLE stripe_events (
    id          TEXT PRIMARY KEY,
    type        TEXT NOT NULL,
    object_id   TEXT,
    -- APPLIED: changed our state; IGNORED: unknown type or unknown object; STALE: arrived
    -- after a later state (e.g. payment_failed after succeeded) and changed nothing.
    outcome     TEXT NOT NULL CHECK (outcome IN ('APPLIED', 'IGNORED', 'STALE')),
    created_at  TIMESTAMPTZ NOT NULL,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX stripe_events_object_idx ON stripe_events (object_id, received_at);

-- ---------------------------------------------------------------------------------------------
-- Invoices: numbered INV-YYYY-NNNNNN from a counter row per year, incremented in the payment's
-- transaction (a row lock, so concurrent payments queue and a rollback gives the number back:
-- no gaps, unlike a sequence). A voided invoice keeps its number.
CREATE TABLE invoice_counters (
    year        INTEGER PRIMARY KEY CHECK (year BETWEEN 2000 AND 9999),
    last_number INTEGER NOT NULL CHECK (last_number BETWEEN 1 AND 999999)
);

CREATE TABLE invoices (
    id                 UUID PRIMARY KEY,
    invoice_number     TEXT NOT NULL CHECK (invoice_number ~ '^INV-[0-9]{4}-[0-9]{6}$'),
    order_id           UUID NOT NULL REFERENCES orders (id),
    payment_id         UUID NOT NULL REFERENCES payments (id),
    user_id            UUID,
    order_number       TEXT NOT NULL,
    status             TEXT NOT NULL DEFAULT 'ISSUED' CHECK (status IN ('ISSUED', 'VOID')),
    currency           TEXT NOT NULL DEFAULT 'GBP',
    subtotal_pence     BIGINT NOT NULL,
    discount_pence     BIGINT NOT NULL,
    shipping_pence     BIGINT NOT NULL,
    tax_pence          BIGINT NOT NULL,
    total_pence        BIGINT NOT NULL,
    vat_rate_bp        INTEGER NOT NULL,
    prices_include_vat BOOLEAN NOT NULL,
    -- Snapshots: an invoice is a document and never changes with the order.
    lines              JSONB NOT NULL,
    vat_breakdown      JSONB NOT NULL,
    billing_address    JSONB NOT NULL,
    shipping_address   JSONB NOT NULL,
    customer_email     TEXT,
    issued_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    voided_at          TIMESTAMPTZ,
    voided_by          UUID,
    void_reason        TEXT,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT invoices_void_check CHECK ((status = 'VOID') = (voided_at IS NOT NULL))
);
CREATE TRIGGER invoices_updated_at BEFORE UPDATE ON invoices
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE UNIQUE INDEX invoices_invoice_number_key ON invoices (invoice_number);
-- One live invoice per order.
CREATE UNIQUE INDEX invoices_one_issued_per_order ON invoices (order_id) WHERE status = 'ISSUED';
CREATE INDEX invoices_order_idx ON invoices (order_id, issued_at DESC);

-- ---------------------------------------------------------------------------------------------
-- Refunds: the row is written (PENDING) before Stripe is asked, so the amount is reserved
-- against concurrent refunds; Stripe's webhooks settle it.
CREATE TABLE refunds (
    id               UUID PRIMARY KEY,
    payment_id       UUID NOT NULL REFERENCES payments (id),
    order_id         UUID NOT NULL REFERENCES orders (id),
    stripe_refund_id TEXT,
    amount_pence     BIGINT NOT NULL CHECK (amount_pence > 0),
    currency         TEXT NOT NULL DEFAULT 'GBP',
    reason           TEXT NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    status           TEXT NOT NULL DEFAULT 'PENDING'
                     CHECK (status IN ('PENDING', 'SUCCEEDED', 'FAILED', 'CANCELLED')),
    failure_reason   TEXT,
    -- NULL = the system (a paid order's cancellation).
    requested_by     UUID,
    settled_at       TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TRIGGER refunds_updated_at BEFORE UPDATE ON refunds
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE UNIQUE INDEX refunds_stripe_refund_key ON refunds (stripe_refund_id);
CREATE INDEX refunds_payment_idx ON refunds (payment_id, created_at);
CREATE INDEX refunds_order_idx ON refunds (order_id, created_at);

-- ---------------------------------------------------------------------------------------------
-- A dispute (chargeback) opened on an order's payment flags the order for staff.
ALTER TABLE orders
    ADD COLUMN disputed_at    TIMESTAMPTZ,
    ADD COLUMN dispute_id     TEXT,
    ADD COLUMN dispute_reason TEXT;
CREATE INDEX orders_disputed_idx ON orders (disputed_at) WHERE disputed_at IS NOT NULL;
