-- Messages, the delivery log, recipients known from events, preferences, suppressions and
-- device tokens.

-- What we know about an account's addresses (fed by user.created), for events that carry only
-- a user id (ticket.updated, payment.succeeded without an email).
CREATE TABLE recipients (
    user_id     UUID PRIMARY KEY,
    email       TEXT NOT NULL,
    phone       TEXT,
    first_name  TEXT NOT NULL DEFAULT '',
    last_name   TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX recipients_email_idx ON recipients (lower(email));
CREATE TRIGGER recipients_updated_at BEFORE UPDATE ON recipients
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- The delivery log: one row per message to one recipient on one channel.
CREATE TABLE notifications (
    id                  UUID PRIMARY KEY,
    channel             TEXT NOT NULL CONSTRAINT notifications_channel_check
                        CHECK (channel IN ('EMAIL', 'SMS', 'PUSH')),
    template            TEXT NOT NULL,
    category            TEXT NOT NULL CONSTRAINT notifications_category_check
                        CHECK (category IN ('TRANSACTIONAL', 'MARKETING')),
    recipient           TEXT NOT NULL,
    user_id             UUID,
    source_event_id     UUID,
    status              TEXT NOT NULL DEFAULT 'QUEUED' CONSTRAINT notifications_status_check
                        CHECK (status IN ('QUEUED', 'SENT', 'FAILED', 'SUPPRESSED')),
    -- The rendered message; emptied once a sensitive one (an OTP) is settled.
    subject             TEXT,
    body_text           TEXT,
    body_html           TEXT,
    -- [{filename, contentType, data (base64)} | {filename, contentType, storageKey}]
    attachments         JSONB NOT NULL DEFAULT '[]',
    sensitive           BOOLEAN NOT NULL DEFAULT false,
    provider            TEXT,
    provider_message_id TEXT,
    attempts            INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error          TEXT,
    next_attempt_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at             TIMESTAMPTZ,
    resent_from         UUID REFERENCES notifications (id) ON DELETE SET NULL,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- One message per event, template, channel and recipient, whatever happens upstream.
CREATE UNIQUE INDEX notifications_one_per_event
    ON notifications (source_event_id, template, channel, recipient)
    WHERE source_event_id IS NOT NULL;
-- The sender's claim query.
CREATE INDEX notifications_due_idx ON notifications (next_attempt_at) WHERE status = 'QUEUED';
-- The admin list (newest first, filtered).
CREATE INDEX notifications_created_idx ON notifications (created_at DESC, id DESC);
CREATE INDEX notifications_recipient_idx ON notifications (lower(recipient), created_at DESC);
CREATE INDEX notifications_user_idx ON notifications (user_id) WHERE user_id IS NOT NULL;
CREATE TRIGGER notifications_updated_at BEFORE UPDATE ON notifications
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- What the `log` provider "sent" (local runs), readable at /v1/notifications/dev/outbox.
CREATE TABLE dev_outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notification_id UUID NOT NULL,
    channel         TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    subject         TEXT,
    body_text       TEXT NOT NULL,
    body_html       TEXT,
    attachments     JSONB NOT NULL DEFAULT '[]',
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Per user, channel and category. Transactional messages always go: a row can only turn
-- marketing off (or back on).
CREATE TABLE preferences (
    user_id     UUID NOT NULL,
    channel     TEXT NOT NULL CHECK (channel IN ('EMAIL', 'SMS', 'PUSH')),
    category    TEXT NOT NULL CHECK (category IN ('TRANSACTIONAL', 'MARKETING')),
    enabled     BOOLEAN NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, channel, category),
    CONSTRAINT preferences_transactional_always_on CHECK (category = 'MARKETING' OR enabled)
);
CREATE TRIGGER preferences_updated_at BEFORE UPDATE ON preferences
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Addresses that unsubscribed from marketing through a one-click link (accounts or not).
CREATE TABLE suppressions (
    address     TEXT NOT NULL,
    channel     TEXT NOT NULL CHECK (channel IN ('EMAIL', 'SMS', 'PUSH')),
    category    TEXT NOT NULL CHECK (category = 'MARKETING'),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (address, channel, category)
);

-- Push device tokens.
CREATE TABLE device_tokens (
    id          UUID PRIMARY KEY,
    user_id     UUID NOT NULL,
    token       TEXT NOT NULL CONSTRAINT device_tokens_token_key UNIQUE,
    platform    TEXT NOT NULL CHECK (platform IN ('IOS', 'ANDROID', 'WEB')),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX device_tokens_user_idx ON device_tokens (user_id);
CREATE TRIGGER device_tokens_updated_at BEFORE UPDATE ON device_tokens
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- The phone number a booking was made with (from booking.created), for the confirmation and
-- reminder SMS whose events carry no phone.
CREATE TABLE booking_contacts (
    booking_id  UUID PRIMARY KEY,
    phone       TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
