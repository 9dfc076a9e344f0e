//! One-time codes: six digits, kept in Redis only as an HMAC (keyed by `AUTH_HMAC_KEY`), valid
//! for `OTP_TTL_SECS` (10 min), `OTP_MAX_ATTEMPTS` (5) guesses, single use. Issuing one writes
//! `auth.otp_requested` (with the plaintext code, for the notification service to send; never
//! logged) to the outbox in the caller's transaction.
//!
//! Issuing is rate-friendly and silent: at most one code per account and purpose every
//! `OTP_RESEND_COOLDOWN_SECS` and `OTP_MAX_PER_HOUR` an hour; beyond that the request is answered
//! exactly as if a code had been sent. A new code replaces the previous one.
//!
//! Also here: `POST /v1/auth/verify-email` and `POST /v1/auth/resend-otp`.

use std::sync::LazyLock;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use redis::Script;
use serde::{Deserialize, Serialize};
use service_kit::ValidatedJson;
use shared_types::auth::{OtpCode, OtpPurpose, OtpRequested, UserEmailVerified};
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use validation::Email;
use validator::Validate;

use crate::account::{self, UserStatus};
use crate::error::{AuthError, AuthResult};
use crate::{AppState, crypto, event};

/// KEYS: code, cooldown, hourly count. ARGV: code HMAC, TTL, cooldown, hourly limit.
/// Returns 1 when a code was stored, 0 when rate-limited.
static ISSUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
        local sent = redis.call('INCR', KEYS[3])
        if sent == 1 then redis.call('EXPIRE', KEYS[3], 3600) end
        if sent > tonumber(ARGV[4]) then return 0 end
        if tonumber(ARGV[3]) > 0 then redis.call('SET', KEYS[2], '1', 'EX', ARGV[3]) end
        redis.call('DEL', KEYS[1])
        redis.call('HSET', KEYS[1], 'h', ARGV[1], 'n', 0)
        redis.call('EXPIRE', KEYS[1], ARGV[2])
        return 1
        ",
    )
});

/// KEYS: code. ARGV: HMAC of the guess, attempt limit.
/// Returns 1 (right: the code is spent), 0 (wrong), -1 (no code), -2 (burnt).
static VERIFY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local stored = redis.call('HGET', KEYS[1], 'h')
        if not stored then return -1 end
        local attempts = redis.call('HINCRBY', KEYS[1], 'n', 1)
        local limit = tonumber(ARGV[2])
        if attempts > limit then
            redis.call('DEL', KEYS[1])
            return -2
        end
        if stored == ARGV[1] then
            redis.call('DEL', KEYS[1])
            return 1
        end
        if attempts >= limit then redis.call('DEL', KEYS[1]) end
        return 0
        ",
    )
});

fn purpose_name(purpose: OtpPurpose) -> &'static str {
    match purpose {
        OtpPurpose::EmailVerification => "email-verification",
        OtpPurpose::PasswordReset => "password-reset",
        OtpPurpose::TwoFactorAuth => "two-factor",
        OtpPurpose::Login => "login",
    }
}

fn code_key(state: &AppState, user_id: Uuid, purpose: OtpPurpose) -> String {
    state
        .redis
        .key("otp", format!("{}:{user_id}", purpose_name(purpose)))
}

fn code_hmac(state: &AppState, user_id: Uuid, purpose: OtpPurpose, code: &str) -> String {
    state
        .hmac
        .hex(&["otp", purpose_name(purpose), &user_id.to_string(), code])
}

/// Issues a code for `user_id` unless rate-limited: stores its HMAC in Redis and writes
/// `auth.otp_requested` through `conn` (the caller's transaction). Returns whether one was sent.
pub(crate) async fn issue(
    state: &AppState,
    conn: &mut PgConnection,
    user_id: Uuid,
    email: &str,
    purpose: OtpPurpose,
) -> AuthResult<bool> {
    let settings = &state.settings;
    let code = crypto::otp_code();
    let name = purpose_name(purpose);
    let mut redis = state.redis.conn();
    let stored: i64 = ISSUE
        .key(code_key(state, user_id, purpose))
        .key(state.redis.key("otp-cooldown", format!("{name}:{user_id}")))
        .key(state.redis.key("otp-hourly", format!("{name}:{user_id}")))
        .arg(code_hmac(state, user_id, purpose, &code))
        .arg(settings.otp_ttl.as_secs())
        .arg(settings.otp_resend_cooldown.as_secs())
        .arg(settings.otp_max_per_hour)
        .invoke_async(&mut redis)
        .await?;
    if stored != 1 {
        tracing::info!(%user_id, purpose = name, "one-time code not sent: rate-limited");
        return Ok(false);
    }
    event_bus::outbox::publish(
        conn,
        &event(OtpRequested {
            user_id: Some(user_id),
            email: email.to_owned(),
            purpose,
            code: OtpCode::new(code),
            expires_at: Utc::now() + settings.otp_ttl,
        }),
    )
    .await?;
    Ok(true)
}

