//! The auth service: users, roles, password hashes, sessions, refresh tokens, one-time codes and
//! the keys that sign access tokens (DESIGN.md §1 and §5).
//!
//! # Endpoints (paths as served; the gateway forwards them unchanged)
//! | route | who | module |
//! |---|---|---|
//! | `POST /v1/auth/register`, `/verify-email`, `/resend-otp` | anyone | [`register`], [`otp`] |
//! | `POST /v1/auth/login`, `/refresh` | anyone | [`login`], [`sessions`] |
//! | `POST /v1/auth/logout`, `/logout-all`; `GET /v1/auth/sessions`; `DELETE /v1/auth/sessions/{id}` | signed in | [`sessions`] |
//! | `POST /v1/auth/forgot-password`, `/reset-password` | anyone | [`password`] |
//! | `POST /v1/auth/change-password`; `GET /v1/auth/me`; `DELETE /v1/auth/account` | signed in | [`password`], [`account`] |
//! | `GET /v1/auth/users`; `PATCH /v1/auth/users/{id}` | ADMIN, SUPER_ADMIN | [`users`] |
//! | `GET /v1/auth/audit` (role/status changes, 2FA resets) | SUPER_ADMIN | [`service_kit::audit`] |
//! | `POST /v1/auth/2fa/setup`, `/confirm`, `/disable` | signed in | [`two_factor`] |
//! | `POST /v1/auth/2fa/verify` | anyone with a login challenge | [`two_factor`] |
//! | `POST /v1/auth/users/{id}/2fa/reset` | SUPER_ADMIN | [`two_factor`] |
//! | `GET /.well-known/jwks.json` | anyone | [`keys`] |
//! | `POST /v1/auth/keys/rotate` | SUPER_ADMIN | [`keys`] |
//! | `POST /internal/verify` | services | [`internal`] |
//!
//! # Design decisions
//! - **Passwords**: argon2id, m = 19456 KiB, t = 2, p = 1 (OWASP), hashed on the blocking pool,
//!   at most one hash per core at a time. Policy from the `validation` crate (12–128 chars, not
//!   common, not containing the email or name).
//! - **No enumeration**: registering a taken address answers exactly like a new one (201, same
//!   shape, a random `userId`) after the same hashing work, and creates nothing; if the existing
//!   account never verified its address a fresh verification code is sent to it (the owner may
//!   have lost the first), otherwise nothing is sent. Login answers one 401 for a wrong password
//!   and an unknown email, verifying a dummy hash for the latter. `forgot-password` and
//!   `resend-otp` always answer 202. `verify-email`/`reset-password` give one 422 (`code`) for a
//!   wrong code and an unknown address.
//! - **Unverified emails may sign in**: the user carries `emailVerified: false`; features that
//!   need a verified address check it. A suspended account gets 403 `account-suspended`, but
//!   only after the right password (so suspension reveals nothing to guessers).
//! - **Tokens**: access tokens are RS256 JWTs (`auth_client::AccessClaims`, `kid` header,
//!   `ACCESS_TOKEN_TTL_SECS`, 15 min). Refresh tokens are 32 random bytes (base64url), stored as
//!   SHA-256, valid `REFRESH_TOKEN_TTL_DAYS` (7) and rotated on every use; the session's expiry
//!   slides with each rotation. They travel **only** in the cookie
//!   `refresh_token=…; HttpOnly; Secure; SameSite=Strict; Path=/v1/auth` (never in a response
//!   body, so page scripts can never read one); non-browser clients read `Set-Cookie` and may
//!   send the token back either as that cookie or as `{"refreshToken": …}` in the body of
//!   `/refresh`. Presenting a spent refresh token revokes its whole family (its session) and
//!   answers 401 `refresh-token-reused` — also for two racing refreshes of one token: clients
//!   must serialise refreshes.
//! - **Sessions** live in Postgres and are mirrored in Redis as the gateway's allow-list
//!   (`auth_client::session_key`): see [`sessions`] for the write order. Revocations commit in
//!   Postgres, then delete the Redis keys; a Redis failure answers 503 and a retry finishes the
//!   job. Suspension, a role change, a password reset, logout-all and account deletion end every
//!   session; a password change ends the others.
//! - **Signing keys** are generated on first start, stored with the private half encrypted
//!   (AES-256-GCM under `SIGNING_KEY_ENCRYPTION_KEY`, the kid as associated data), rotated by
//!   [`rotate_signing_key`] / `POST /v1/auth/keys/rotate`; see [`keys`].
//! - **OTPs**: six digits, HMAC'd (`AUTH_HMAC_KEY`) in Redis, 10 minutes, 5 guesses then burnt,
//!   single use, at most one per minute and five per hour per account and purpose (silently);
//!   see [`otp`]. The plaintext goes only into the `auth.otp_requested` outbox row.
//! - **Throttling** of failed passwords per account (exponential lock, 30 s doubling to 15 min)
//!   and per client address, where the address is the **last** `X-Forwarded-For` hop (the one
//!   the gateway appends; earlier hops are client-controlled); see [`throttle`]. Redis down →
//!   503, never a pass.
//! - **Two-factor sign-in** (TOTP, recovery codes, two-step login, `amr`): mandatory for ADMIN
//!   and SUPER_ADMIN, optional for others; see [`two_factor`].
//! - **Admin rules**: only a SUPER_ADMIN grants or revokes ADMIN/SUPER_ADMIN or changes an
//!   administrator's status; nobody changes their own role or status; see [`users`].
//! - **Erasure** (`DELETE /v1/auth/account`): the row stays as a tombstone (`deleted+<id>@invalid`,
//!   status `DELETED`, names, phone and hash removed; a schema check enforces it), sessions are
//!   revoked and their user agents and networks erased, and `user.erasure_requested` goes out.
//! - **Events** (`user.created`, `user.email_verified`, `auth.otp_requested`,
//!   `user.erasure_requested`) are written to the outbox in the transaction of the change; the
//!   relay task in this binary publishes them (`/ready` checks the broker too).
//!
//! # Compile-checked SQL
//! Queries use `sqlx::query!` with the offline data in `services/auth/.sqlx`. After changing a
//! query or a migration, regenerate it against a migrated scratch database:
//! ```text
//! createdb -h 127.0.0.1 -U postgres auth_sqlx && for f in migrations/auth/*.sql; do
//!   psql -h 127.0.0.1 -U postgres -d auth_sqlx -q -f $f; done
//! rm -rf services/auth/.sqlx && mkdir services/auth/.sqlx && touch services/auth/src/lib.rs
//! SQLX_OFFLINE=false DATABASE_URL=postgres://postgres@127.0.0.1/auth_sqlx \
//!   SQLX_OFFLINE_DIR=$PWD/services/auth/.sqlx cargo check -p auth-service
//! ```
//! (`cargo sqlx prepare` does the same where sqlx-cli is installed.)

