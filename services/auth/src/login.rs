//! `POST /v1/auth/login`: email and password for an access token and a session.
//!
//! A wrong password and an unknown email are one answer (401 `invalid-credentials`, same body),
//! and cost the same: an unknown email is checked against a dummy argon2id hash. Throttling
//! (see [`throttle`](crate::throttle)) answers 429 before any password is checked. An unverified
//! email does not block sign-in (`user.emailVerified` is false); a suspended account gets 403,
//! but only once the password is right.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use service_kit::ValidatedJson;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use validation::Email;
use validator::Validate;

use crate::account::{self, UserStatus};
use crate::client::ClientMeta;
use crate::error::{AuthError, AuthResult};
use crate::{AppState, sessions, throttle, two_factor};

/// `POST /v1/auth/login`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginRequest {
    /// Email address (case is ignored).
    #[validate(length(min = 1, max = 320, message = "is required"))]
    #[schema(example = "jane@example.com", min_length = 1, max_length = 320)]
    pub email: String,
    /// Password.
    #[validate(length(min = 1, max = 1024, message = "is required"))]
    #[schema(min_length = 1, max_length = 1024)]
    pub password: String,
}

/// What a right password answers: tokens, or a second-factor challenge.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum LoginAnswer {
    /// Signed in.
    Tokens(sessions::TokenResponse),
    /// The account uses two-factor sign-in.
    Challenge(two_factor::TwoFactorChallenge),
}

/// Signs in: the access token in the body, the refresh token in an HttpOnly cookie. With
/// two-factor sign-in on, a challenge instead (see [`two_factor`]).
#[utoipa::path(
    post,
    path = "/v1/auth/login",
    tag = "sessions",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in (the refresh token is in Set-Cookie), or, when the account uses two-factor sign-in, a challenge to complete at `POST /v1/auth/2fa/verify` (no tokens yet)", body = LoginAnswer),
        (status = 401, description = "Wrong email or password (one answer for both)", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Account suspended", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Missing fields", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed attempts (Retry-After)", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Session storage unavailable", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn login(
    State(state): State<AppState>,
    meta: ClientMeta,
    ValidatedJson(request): ValidatedJson<LoginRequest>,
) -> AuthResult<Response> {
    let throttle_key = throttle::account_key(&request.email);
    throttle::check(&state, &throttle_key, &meta).await?;

    let user = match Email::parse(&request.email) {
        Ok(email) => {
            let mut conn = state.db.acquire().await?;
            account::find_by_email(&mut conn, email.as_str()).await?
        }
        Err(_) => None,
    };
    let matches = state
        .hasher
        .verify(
            &request.password,
            user.as_ref().and_then(|u| u.password_hash.as_deref()),
        )
        .await?;
    let user = match user {
        Some(user) if matches => user,
        _ => {
            throttle::record_failure(&state, &throttle_key, &meta).await?;
            return Err(AuthError::InvalidCredentials);
        }
    };
    if user.status != UserStatus::Active {
        return Err(AuthError::AccountSuspended);
    }
    if two_factor::is_enabled(&state, user.id).await? {
        // The failure count stays until the code is right too: signing in again with the
        // password must not wipe the wrong codes counted against the account.
        return two_factor::begin_challenge(&state, &user).await;
    }
    throttle::reset(&state, &throttle_key).await?;

    let amr = vec![auth_client::AMR_PASSWORD.to_owned()];
    let mut tx = state.db.begin().await?;
    let session = sessions::create(&state, &mut tx, &user, &meta, &amr).await?;
    if let Err(error) = tx.commit().await {
        // Take back the allow-list entry of the session that was never stored.
        let _ = sessions::forget(&state, &[session.session_id]).await;
        return Err(error.into());
    }
    tracing::info!(user_id = %user.id, session_id = %session.session_id, "signed in");
    sessions::token_response(
        &state,
        &user,
        session.session_id,
        &session.refresh_token,
        amr,
    )
    .await
}

/// The login route.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(login))
}
