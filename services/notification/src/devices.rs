//! Push device tokens: `POST /v1/notifications/devices` registers the caller's device (a token
//! seen before moves to the caller: the device changed hands or accounts), `DELETE` with the
//! token removes it (sign-out). Push messages go to every device of the recipient's account.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use service_kit::{Caller, ValidatedJson};
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;
use validator::Validate;

use crate::AppState;
use crate::error::{NotificationError, NotificationResult};

/// A device's platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Platform {
    /// Apple.
    Ios,
    /// Android.
    Android,
    /// A browser (web push through FCM).
    Web,
}

impl Platform {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ios => "IOS",
            Self::Android => "ANDROID",
            Self::Web => "WEB",
        }
    }
}

/// Registering a device.
#[derive(Debug, Clone, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterDevice {
    /// The FCM registration token.
    #[validate(length(min = 10, max = 4096, message = "must be 10 to 4096 characters"))]
    #[schema(min_length = 10, max_length = 4096)]
    pub token: String,
    /// The platform.
    pub platform: Platform,
}

/// Removing a device.
#[derive(Debug, Clone, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemoveDevice {
    /// The FCM registration token.
    #[validate(length(min = 1, max = 4096, message = "must be 1 to 4096 characters"))]
    #[schema(min_length = 1, max_length = 4096)]
    pub token: String,
}

/// A registered device.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    /// Its id.
    pub id: Uuid,
    /// IOS, ANDROID or WEB.
    pub platform: String,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// When it was last registered again.
    pub updated_at: DateTime<Utc>,
}

/// Registers (or re-registers) the caller's device.
#[utoipa::path(
    post,
    path = "/v1/notifications/devices",
    tag = "notifications",
    request_body = RegisterDevice,
    responses(
        (status = 201, description = "Registered", body = Device),
        (status = 401, description = "Not signed in"),
        (status = 422, description = "Invalid token or platform"),
    )
)]
async fn register(
    caller: Caller,
    State(state): State<AppState>,
    ValidatedJson(body): ValidatedJson<RegisterDevice>,
) -> NotificationResult<(StatusCode, Json<Device>)> {
    let device: Device = sqlx::query_as(
        "INSERT INTO device_tokens (id, user_id, token, platform) VALUES ($1, $2, $3, $4)
         ON CONFLICT ON CONSTRAINT device_tokens_token_key
             DO UPDATE SET user_id = EXCLUDED.user_id, platform = EXCLUDED.platform
         RETURNING id, platform, created_at, updated_at",
    )
    .bind(Uuid::now_v7())
    .bind(caller.user_id)
    .bind(&body.token)
    .bind(body.platform.as_str())
    .fetch_one(&state.db)
    .await?;
    Ok((StatusCode::CREATED, Json(device)))
}

/// Removes one of the caller's devices.
#[utoipa::path(
    delete,
    path = "/v1/notifications/devices",
    tag = "notifications",
    request_body = RemoveDevice,
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "Not signed in"),
        (status = 404, description = "No such device of the caller"),
    )
)]
async fn remove(
    caller: Caller,
    State(state): State<AppState>,
    ValidatedJson(body): ValidatedJson<RemoveDevice>,
) -> NotificationResult<StatusCode> {
    let removed = sqlx::query("DELETE FROM device_tokens WHERE user_id = $1 AND token = $2")
        .bind(caller.user_id)
        .bind(&body.token)
        .execute(&state.db)
        .await?;
    if removed.rows_affected() == 0 {
        return Err(NotificationError::NotFound("device"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The device tokens of `user_id`.
pub async fn tokens_of(conn: &mut PgConnection, user_id: Uuid) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT token FROM device_tokens WHERE user_id = $1 ORDER BY created_at",
        user_id
    )
    .fetch_all(&mut *conn)
    .await
}

/// The device routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(register, remove))
}