pub mod account;
pub mod client;
pub mod config;
pub mod crypto;
pub mod error;
pub mod internal;
pub mod keys;
pub mod login;
pub mod otp;
pub mod password;
pub mod register;
pub mod sessions;
pub mod throttle;
pub mod two_factor;
pub mod users;

use std::sync::Arc;

use service_kit::config::{CommonConfig, ConfigError, Env, ServiceSpec};
use service_kit::redis::Redis;
use service_kit::{Infra, Service, Started};
use shared_types::{DomainEvent, EventPayload};
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use utoipa_axum::router::OpenApiRouter;

pub use config::{AuthSettings, Config};
pub use users::{AdminOutcome, CreateAdminError, create_admin};

static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/auth");

// The audit trail's route reads the service's own pool.
impl axum::extract::FromRef<AppState> for PgPool {
    fn from_ref(state: &AppState) -> Self {
        state.db.clone()
    }
}

/// What its handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Its own database.
    pub db: PgPool,
    /// Redis (the session allow-list, OTPs, throttling).
    pub redis: Redis,
    /// Auth's own settings.
    pub settings: Arc<AuthSettings>,
    /// The access-token signing keys.
    pub keys: keys::KeyStore,
    /// argon2id.
    pub hasher: crypto::PasswordHasher,
    /// Keyed hashes of values kept in Redis.
    pub hmac: crypto::Hmacer,
    /// Seals TOTP secrets at rest.
    pub totp_cipher: crypto::KeyCipher,
}

/// A domain event from this service, carrying the current request id.
pub(crate) fn event<T: EventPayload>(payload: T) -> DomainEvent<T> {
    let event = DomainEvent::new(AuthService::SPEC.name, payload);
    match service_kit::request_id::current() {
        Some(request_id) => event.correlation_id(request_id),
        None => event,
    }
}

/// Retires the active signing key and activates a new one (for `cargo xtask rotate-keys`);
/// returns the new kid. The encryption key and token lifetime come from the process
/// environment (`SIGNING_KEY_ENCRYPTION_KEY`, `ACCESS_TOKEN_TTL_SECS`), as the service reads them.
/// Running services pick the new key up within [`keys::RELOAD_EVERY`].
pub async fn rotate_signing_key(pool: &PgPool) -> anyhow::Result<String> {
    let config = Config::from_env(AuthService::SPEC, &Env::from_process())?;
    let cipher = crypto::KeyCipher::new(config.auth.signing_key_encryption_key.expose());
    keys::ensure_active_key(pool, &cipher).await?;
    keys::rotate(pool, &cipher, config.auth.access_token_ttl).await
}

/// The auth service.
pub struct AuthService;

impl Service for AuthService {
    const SPEC: ServiceSpec = ServiceSpec {
        name: "auth",
        default_port: 3001,
        database: Some("lomash_auth"),
    };
    const PUBLISHES_EVENTS: bool = true;
    type Config = Config;
    type State = AppState;

