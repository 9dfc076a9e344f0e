//! The one error type of the auth service, rendered as problem+json.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use service_kit::{FieldError, Problem};

use crate::crypto::CryptoError;

/// Everything a handler of this service can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Input that failed validation (422, one entry per field).
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// Wrong email or password: one answer for both, so accounts cannot be discovered.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The password was right but the account is suspended.
    #[error("account suspended")]
    AccountSuspended,
    /// Too many failed attempts; retry after this many seconds.
    #[error("throttled for {0} s")]
    Throttled(u64),
    /// A one-time code that is wrong, expired, used or burnt (one answer for all).
    #[error("invalid one-time code")]
    InvalidOtp,
    /// A missing, unknown or expired refresh token, or one whose session has ended.
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    /// A refresh token presented a second time: its whole family has been revoked.
    #[error("refresh token reused")]
    RefreshTokenReused,
    /// No such resource (or not the caller's).
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// The caller may not do this.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// The request conflicts with the resource's state.
    #[error("conflict: {1}")]
    Conflict(&'static str, &'static str),
    /// Redis did not answer: security state cannot be checked or changed, so nothing passes.
    #[error("redis unavailable: {0}")]
    Redis(#[from] redis::RedisError),
    /// A database failure.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Writing to the outbox failed.
    #[error("outbox error: {0}")]
    Outbox(#[from] event_bus::OutboxError),
    /// Hashing or a cipher failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// A problem made elsewhere (an extractor, a shared helper), sent as it is.
    #[error(transparent)]
    Problem(#[from] Problem),
    /// Anything else unexpected.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AuthError {
    /// 422 for one field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    /// The problem document of this error.
    pub fn to_problem(&self) -> Problem {
        match self {
            Self::Validation(errors) => Problem::validation(errors.clone()),
            Self::InvalidCredentials => Problem::new(
                StatusCode::UNAUTHORIZED,
                "invalid-credentials",
                "Invalid credentials",
            )
            .with_detail("The email address or password is incorrect."),
            Self::AccountSuspended => Problem::new(
                StatusCode::FORBIDDEN,
                "account-suspended",
                "Account suspended",
            )
            .with_detail("This account has been suspended; contact support."),
            Self::Throttled(secs) => Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-attempts",
                "Too many attempts",
            )
            .with_detail("Too many failed attempts; try again later.")
            .with_retry_after(*secs),
            Self::InvalidOtp => Problem::validation(vec![FieldError::new(
                "code",
                "is invalid or has expired; request a new code",
            )]),
            Self::InvalidRefreshToken => Problem::new(
                StatusCode::UNAUTHORIZED,
                "invalid-refresh-token",
                "Invalid refresh token",
            )
            .with_detail("The refresh token is missing, invalid or expired; sign in again."),
            Self::RefreshTokenReused => Problem::new(
                StatusCode::UNAUTHORIZED,
                "refresh-token-reused",
                "Refresh token reused",
            )
            .with_detail(
                "This refresh token was already used; its session has been ended. Sign in again.",
            ),
            Self::NotFound(what) => Problem::not_found(format!("No such {what}.")),
            Self::Forbidden(why) => Problem::forbidden(*why),
            Self::Conflict(code, detail) => Problem::conflict(code, *detail),
            Self::Redis(error) => {
                tracing::error!(%error, "redis unavailable");
                Problem::unavailable("Session storage is unavailable; try again shortly.")
            }
            Self::Database(error) => match service_kit::problem::violated_constraint(error) {
                Some("users_email_key") => {
                    Problem::conflict("email-taken", "An account with this email already exists.")
                }
                Some("users_role_check") => Problem::invalid_field("role", "is not a role"),
                Some("users_status_check") => Problem::invalid_field("status", "is not a status"),
                _ => Problem::from_database(error),
            },
            Self::Outbox(error) => Problem::internal(error),
            Self::Crypto(error) => Problem::internal(error),
            Self::Problem(problem) => problem.clone(),
            Self::Internal(error) => Problem::internal(error.as_ref()),
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        self.to_problem().into_response()
    }
}

impl From<validation::ValidationError> for FieldErrorOf {
    fn from(error: validation::ValidationError) -> Self {
        Self(error.message())
    }
}

/// A validation message from the `validation` crate, ready to name its field.
pub struct FieldErrorOf(pub String);

/// Runs `parse` and records a failure under `field`.
pub fn collect<T, E: Into<FieldErrorOf>>(
    errors: &mut Vec<FieldError>,
    field: &str,
    parsed: Result<T, E>,
) -> Option<T> {
    match parsed {
        Ok(value) => Some(value),
        Err(error) => {
            errors.push(FieldError::new(field, error.into().0));
            None
        }
    }
}

/// Handler result.
pub type AuthResult<T> = Result<T, AuthError>;
