//! Passwords: `forgot-password` (a reset code by email), `reset-password` (code + new password;
//! every session ends) and `change-password` (signed in; every other session ends).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use serde::Deserialize;
use service_kit::ValidatedJson;
use service_kit::caller::FirstFactorCaller;
use shared_types::auth::{OtpPurpose, UserEmailVerified};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use validation::{Email, PasswordContext};
use validator::Validate;

use crate::account::{self, User, UserStatus};
use crate::client::ClientMeta;
use crate::error::{AuthError, AuthResult};
use crate::otp::{self, Accepted};
use crate::{AppState, event, sessions, throttle};

/// Checks a new password against the policy, with the user's email and name as context.
fn check_new_password(user_email: &str, name: &str, password: &str, field: &str) -> AuthResult<()> {
    let context = PasswordContext {
        email: Some(user_email),
        name: Some(name),
    };
    validation::check_password(password, &context).map_err(|e| AuthError::field(field, e.message()))
}

/// `POST /v1/auth/forgot-password`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ForgotPasswordRequest {
    /// The account's address.
    #[validate(custom(function = "validation::validate_email"))]
    #[schema(format = Email, max_length = 254)]
    pub email: String,
}

/// Sends a password-reset code (purpose `PASSWORD_RESET`). The answer is the same whether or not
/// the account exists.
#[utoipa::path(
    post,
    path = "/v1/auth/forgot-password",
    tag = "password",
    request_body = ForgotPasswordRequest,
    responses(
        (status = 202, description = "A code is sent if the account exists", body = Accepted),
        (status = 422, description = "Invalid input", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Code storage unavailable", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn forgot_password(
    State(state): State<AppState>,
    ValidatedJson(request): ValidatedJson<ForgotPasswordRequest>,
) -> AuthResult<(StatusCode, Json<Accepted>)> {
    let email = Email::parse(&request.email).map_err(|e| AuthError::field("email", e.message()))?;
    let mut tx = state.db.begin().await?;
    if let Some(user) = account::find_by_email(&mut tx, email.as_str()).await?
        && user.status == UserStatus::Active
    {
        otp::issue(
            &state,
            &mut tx,
            user.id,
            &user.email,
            OtpPurpose::PasswordReset,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(otp::accepted())
}

/// `POST /v1/auth/reset-password`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResetPasswordRequest {
    /// The account's address.
    #[validate(custom(function = "validation::validate_email"))]
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// The six-digit code from the email.
    #[validate(length(min = 1, max = 16, message = "is required"))]
    #[schema(min_length = 1, max_length = 16)]
    pub code: String,
    /// The new password (same policy as at registration).
    #[schema(min_length = 12, max_length = 128, pattern = r"^([\s\S])(?!\1*$)")]
    pub new_password: String,
}

/// Sets a new password with a reset code; every session of the account ends (the address counts
/// as verified from then on: the code proved it).
#[utoipa::path(
    post,
    path = "/v1/auth/reset-password",
    tag = "password",
    request_body = ResetPasswordRequest,
    responses(
        (status = 204, description = "Password changed; every session ended"),
        (status = 422, description = "Weak password, or a wrong, expired or used code", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Code or session storage unavailable", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn reset_password(
    State(state): State<AppState>,
    ValidatedJson(request): ValidatedJson<ResetPasswordRequest>,
) -> AuthResult<StatusCode> {
    let email = Email::parse(&request.email).map_err(|e| AuthError::field("email", e.message()))?;
    let user = {
        let mut conn = state.db.acquire().await?;
        account::find_by_email(&mut conn, email.as_str()).await?
    };
    // The policy is checked before the code, so a weak password costs no attempt.
    let name = user.as_ref().map(User::full_name).unwrap_or_default();
    check_new_password(email.as_str(), &name, &request.new_password, "newPassword")?;
    let Some(user) = user.filter(|u| u.status == UserStatus::Active) else {
        return Err(AuthError::InvalidOtp);
    };
    otp::verify(
        &state,
        user.id,
        OtpPurpose::PasswordReset,
        request.code.trim(),
    )
    .await?;

    let password_hash = state.hasher.hash(&request.new_password).await?;
    let mut tx = state.db.begin().await?;
    let newly_verified = sqlx::query_scalar!(
        r#"UPDATE users SET password_hash = $2,
                  email_verified_at = COALESCE(email_verified_at, now())
           WHERE id = $1
           RETURNING (email_verified_at = now()) AS "newly_verified!""#,
        user.id,
        password_hash
    )
    .fetch_one(&mut *tx)
    .await?;
    if newly_verified {
        event_bus::outbox::publish(
            &mut tx,
            &event(UserEmailVerified {
                user_id: user.id,
                email: user.email.clone(),
                verified_at: Utc::now(),
            }),
        )
        .await?;
    }
    let ended = sessions::end_user_sessions(&mut tx, user.id, "password-reset", None).await?;
    tx.commit().await?;
    sessions::forget(&state, &ended).await?;
    throttle::reset(&state, &throttle::account_key(&user.email)).await?;
    tracing::info!(user_id = %user.id, "password reset; every session ended");
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/auth/change-password`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangePasswordRequest {
    /// The current password.
    #[validate(length(min = 1, message = "is required"))]
    #[schema(min_length = 1)]
    pub current_password: String,
    /// The new password (same policy as at registration).
    #[schema(min_length = 12, max_length = 128, pattern = r"^([\s\S])(?!\1*$)")]
    pub new_password: String,
}

/// Changes the signed-in user's password; every other session ends, this one stays.
#[utoipa::path(
    post,
    path = "/v1/auth/change-password",
    tag = "password",
    request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "Password changed; other sessions ended"),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Wrong current password or weak new one", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong passwords", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Session storage unavailable", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn change_password(
    State(state): State<AppState>,
    FirstFactorCaller(caller): FirstFactorCaller,
    meta: ClientMeta,
    ValidatedJson(request): ValidatedJson<ChangePasswordRequest>,
) -> AuthResult<StatusCode> {
    let user = {
        let mut conn = state.db.acquire().await?;
        match account::find_by_id(&mut conn, caller.user_id).await? {
            Some(user) if user.status == UserStatus::Active => user,
            _ => return Err(AuthError::NotFound("user")),
        }
    };
    check_new_password(
        &user.email,
        &user.full_name(),
        &request.new_password,
        "newPassword",
    )?;
    if request.new_password == request.current_password {
        return Err(AuthError::field(
            "newPassword",
            "must differ from the current password",
        ));
    }
    throttle::confirm_password(
        &state,
        &user,
        &request.current_password,
        &meta,
        "currentPassword",
    )
    .await?;

    let password_hash = state.hasher.hash(&request.new_password).await?;
    let mut tx = state.db.begin().await?;
    sqlx::query!(
        "UPDATE users SET password_hash = $2 WHERE id = $1",
        user.id,
        password_hash
    )
    .execute(&mut *tx)
    .await?;
    let ended = sessions::end_user_sessions(
        &mut tx,
        user.id,
        "password-changed",
        Some(caller.session_id),
    )
    .await?;
    tx.commit().await?;
    sessions::forget(&state, &ended).await?;
    tracing::info!(user_id = %user.id, "password changed; other sessions ended");
    Ok(StatusCode::NO_CONTENT)
}

/// The password routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(forgot_password))
        .routes(routes!(reset_password))
        .routes(routes!(change_password))
}