    fn migrator() -> Option<&'static Migrator> {
        Some(&MIGRATOR)
    }

    fn config(env: &Env) -> Result<Config, ConfigError> {
        Config::from_env(Self::SPEC, env)
    }

    fn common(config: &Config) -> &CommonConfig {
        &config.common
    }

    /// `auth-service create-admin <email>` (password from `ADMIN_PASSWORD`, else generated and
    /// printed once) and `auth-service rotate-keys`.
    fn admin_command(
        command: &str,
        args: Vec<String>,
        db: PgPool,
    ) -> Option<futures::future::BoxFuture<'static, anyhow::Result<()>>> {
        match command {
            "create-admin" => Some(Box::pin(async move {
                let email = args
                    .first()
                    .ok_or_else(|| anyhow::anyhow!("usage: auth-service create-admin <email>"))?;
                let (password, generated) = match std::env::var("ADMIN_PASSWORD") {
                    Ok(password) if !password.is_empty() => (password, false),
                    _ => (crypto::random_token(), true),
                };
                match create_admin(&db, email, &password).await? {
                    AdminOutcome::Created(id) => {
                        println!("created SUPER_ADMIN {email} ({id})");
                        if generated {
                            println!("password (shown once): {password}");
                        }
                    }
                    AdminOutcome::Promoted(id) => {
                        println!("promoted {email} ({id}) to SUPER_ADMIN; password unchanged");
                    }
                }
                Ok(())
            })),
            "rotate-keys" => Some(Box::pin(async move {
                let kid = rotate_signing_key(&db).await?;
                println!("new active signing key: {kid}");
                Ok(())
            })),
            _ => None,
        }
    }

    fn routes() -> OpenApiRouter<AppState> {
        OpenApiRouter::new()
            .merge(register::router())
            .merge(otp::router())
            .merge(login::router())
            .merge(sessions::router())
            .merge(password::router())
            .merge(account::router())
            .merge(users::router())
            .merge(two_factor::router())
            .merge(keys::router())
            .merge(internal::router())
            .nest("/v1/auth", service_kit::audit::router())
    }

    async fn start(config: Config, infra: Infra) -> anyhow::Result<Started<AppState>> {
        let db = infra.db()?;
        let settings = config.auth;
        let cipher = crypto::KeyCipher::new(settings.signing_key_encryption_key.expose());
        let keys = keys::KeyStore::open(db.clone(), cipher, settings.access_token_ttl).await?;
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let hasher = crypto::PasswordHasher::new(cores);
        let hmac = crypto::Hmacer::new(settings.hmac_key.expose());
        let totp_cipher = two_factor::secret_cipher(settings.signing_key_encryption_key.expose());

        Ok(Started::new(AppState {
            db,
            redis: infra.redis.clone(),
            settings: Arc::new(settings),
            keys,
            hasher,
            hmac,
            totp_cipher,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The routes this service serves; a change here is an API change (and the gateway's route
    /// table must follow).
    #[test]
    fn the_openapi_document_lists_every_route() {
        let routes = service_kit::service::route_list::<AuthService>();
        assert_eq!(
            routes,
            [
                "DELETE /v1/auth/account",
                "DELETE /v1/auth/sessions/{id}",
                "GET /.well-known/jwks.json",
                "GET /v1/auth/audit",
                "GET /v1/auth/me",
                "GET /v1/auth/sessions",
                "GET /v1/auth/users",
                "PATCH /v1/auth/users/{id}",
                "POST /internal/verify",
                "POST /v1/auth/2fa/confirm",
                "POST /v1/auth/2fa/disable",
                "POST /v1/auth/2fa/setup",
                "POST /v1/auth/2fa/verify",
                "POST /v1/auth/change-password",
                "POST /v1/auth/forgot-password",
                "POST /v1/auth/keys/rotate",
                "POST /v1/auth/login",
                "POST /v1/auth/logout",
                "POST /v1/auth/logout-all",
                "POST /v1/auth/refresh",
                "POST /v1/auth/register",
                "POST /v1/auth/resend-otp",
                "POST /v1/auth/reset-password",
                "POST /v1/auth/users/{id}/2fa/reset",
                "POST /v1/auth/verify-email",
            ]
        );
    }

    /// The document states the password policy's length from the policy itself (utoipa takes
    /// literals only, so this pins them), and a first character repeated throughout is refused
    /// there as by the policy.
    #[test]
    fn new_passwords_are_documented_with_the_policy_they_meet() {
        let doc = serde_json::to_value(service_kit::service::openapi::<AuthService>())
            .expect("the document serialises");
        for (schema, field) in [
            ("RegisterRequest", "password"),
            ("ChangePasswordRequest", "newPassword"),
            ("ResetPasswordRequest", "newPassword"),
        ] {
            let documented = &doc["components"]["schemas"][schema]["properties"][field];
            assert_eq!(
                documented["minLength"],
                validation::PASSWORD_MIN_CHARS,
                "{schema}"
            );
            assert_eq!(
                documented["maxLength"],
                validation::PASSWORD_MAX_CHARS,
                "{schema}"
            );
            assert_eq!(documented["pattern"], "^([\\s\\S])(?!\\1*$)", "{schema}");
        }
        let context = validation::PasswordContext::default();
        assert!(validation::check_password("aaaaaaaaaaaa", &context).is_err());
        assert!(validation::check_password("Walnut-Shaker-Larder", &context).is_ok());
    }
}
