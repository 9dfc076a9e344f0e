//! Two-factor sign-in: TOTP (RFC 6238: HMAC-SHA1, six digits, 30 s steps, one step of skew
//! either side) with ten single-use recovery codes.
//!
//! - **Enrolment**: `POST /v1/auth/2fa/setup` (signed in) makes a fresh secret and answers it with
//!   its `otpauth://` URI and a QR code (SVG); it stays pending until `POST /v1/auth/2fa/confirm`
//!   presents a current code, which enables it and answers ten recovery codes, shown this once
//!   (stored as SHA-256: they are 80 random bits each). A pending setup may be restarted; an
//!   enabled one must be disabled first (409).
//! - **Sign-in**: with 2FA on, `POST /v1/auth/login` answers a challenge instead of tokens
//!   ([`begin_challenge`]): 256 random bits, kept in Redis (by its SHA-256) bound to the user for
//!   [`CHALLENGE_TTL_SECS`], single use. `POST /v1/auth/2fa/verify {challengeId, code}` with a
//!   TOTP or a recovery code opens the session, whose tokens carry `amr: ["pwd","otp"]` (refreshes
//!   keep it). A wrong code is 401 `invalid-second-factor`; after [`CHALLENGE_MAX_ATTEMPTS`] the
//!   challenge is gone and the password is needed again. Wrong codes also count as failed sign-ins
//!   of the account and the client address ([`throttle`]), so guessing across many challenges
//!   runs into the same lock as guessing passwords.
//! - **Replay**: the row keeps the last time step accepted; a code of that step or an earlier one
//!   is refused (RFC 6238 §5.2), under a row lock so two racing requests cannot both pass.
//! - **Disable** (`POST /v1/auth/2fa/disable {code}`) needs a current code. ADMIN and SUPER_ADMIN
//!   must keep 2FA (403): a lost device is a recovery code or a SUPER_ADMIN's
//!   `POST /v1/auth/users/{id}/2fa/reset`, which also ends the user's sessions.
//! - **Secrets at rest**: AES-256-GCM (the user id as associated data) under a key derived from
//!   `SIGNING_KEY_ENCRYPTION_KEY` for this purpose alone ([`secret_cipher`]); never logged.
//! - **Mandatory for administrators**: the services' identity extractors and the gateway refuse an
//!   ADMIN or SUPER_ADMIN whose token lacks `otp` (`service_kit::caller`); the routes here and the
//!   caller's own session routes take `FirstFactorCaller` so they can enrol first.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use service_kit::caller::FirstFactorCaller;
use service_kit::{AdminCaller, Problem, Role, ValidatedJson};
use sqlx::PgTransaction;
use totp_rs::{Algorithm, Builder, Totp};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use validator::Validate;

use crate::account::{self, User, UserStatus};
use crate::client::ClientMeta;
use crate::crypto::{self, KeyCipher};
use crate::error::{AuthError, AuthResult};
use crate::{AppState, sessions, throttle};

/// Issuer shown by authenticator apps.
pub const ISSUER: &str = "Lomash Wood";
/// Seconds a login challenge lives.
pub const CHALLENGE_TTL_SECS: u64 = 300;
/// Wrong codes a challenge survives before it is deleted.
pub const CHALLENGE_MAX_ATTEMPTS: u32 = 5;
/// Recovery codes per enrolment.
pub const RECOVERY_CODES: usize = 10;
const SECRET_BYTES: usize = 20;
const STEP_SECS: u64 = 30;

/// The cipher sealing TOTP secrets: AES-256-GCM under a key of its own, derived from the
/// signing-key encryption secret with a purpose label, so a TOTP ciphertext can never be
/// opened as a signing key or the other way round.
pub fn secret_cipher(signing_key_encryption_key: &str) -> KeyCipher {
    KeyCipher::new(&format!(
        "lomash-auth/totp-secrets/v1\0{signing_key_encryption_key}"
    ))
}

fn totp(secret: Vec<u8>, account_name: &str) -> AuthResult<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(STEP_SECS)
        .with_secret(secret)
        .with_issuer(Some(ISSUER))
        .with_account_name(account_name.replace(':', "_"))
        .build()
        .map_err(|e| AuthError::Internal(anyhow::anyhow!("TOTP parameters: {e}")))
}

fn now_secs() -> u64 {
    u64::try_from(Utc::now().timestamp()).unwrap_or(0)
}

