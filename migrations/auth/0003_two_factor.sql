-- Two-factor sign-in (TOTP, RFC 6238) and its recovery codes; the sign-in methods of a session.

-- One row per user who started enrolment. The secret is AES-256-GCM sealed (nonce || ciphertext,
-- the user id as associated data), never stored or logged in the clear. Enrolment is pending
-- until a first code confirms it (`enabled_at`).
CREATE TABLE two_factor (
    user_id        UUID PRIMARY KEY CONSTRAINT two_factor_user_fkey REFERENCES users (id) ON DELETE CASCADE,
    secret_sealed  BYTEA NOT NULL,
    enabled_at     TIMESTAMPTZ,
    -- The last RFC 6238 time step accepted: a code of that step or an earlier one is refused,
    -- so a code can never be used twice (RFC 6238 §5.2).
    last_used_step BIGINT,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TRIGGER two_factor_set_updated_at BEFORE UPDATE ON two_factor
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Ten single-use codes per enrolment, stored as SHA-256 (they are 80 random bits each), shown
-- once when enrolment is confirmed; replaced as a set whenever 2FA is enabled again.
CREATE TABLE recovery_codes (
    id         UUID PRIMARY KEY,
    user_id    UUID NOT NULL CONSTRAINT recovery_codes_user_fkey REFERENCES users (id) ON DELETE CASCADE,
    code_hash  BYTEA NOT NULL CONSTRAINT recovery_codes_hash_key UNIQUE,
    used_at    TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX recovery_codes_user_idx ON recovery_codes (user_id);

-- How the session signed in (RFC 8176 `amr`): refreshed access tokens carry the same methods.
ALTER TABLE sessions ADD COLUMN amr TEXT[] NOT NULL DEFAULT '{pwd}';
