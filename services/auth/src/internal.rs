//! `POST /internal/verify`: a remote access-token check for services that prefer asking to
//! verifying against the JWKS themselves. Service callers only; never routed by the gateway.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use service_kit::{Role, ServiceCaller, ValidatedJson};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use validator::Validate;

use crate::account::RoleName;
use crate::error::AuthResult;
use crate::{AppState, sessions};

/// `POST /internal/verify`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifyRequest {
    /// The access token (without `Bearer `).
    #[validate(length(min = 1, max = 8192, message = "is required"))]
    #[schema(min_length = 1, max_length = 8192)]
    pub access_token: String,
}

/// The claims of a valid access token.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VerifiedClaims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// The user id.
    pub sub: Uuid,
    /// The role when the token was issued.
    #[schema(value_type = RoleName)]
    pub role: Role,
    /// The session id.
    pub sid: Uuid,
    /// Authentication methods.
    pub amr: Vec<String>,
    /// Token id.
    pub jti: Uuid,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expires at (Unix seconds).
    pub exp: i64,
}

/// The verdict on an access token.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    /// Whether the signature, algorithm, issuer, audience and expiry are all right.
    pub valid: bool,
    /// Whether its session is still live (false for invalid tokens).
    pub session_live: bool,
    /// The claims of a valid token.
    pub claims: Option<VerifiedClaims>,
    /// Why an invalid token was refused.
    pub reason: Option<String>,
}

/// Verifies an access token and says whether its session is live.
#[utoipa::path(
    post,
    path = "/internal/verify",
    tag = "internal",
    request_body = VerifyRequest,
    responses(
        (status = 200, description = "The verdict (invalid tokens are `valid: false`)", body = Verification),
        (status = 403, description = "Not a service caller", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Session storage unavailable", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn verify(
    State(state): State<AppState>,
    _service: ServiceCaller,
    ValidatedJson(request): ValidatedJson<VerifyRequest>,
) -> AuthResult<Json<Verification>> {
    let token = request.access_token.trim();
    let token = token.strip_prefix("Bearer ").unwrap_or(token);
    match state.keys.verify(token).await {
        Ok(claims) => {
            let session_live = sessions::is_live(&state, claims.sid).await?;
            Ok(Json(Verification {
                valid: true,
                session_live,
                claims: Some(VerifiedClaims {
                    iss: claims.iss,
                    aud: claims.aud,
                    sub: claims.sub,
                    role: claims.role,
                    sid: claims.sid,
                    amr: claims.amr,
                    jti: claims.jti,
                    iat: claims.iat,
                    exp: claims.exp,
                }),
                reason: None,
            }))
        }
        Err(error) => Ok(Json(Verification {
            valid: false,
            session_live: false,
            claims: None,
            reason: Some(error.to_string()),
        })),
    }
}

/// The internal routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(verify))
}