/// A code as typed: digits and letters only, lower case (spaces and dashes dropped).
fn normalise(code: &str) -> String {
    code.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn is_totp_shape(code: &str) -> bool {
    code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())
}

/// A recovery code: 80 random bits as four groups of four base32 characters.
fn recovery_code() -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut bytes = [0u8; 10];
    rand::rng().fill_bytes(&mut bytes);
    let mut bits: u128 = 0;
    for byte in bytes {
        bits = (bits << 8) | u128::from(byte);
    }
    let chars: Vec<char> = (0..16)
        .map(|i| char::from(ALPHABET[((bits >> (75 - 5 * i)) & 31) as usize]))
        .collect();
    chars
        .chunks(4)
        .map(|group| group.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// `two_factor` columns: the sealed secret, when it was enabled, the last step used.
type EnrolmentRow = (Vec<u8>, Option<DateTime<Utc>>, Option<i64>);

/// The user's 2FA row, locked.
struct Enrolment {
    secret: Vec<u8>,
    enabled: bool,
    last_used_step: Option<i64>,
}

async fn lock_enrolment(
    tx: &mut PgTransaction<'_>,
    state: &AppState,
    user_id: Uuid,
) -> AuthResult<Option<Enrolment>> {
    let row: Option<EnrolmentRow> = sqlx::query_as(
        "SELECT secret_sealed, enabled_at, last_used_step FROM two_factor
         WHERE user_id = $1 FOR UPDATE",
    )
    .bind(user_id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((sealed, enabled_at, last_used_step)) = row else {
        return Ok(None);
    };
    let secret = state
        .totp_cipher
        .decrypt(&sealed, user_id.as_bytes())
        .map_err(AuthError::Crypto)?;
    Ok(Some(Enrolment {
        secret,
        enabled: enabled_at.is_some(),
        last_used_step,
    }))
}

/// Whether 2FA is on for `user_id`.
pub(crate) async fn is_enabled(state: &AppState, user_id: Uuid) -> AuthResult<bool> {
    let enabled: Option<bool> =
        sqlx::query_scalar("SELECT enabled_at IS NOT NULL FROM two_factor WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&state.db)
            .await?;
    Ok(enabled.unwrap_or(false))
}

/// Checks `code` as a TOTP of `enrolment`, then (when `recovery` allows and it is not a TOTP) as
/// one of the user's unused recovery codes, spending what matched. `false` for a wrong, replayed
/// or spent code.
async fn accept_code(
    tx: &mut PgTransaction<'_>,
    user: &User,
    enrolment: &Enrolment,
    code: &str,
    recovery: bool,
) -> AuthResult<bool> {
    let code = normalise(code);
    if is_totp_shape(&code) {
        let totp = totp(enrolment.secret.clone(), &user.email)?;
        let Some(step) = totp.check(&code, now_secs()) else {
            return Ok(false);
        };
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        if enrolment.last_used_step.is_some_and(|last| step <= last) {
            tracing::warn!(user_id = %user.id, "a TOTP code was presented again; refused");
            return Ok(false);
        }
        sqlx::query("UPDATE two_factor SET last_used_step = $2 WHERE user_id = $1")
            .bind(user.id)
            .bind(step)
            .execute(&mut **tx)
            .await?;
        return Ok(true);
    }
    if !recovery || code.len() != 16 {
        return Ok(false);
    }
    let spent: Option<Uuid> = sqlx::query_scalar(
        "UPDATE recovery_codes SET used_at = now()
         WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL RETURNING id",
    )
    .bind(user.id)
    .bind(crypto::sha256(&code))
    .fetch_optional(&mut **tx)
    .await?;
    if spent.is_some() {
        tracing::info!(user_id = %user.id, "signed in with a recovery code");
    }
    Ok(spent.is_some())
}

/// The active user behind a caller.
async fn active_user(state: &AppState, user_id: Uuid) -> AuthResult<User> {
    let mut conn = state.db.acquire().await?;
    match account::find_by_id(&mut conn, user_id).await? {
        Some(user) if user.status == UserStatus::Active => Ok(user),
        _ => Err(AuthError::NotFound("user")),
    }
}

fn wrong_code_field() -> AuthError {
    AuthError::field("code", "is incorrect, expired or already used")
}

/// `POST /v1/auth/2fa/setup` answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetupResponse {
    /// The shared secret, base32 (for typing into an authenticator app).
    #[schema(example = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")]
    pub secret: String,
    /// `otpauth://totp/…` URI (what the QR code encodes).
    pub otpauth_uri: String,
    /// The URI as a QR code, an SVG document.
    pub qr_svg: String,
}

/// Starts (or restarts) enrolment: a fresh secret, pending until confirmed.
#[utoipa::path(
    post,
    path = "/v1/auth/2fa/setup",
    tag = "two-factor",
    responses(
        (status = 200, description = "A new pending secret; confirm it with a code", body = SetupResponse),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Two-factor sign-in is already on (disable it first)", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn setup(
    State(state): State<AppState>,
    FirstFactorCaller(caller): FirstFactorCaller,
) -> AuthResult<Response> {
    let user = active_user(&state, caller.user_id).await?;
    let mut secret = vec![0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut secret);
    let totp = totp(secret.clone(), &user.email)?;
    let otpauth_uri = totp
        .to_url()
        .map_err(|e| AuthError::Internal(anyhow::anyhow!("otpauth URI: {e}")))?;
    let qr_svg = qrcode::QrCode::new(otpauth_uri.as_bytes())
        .map_err(|e| AuthError::Internal(anyhow::anyhow!("QR code: {e}")))?
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    let sealed = state.totp_cipher.encrypt(&secret, user.id.as_bytes())?;

    let mut tx = state.db.begin().await?;
    let enabled: Option<bool> = sqlx::query_scalar(
        "SELECT enabled_at IS NOT NULL FROM two_factor WHERE user_id = $1 FOR UPDATE",
    )
    .bind(user.id)
    .fetch_optional(&mut *tx)
    .await?;
    if enabled == Some(true) {
        return Err(AuthError::Conflict(
            "two-factor-enabled",
            "Two-factor sign-in is already on; disable it before enrolling again.",
        ));
    }
    sqlx::query(
        "INSERT INTO two_factor (user_id, secret_sealed) VALUES ($1, $2)
         ON CONFLICT (user_id) DO UPDATE
         SET secret_sealed = EXCLUDED.secret_sealed, enabled_at = NULL, last_used_step = NULL",
    )
    .bind(user.id)
    .bind(&sealed)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, "two-factor enrolment started");
    Ok((
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        Json(SetupResponse {
            secret: totp.secret().to_base32(),
            otpauth_uri,
            qr_svg,
        }),
    )
        .into_response())
}

/// A body carrying one code.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CodeRequest {
    /// A current six-digit TOTP code (or, where accepted, a recovery code).
    #[validate(length(min = 1, max = 64, message = "is required"))]
    #[schema(example = "123456", min_length = 1, max_length = 64)]
    pub code: String,
}

