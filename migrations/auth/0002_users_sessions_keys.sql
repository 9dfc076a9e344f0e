-- Users, sessions, refresh tokens and the RS256 signing keys of access tokens.
-- Constraint names are stable: the service maps violations to problem documents by name.

CREATE TABLE users (
    id                UUID PRIMARY KEY,
    -- Lower-cased by the service (validation::Email); a tombstone `deleted+<id>@invalid` once erased.
    email             TEXT NOT NULL,
    -- argon2id PHC string; NULL only once the account is erased.
    password_hash     TEXT,
    first_name        TEXT,
    last_name         TEXT,
    -- E.164.
    phone             TEXT,
    role              TEXT NOT NULL DEFAULT 'CUSTOMER',
    status            TEXT NOT NULL DEFAULT 'ACTIVE',
    email_verified_at TIMESTAMPTZ,
    deleted_at        TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT users_role_check
        CHECK (role IN ('SUPER_ADMIN', 'ADMIN', 'CONSULTANT', 'CUSTOMER')),
    CONSTRAINT users_status_check
        CHECK (status IN ('ACTIVE', 'SUSPENDED', 'DELETED')),
    CONSTRAINT users_email_lower_check CHECK (email = lower(email)),
    -- A live account can sign in; an erased one keeps no personal data at all.
    CONSTRAINT users_live_has_password_check
        CHECK (status = 'DELETED' OR password_hash IS NOT NULL),
    CONSTRAINT users_deleted_is_erased_check
        CHECK (status <> 'DELETED' OR (password_hash IS NULL AND first_name IS NULL
                                       AND last_name IS NULL AND phone IS NULL
                                       AND deleted_at IS NOT NULL))
);
-- One account per address (tombstones are unique by construction).
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
-- Admin search by email prefix (`LIKE 'jan%'`).
CREATE INDEX users_email_prefix_idx ON users (lower(email) text_pattern_ops);
CREATE INDEX users_created_at_idx ON users (created_at DESC, id DESC);
CREATE TRIGGER users_set_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- A signed-in device. Live while revoked_at IS NULL AND expires_at > now(); mirrored in Redis
-- (`<prefix>:session:<id>`) as the allow-list the gateway checks.
CREATE TABLE sessions (
    id             UUID PRIMARY KEY,
    user_id        UUID NOT NULL CONSTRAINT sessions_user_fkey REFERENCES users (id) ON DELETE CASCADE,
    -- The refresh-token family of this session (one family per session).
    family_id      UUID NOT NULL CONSTRAINT sessions_family_key UNIQUE,
    -- Truncated to 256 characters.
    user_agent     TEXT,
    -- The client's network, never its address: IPv4 /24, IPv6 /48 (e.g. `203.0.113.0/24`).
    ip_network     TEXT,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at     TIMESTAMPTZ NOT NULL,
    revoked_at     TIMESTAMPTZ,
    revoked_reason TEXT,
    CONSTRAINT sessions_revoked_reason_check CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL))
);
CREATE INDEX sessions_user_idx ON sessions (user_id, created_at DESC);

-- Opaque refresh tokens, stored as the SHA-256 of the token. Rotated on every use: the used
-- one keeps used_at, so presenting it again is detected as reuse.
CREATE TABLE refresh_tokens (
    id          UUID PRIMARY KEY,
    token_hash  BYTEA NOT NULL CONSTRAINT refresh_tokens_hash_key UNIQUE,
    family_id   UUID NOT NULL,
    session_id  UUID NOT NULL CONSTRAINT refresh_tokens_session_fkey REFERENCES sessions (id) ON DELETE CASCADE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ,
    CONSTRAINT refresh_tokens_hash_length_check CHECK (octet_length(token_hash) = 32)
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

-- RS256 keys signing access tokens. The active key is the one not retired; a retired key stays
-- published in the JWKS until every token it signed has expired.
CREATE TABLE signing_keys (
    kid                   TEXT PRIMARY KEY,
    algorithm             TEXT NOT NULL DEFAULT 'RS256',
    -- AES-256-GCM (nonce || ciphertext) of the PKCS#8 PEM, under SIGNING_KEY_ENCRYPTION_KEY,
    -- with the kid as associated data.
    private_key_encrypted BYTEA NOT NULL,
    -- The public key's modulus and exponent, base64url without padding (as in a JWK).
    public_n              TEXT NOT NULL,
    public_e              TEXT NOT NULL,
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    activated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    retired_at            TIMESTAMPTZ,
    CONSTRAINT signing_keys_algorithm_check CHECK (algorithm = 'RS256')
);
-- At most one active key.
CREATE UNIQUE INDEX signing_keys_one_active_key ON signing_keys ((true)) WHERE retired_at IS NULL;