/// Checks a guess; a right one is spent. Wrong, expired, missing and burnt codes are one error.
pub(crate) async fn verify(
    state: &AppState,
    user_id: Uuid,
    purpose: OtpPurpose,
    code: &str,
) -> AuthResult<()> {
    let well_formed = code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit());
    let guess = if well_formed { code } else { "invalid" };
    let mut redis = state.redis.conn();
    let outcome: i64 = VERIFY
        .key(code_key(state, user_id, purpose))
        .arg(code_hmac(state, user_id, purpose, guess))
        .arg(state.settings.otp_max_attempts)
        .invoke_async(&mut redis)
        .await?;
    match outcome {
        1 => Ok(()),
        -2 => {
            tracing::warn!(%user_id, purpose = purpose_name(purpose), "one-time code burnt after too many guesses");
            Err(AuthError::InvalidOtp)
        }
        _ => Err(AuthError::InvalidOtp),
    }
}

/// `POST /v1/auth/verify-email`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifyEmailRequest {
    /// The address the code was sent to.
    #[validate(custom(function = "validation::validate_email"))]
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// The six-digit code.
    #[validate(length(min = 1, max = 16, message = "is required"))]
    #[schema(min_length = 1, max_length = 16)]
    pub code: String,
}

/// The outcome of an email verification.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmailVerified {
    /// Always true.
    pub email_verified: bool,
}

/// Verifies the account's email address with the code sent at registration.
#[utoipa::path(
    post,
    path = "/v1/auth/verify-email",
    tag = "registration",
    request_body = VerifyEmailRequest,
    responses(
        (status = 200, description = "The address is verified", body = EmailVerified),
        (status = 422, description = "Invalid input, or a wrong, expired or used code", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Code storage unavailable", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn verify_email(
    State(state): State<AppState>,
    ValidatedJson(request): ValidatedJson<VerifyEmailRequest>,
) -> AuthResult<Json<EmailVerified>> {
    let email = Email::parse(&request.email).map_err(|e| AuthError::field("email", e.message()))?;
    let mut tx = state.db.begin().await?;
    let Some(user) = account::find_by_email(&mut tx, email.as_str()).await? else {
        return Err(AuthError::InvalidOtp);
    };
    if user.status != UserStatus::Active {
        return Err(AuthError::InvalidOtp);
    }
    verify(
        &state,
        user.id,
        OtpPurpose::EmailVerification,
        request.code.trim(),
    )
    .await?;
    let verified_at = sqlx::query_scalar!(
        r#"UPDATE users SET email_verified_at = now()
           WHERE id = $1 AND email_verified_at IS NULL RETURNING email_verified_at AS "at!""#,
        user.id
    )
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(verified_at) = verified_at {
        event_bus::outbox::publish(
            &mut tx,
            &event(UserEmailVerified {
                user_id: user.id,
                email: user.email.clone(),
                verified_at,
            }),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Json(EmailVerified {
        email_verified: true,
    }))
}

/// What a code may be re-sent for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResendPurpose {
    /// The registration code.
    EmailVerification,
    /// The password-reset code.
    PasswordReset,
}

/// `POST /v1/auth/resend-otp`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResendOtpRequest {
    /// The account's address.
    #[validate(custom(function = "validation::validate_email"))]
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// Which code.
    pub purpose: ResendPurpose,
}

/// The answer of requests that must not reveal whether an account exists.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    /// What happens next.
    pub message: String,
}

/// The generic "if it exists, we sent it" answer.
pub(crate) fn accepted() -> (StatusCode, Json<Accepted>) {
    (
        StatusCode::ACCEPTED,
        Json(Accepted {
            message: "If an account exists for this address, a code is on its way.".to_owned(),
        }),
    )
}

/// Sends a fresh code. The answer is the same whether or not the account exists, needs the code,
/// or was sent one moments ago.
#[utoipa::path(
    post,
    path = "/v1/auth/resend-otp",
    tag = "registration",
    request_body = ResendOtpRequest,
    responses(
        (status = 202, description = "A code is sent if the account exists and needs one", body = Accepted),
        (status = 422, description = "Invalid input", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Code storage unavailable", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn resend_otp(
    State(state): State<AppState>,
    ValidatedJson(request): ValidatedJson<ResendOtpRequest>,
) -> AuthResult<(StatusCode, Json<Accepted>)> {
    let email = Email::parse(&request.email).map_err(|e| AuthError::field("email", e.message()))?;
    let mut tx = state.db.begin().await?;
    if let Some(user) = account::find_by_email(&mut tx, email.as_str()).await? {
        let needed = user.status == UserStatus::Active
            && match request.purpose {
                ResendPurpose::EmailVerification => user.email_verified_at.is_none(),
                ResendPurpose::PasswordReset => true,
            };
        if needed {
            let purpose = match request.purpose {
                ResendPurpose::EmailVerification => OtpPurpose::EmailVerification,
                ResendPurpose::PasswordReset => OtpPurpose::PasswordReset,
            };
            issue(&state, &mut tx, user.id, &user.email, purpose).await?;
        }
    }
    tx.commit().await?;
    Ok(accepted())
}

/// The code routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(verify_email))
        .routes(routes!(resend_otp))
}