/// `POST /v1/auth/2fa/confirm` answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryCodes {
    /// Ten single-use codes, each good for one sign-in or one disable instead of a TOTP code.
    /// Shown only now.
    pub recovery_codes: Vec<String>,
}

/// Confirms enrolment with a current code: 2FA is on from now and the recovery codes are
/// answered once. Sign in again for a session with the second factor.
#[utoipa::path(
    post,
    path = "/v1/auth/2fa/confirm",
    tag = "two-factor",
    request_body = CodeRequest,
    responses(
        (status = 200, description = "Two-factor sign-in is on; the recovery codes (shown once)", body = RecoveryCodes),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 409, description = "No pending enrolment, or already on", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Wrong code", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong codes", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn confirm(
    State(state): State<AppState>,
    FirstFactorCaller(caller): FirstFactorCaller,
    meta: ClientMeta,
    ValidatedJson(request): ValidatedJson<CodeRequest>,
) -> AuthResult<Response> {
    let user = active_user(&state, caller.user_id).await?;
    let throttle_key = throttle::account_key(&user.email);
    throttle::check(&state, &throttle_key, &meta).await?;
    let mut tx = state.db.begin().await?;
    let enrolment = match lock_enrolment(&mut tx, &state, user.id).await? {
        Some(enrolment) if !enrolment.enabled => enrolment,
        Some(_) => {
            return Err(AuthError::Conflict(
                "two-factor-enabled",
                "Two-factor sign-in is already on.",
            ));
        }
        None => {
            return Err(AuthError::Conflict(
                "two-factor-not-started",
                "Start with POST /v1/auth/2fa/setup.",
            ));
        }
    };
    if !accept_code(&mut tx, &user, &enrolment, &request.code, false).await? {
        drop(tx);
        throttle::record_failure(&state, &throttle_key, &meta).await?;
        return Err(wrong_code_field());
    }
    sqlx::query("UPDATE two_factor SET enabled_at = now() WHERE user_id = $1")
        .bind(user.id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
        .bind(user.id)
        .execute(&mut *tx)
        .await?;
    let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| recovery_code()).collect();
    for code in &codes {
        sqlx::query("INSERT INTO recovery_codes (id, user_id, code_hash) VALUES ($1, $2, $3)")
            .bind(Uuid::now_v7())
            .bind(user.id)
            .bind(crypto::sha256(&normalise(code)))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    throttle::reset(&state, &throttle_key).await?;
    tracing::info!(user_id = %user.id, "two-factor sign-in enabled");
    Ok((
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        Json(RecoveryCodes {
            recovery_codes: codes,
        }),
    )
        .into_response())
}

/// Turns 2FA off with a current code (TOTP or recovery). ADMIN and SUPER_ADMIN must keep it.
#[utoipa::path(
    post,
    path = "/v1/auth/2fa/disable",
    tag = "two-factor",
    request_body = CodeRequest,
    responses(
        (status = 204, description = "Two-factor sign-in is off; the recovery codes are void"),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Mandatory for administrators", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Two-factor sign-in is not on", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Wrong code", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong codes", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn disable(
    State(state): State<AppState>,
    FirstFactorCaller(caller): FirstFactorCaller,
    meta: ClientMeta,
    ValidatedJson(request): ValidatedJson<CodeRequest>,
) -> AuthResult<StatusCode> {
    let user = active_user(&state, caller.user_id).await?;
    if user.role.requires_second_factor() {
        return Err(AuthError::Forbidden(
            "Two-factor sign-in is mandatory for administrators; a SUPER_ADMIN can reset it.",
        ));
    }
    let throttle_key = throttle::account_key(&user.email);
    throttle::check(&state, &throttle_key, &meta).await?;
    let mut tx = state.db.begin().await?;
    let enrolment = match lock_enrolment(&mut tx, &state, user.id).await? {
        Some(enrolment) if enrolment.enabled => enrolment,
        _ => {
            return Err(AuthError::Conflict(
                "two-factor-not-enabled",
                "Two-factor sign-in is not on.",
            ));
        }
    };
    if !accept_code(&mut tx, &user, &enrolment, &request.code, true).await? {
        drop(tx);
        throttle::record_failure(&state, &throttle_key, &meta).await?;
        return Err(wrong_code_field());
    }
    remove(&mut tx, user.id).await?;
    tx.commit().await?;
    throttle::reset(&state, &throttle_key).await?;
    tracing::info!(user_id = %user.id, "two-factor sign-in disabled");
    Ok(StatusCode::NO_CONTENT)
}

async fn remove(tx: &mut PgTransaction<'_>, user_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM two_factor WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A SUPER_ADMIN clears another user's 2FA (a lost device): enrolment and recovery codes are
/// gone and every session of the user ends, so they sign in again and (if an administrator)
/// must enrol before using admin routes. Audited (`user` / `two_factor.reset`).
#[utoipa::path(
    post,
    path = "/v1/auth/users/{id}/2fa/reset",
    tag = "two-factor",
    params(("id" = Uuid, Path, description = "User id")),
    responses(
        (status = 204, description = "Two-factor sign-in cleared; the user's sessions ended"),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a SUPER_ADMIN with the second factor, or the caller's own account", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user, or 2FA is not set up", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Session storage unavailable; retry", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn reset(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Path(id): Path<Uuid>,
) -> AuthResult<StatusCode> {
    caller.require(&[Role::SuperAdmin])?;
    if caller.user_id == id {
        return Err(AuthError::Forbidden(
            "Nobody resets their own two-factor sign-in.",
        ));
    }
    let mut tx = state.db.begin().await?;
    if account::find_by_id_for_update(&mut tx, id).await?.is_none() {
        return Err(AuthError::NotFound("user"));
    }
    let enabled: Option<bool> = sqlx::query_scalar(
        "SELECT enabled_at IS NOT NULL FROM two_factor WHERE user_id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(enabled) = enabled else {
        return Err(AuthError::NotFound("two-factor enrolment"));
    };
    remove(&mut tx, id).await?;
    let ended = sessions::end_user_sessions(&mut tx, id, "two-factor-reset", None).await?;
    service_kit::audit::Entry::new(&caller, "user", id, "two_factor.reset")
        .before(&serde_json::json!({ "twoFactor": if enabled { "ENABLED" } else { "PENDING" } }))
        .after(&serde_json::json!({ "twoFactor": "OFF" }))
        .record(&mut tx)
        .await?;
    tx.commit().await?;
    sessions::forget(&state, &ended).await?;
    tracing::warn!(actor = %caller.user_id, user_id = %id, "two-factor sign-in reset by a SUPER_ADMIN");
    Ok(StatusCode::NO_CONTENT)
}

/// What `POST /v1/auth/login` answers when the account uses 2FA.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TwoFactorChallenge {
    /// Always `true`: send a code to `POST /v1/auth/2fa/verify`.
    pub two_factor_required: bool,
    /// The challenge to answer (single use).
    pub challenge_id: String,
    /// When the challenge expires.
    pub expires_at: DateTime<Utc>,
}

fn challenge_key(state: &AppState, challenge_id: &str) -> String {
    state
        .redis
        .key("2fa-challenge", hex::encode(crypto::sha256(challenge_id)))
}

/// The challenge a login answers when the password was right and `user` uses 2FA.
pub(crate) async fn begin_challenge(state: &AppState, user: &User) -> AuthResult<Response> {
    let challenge_id = crypto::random_token();
    let mut redis = state.redis.conn();
    redis::pipe()
        .atomic()
        .cmd("HSET")
        .arg(challenge_key(state, &challenge_id))
        .arg("user")
        .arg(user.id.to_string())
        .arg("attempts")
        .arg(0)
        .ignore()
        .cmd("EXPIRE")
        .arg(challenge_key(state, &challenge_id))
        .arg(CHALLENGE_TTL_SECS)
        .ignore()
        .query_async::<()>(&mut redis)
        .await?;
    tracing::info!(user_id = %user.id, "password accepted; second factor required");
    let expires_at = Utc::now() + std::time::Duration::from_secs(CHALLENGE_TTL_SECS);
    Ok((
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        Json(TwoFactorChallenge {
            two_factor_required: true,
            challenge_id,
            expires_at,
        }),
    )
        .into_response())
}

/// `POST /v1/auth/2fa/verify`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifyRequest {
    /// From the login answer.
    #[validate(length(min = 1, max = 128, message = "is required"))]
    #[schema(min_length = 1, max_length = 128)]
    pub challenge_id: String,
    /// A current six-digit TOTP code or an unused recovery code (`abcd-efgh-ijkl-mnop`).
    #[validate(length(min = 1, max = 64, message = "is required"))]
    #[schema(example = "123456", min_length = 1, max_length = 64)]
    pub code: String,
}

fn invalid_challenge() -> AuthError {
    AuthError::Problem(
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "invalid-challenge",
            "Invalid sign-in challenge",
        )
        .with_detail("The sign-in challenge is unknown, used or expired; sign in again."),
    )
}

fn invalid_code(attempts_left: u32) -> AuthError {
    AuthError::Problem(
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "invalid-second-factor",
            "Invalid code",
        )
        .with_detail("The code is incorrect, expired or already used.")
        .with_extension("attemptsLeft", attempts_left.into()),
    )
}

/// Completes a two-step sign-in: the challenge and a code for the usual tokens, with
/// `amr: ["pwd","otp"]`.
#[utoipa::path(
    post,
    path = "/v1/auth/2fa/verify",
    tag = "two-factor",
    request_body = VerifyRequest,
    responses(
        (status = 200, description = "Signed in; the refresh token is in Set-Cookie", body = sessions::TokenResponse),
        (status = 401, description = "Unknown, used or expired challenge (`invalid-challenge`), or a wrong, replayed or spent code (`invalid-second-factor`, with `attemptsLeft`)", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Account suspended", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Missing fields", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed attempts on the account or from the address (Retry-After)", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Session storage unavailable", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn verify(
    State(state): State<AppState>,
    meta: ClientMeta,
    ValidatedJson(request): ValidatedJson<VerifyRequest>,
) -> AuthResult<Response> {
    let key = challenge_key(&state, &request.challenge_id);
    let mut redis = state.redis.conn();
    let user_id: Option<String> = redis::cmd("HGET")
        .arg(&key)
        .arg("user")
        .query_async(&mut redis)
        .await?;
    let Some(user_id) = user_id.and_then(|id| Uuid::parse_str(&id).ok()) else {
        return Err(invalid_challenge());
    };
    let user = {
        let mut conn = state.db.acquire().await?;
        account::find_by_id(&mut conn, user_id)
            .await?
            .ok_or_else(invalid_challenge)?
    };
    let throttle_key = throttle::account_key(&user.email);
    throttle::check(&state, &throttle_key, &meta).await?;
    if user.status != UserStatus::Active {
        return Err(AuthError::AccountSuspended);
    }

    let mut tx = state.db.begin().await?;
    let accepted = match lock_enrolment(&mut tx, &state, user.id).await? {
        Some(enrolment) if enrolment.enabled => {
            accept_code(&mut tx, &user, &enrolment, &request.code, true).await?
        }
        // Reset or disabled since the password step: the challenge is void.
        _ => {
            let _: () = redis::cmd("DEL").arg(&key).query_async(&mut redis).await?;
            return Err(invalid_challenge());
        }
    };
    if !accepted {
        drop(tx);
        throttle::record_failure(&state, &throttle_key, &meta).await?;
        let attempts: u32 = redis::cmd("HINCRBY")
            .arg(&key)
            .arg("attempts")
            .arg(1)
            .query_async(&mut redis)
            .await?;
        if attempts >= CHALLENGE_MAX_ATTEMPTS {
            let _: () = redis::cmd("DEL").arg(&key).query_async(&mut redis).await?;
            tracing::warn!(user_id = %user.id, "second-factor challenge burnt after wrong codes");
        }
        return Err(invalid_code(
            CHALLENGE_MAX_ATTEMPTS.saturating_sub(attempts),
        ));
    }
    // Single use: only the request that deletes the challenge signs in.
    let deleted: u32 = redis::cmd("DEL").arg(&key).query_async(&mut redis).await?;
    if deleted == 0 {
        return Err(invalid_challenge());
    }
    let amr = vec![
        auth_client::AMR_PASSWORD.to_owned(),
        auth_client::AMR_OTP.to_owned(),
    ];
    let session = sessions::create(&state, &mut tx, &user, &meta, &amr).await?;
    if let Err(error) = tx.commit().await {
        let _ = sessions::forget(&state, &[session.session_id]).await;
        return Err(error.into());
    }
    throttle::reset(&state, &throttle_key).await?;
    tracing::info!(user_id = %user.id, session_id = %session.session_id, "signed in with a second factor");
    sessions::token_response(
        &state,
        &user,
        session.session_id,
        &session.refresh_token,
        amr,
    )
    .await
}

/// The two-factor routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(setup))
        .routes(routes!(confirm))
        .routes(routes!(disable))
        .routes(routes!(verify))
        .routes(routes!(reset))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn recovery_codes_are_four_groups_of_base32_and_normalise_to_sixteen_characters() {
        let code = recovery_code();
        assert_eq!(code.len(), 19, "{code}");
        assert_eq!(code.split('-').count(), 4);
        let plain = normalise(&code.to_uppercase().replace('-', " "));
        assert_eq!(plain.len(), 16);
        assert_eq!(plain, code.replace('-', ""));
        assert_ne!(recovery_code(), recovery_code());
    }

    #[test]
    fn only_six_digits_are_a_totp_code() {
        assert!(is_totp_shape(&normalise("123 456")));
        assert!(!is_totp_shape("12345"));
        assert!(!is_totp_shape("12345a"));
    }

    /// RFC 6238 appendix B (SHA-1), last six digits.
    #[test]
    fn codes_follow_rfc_6238() {
        let totp = totp(b"12345678901234567890".to_vec(), "jane@example.com").unwrap();
        assert_eq!(totp.generate(59).to_string(), "287082");
        assert_eq!(totp.generate(1_111_111_109).to_string(), "081804");
        assert_eq!(totp.check("081804", 1_111_111_109 + 30), Some(37_037_036));
        assert_eq!(totp.check("081804", 1_111_111_109 + 90), None);
    }

    #[test]
    fn the_secret_cipher_is_not_the_signing_key_cipher() {
        let sealed = secret_cipher("k").encrypt(b"secret", b"user").unwrap();
        assert!(KeyCipher::new("k").decrypt(&sealed, b"user").is_err());
        assert_eq!(
            secret_cipher("k").decrypt(&sealed, b"user").unwrap(),
            b"secret"
        );
        assert!(secret_cipher("k").decrypt(&sealed, b"other").is_err());
    }
}
