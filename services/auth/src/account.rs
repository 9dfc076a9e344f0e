//! The user's own account: the `User` model and its queries, `GET /v1/auth/me` and
//! `DELETE /v1/auth/account` (erasure).

use std::str::FromStr;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use service_kit::caller::FirstFactorCaller;
use service_kit::{Caller, Role, ValidatedJson};
use shared_types::auth::UserErasureRequested;
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use validator::Validate;

use crate::error::{AuthError, AuthResult};
use crate::{AppState, client, event, sessions, throttle};

/// Where an account stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UserStatus {
    /// Can sign in.
    Active,
    /// Blocked by an administrator; its sessions were revoked.
    Suspended,
    /// Erased at the user's request; holds no personal data.
    Deleted,
}

impl UserStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Suspended => "SUSPENDED",
            Self::Deleted => "DELETED",
        }
    }
}

impl FromStr for UserStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ACTIVE" => Ok(Self::Active),
            "SUSPENDED" => Ok(Self::Suspended),
            "DELETED" => Ok(Self::Deleted),
            other => Err(format!("unknown status `{other}`")),
        }
    }
}

/// The OpenAPI description of `auth_client::Role` (which has no schema of its own).
#[derive(ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(dead_code)]
pub enum RoleName {
    /// Everything, including granting ADMIN.
    SuperAdmin,
    /// Runs the catalogue, orders, content and diary.
    Admin,
    /// A design consultant.
    Consultant,
    /// A shopper.
    Customer,
}

/// A user as stored.
#[derive(Debug, Clone)]
pub struct User {
    /// Id.
    pub id: Uuid,
    /// Lower-cased address.
    pub email: String,
    /// argon2id PHC string (none once erased).
    pub password_hash: Option<String>,
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// E.164 phone.
    pub phone: Option<String>,
    /// Role.
    pub role: Role,
    /// Status.
    pub status: UserStatus,
    /// When the address was verified.
    pub email_verified_at: Option<DateTime<Utc>>,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
}

/// A row before its enums are parsed.
pub(crate) struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub password_hash: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub role: String,
    pub status: String,
    pub email_verified_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<UserRow> for User {
    type Error = AuthError;
    fn try_from(row: UserRow) -> Result<Self, AuthError> {
        Ok(Self {
            role: Role::from_str(&row.role).map_err(|e| anyhow::anyhow!(e))?,
            status: UserStatus::from_str(&row.status).map_err(|e| anyhow::anyhow!(e))?,
            id: row.id,
            email: row.email,
            password_hash: row.password_hash,
            first_name: row.first_name,
            last_name: row.last_name,
            phone: row.phone,
            email_verified_at: row.email_verified_at,
            created_at: row.created_at,
        })
    }
}

impl User {
    /// The user's full name, for the password policy's context checks.
    pub fn full_name(&self) -> String {
        format!(
            "{} {}",
            self.first_name.as_deref().unwrap_or_default(),
            self.last_name.as_deref().unwrap_or_default()
        )
    }
}

/// The user with `email` (already normalised), erased accounts excluded.
pub(crate) async fn find_by_email(
    conn: &mut PgConnection,
    email: &str,
) -> AuthResult<Option<User>> {
    sqlx::query_as!(
        UserRow,
        r#"SELECT id, email, password_hash, first_name, last_name, phone, role, status,
                  email_verified_at, created_at
           FROM users WHERE lower(email) = lower($1) AND status <> 'DELETED'"#,
        email
    )
    .fetch_optional(conn)
    .await?
    .map(User::try_from)
    .transpose()
}

/// The user with `id`, locked for update.
pub(crate) async fn find_by_id_for_update(
    conn: &mut PgConnection,
    id: Uuid,
) -> AuthResult<Option<User>> {
    sqlx::query_as!(
        UserRow,
        r#"SELECT id, email, password_hash, first_name, last_name, phone, role, status,
                  email_verified_at, created_at
           FROM users WHERE id = $1 FOR UPDATE"#,
        id
    )
    .fetch_optional(conn)
    .await?
    .map(User::try_from)
    .transpose()
}

/// The user with `id`.
pub(crate) async fn find_by_id(conn: &mut PgConnection, id: Uuid) -> AuthResult<Option<User>> {
    sqlx::query_as!(
        UserRow,
        r#"SELECT id, email, password_hash, first_name, last_name, phone, role, status,
                  email_verified_at, created_at
           FROM users WHERE id = $1"#,
        id
    )
    .fetch_optional(conn)
    .await?
    .map(User::try_from)
    .transpose()
}

/// A user as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    /// Id.
    pub id: Uuid,
    /// Email address (lower case).
    pub email: String,
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// E.164 phone number.
    pub phone: Option<String>,
    /// Role.
    #[schema(value_type = RoleName)]
    pub role: Role,
    /// Status.
    pub status: UserStatus,
    /// Whether the email address has been verified (sign-in is allowed either way).
    pub email_verified: bool,
    /// When it was verified.
    pub email_verified_at: Option<DateTime<Utc>>,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        Self {
            id: user.id,
            email: user.email.clone(),
            first_name: user.first_name.clone(),
            last_name: user.last_name.clone(),
            phone: user.phone.clone(),
            role: user.role,
            status: user.status,
            email_verified: user.email_verified_at.is_some(),
            email_verified_at: user.email_verified_at,
            created_at: user.created_at,
        }
    }
}

/// `GET /v1/auth/me`: the user, and where they stand with two-factor sign-in.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeView {
    /// The user.
    #[serde(flatten)]
    pub user: UserView,
    /// Whether two-factor sign-in is on for the account.
    pub two_factor_enabled: bool,
    /// Whether this session signed in with a second factor (`amr` has `otp`).
    pub second_factor_used: bool,
    /// Whether the role demands a second factor (ADMIN, SUPER_ADMIN): when it does and
    /// `secondFactorUsed` is false, admin routes answer 403 until the user enrols and signs in
    /// again with a code.
    pub second_factor_required: bool,
}

/// The signed-in user.
#[utoipa::path(
    get,
    path = "/v1/auth/me",
    tag = "account",
    responses(
        (status = 200, description = "The signed-in user", body = MeView),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn me(
    State(state): State<AppState>,
    FirstFactorCaller(caller): FirstFactorCaller,
) -> AuthResult<Json<MeView>> {
    let user = {
        let mut conn = state.db.acquire().await?;
        match find_by_id(&mut conn, caller.user_id).await? {
            Some(user) if user.status != UserStatus::Deleted => user,
            _ => return Err(AuthError::NotFound("user")),
        }
    };
    Ok(Json(MeView {
        two_factor_enabled: crate::two_factor::is_enabled(&state, user.id).await?,
        second_factor_used: caller.used_second_factor(),
        second_factor_required: user.role.requires_second_factor(),
        user: UserView::from(&user),
    }))
}

/// `DELETE /v1/auth/account`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeleteAccountRequest {
    /// The current password, to confirm.
    #[validate(length(min = 1, message = "is required"))]
    #[schema(min_length = 1)]
    pub password: String,
}

/// Deletes the signed-in user's account: every session is revoked, the personal data erased
/// (the email becomes a tombstone, names, phone and password hash are removed, the sessions'
/// user agents and networks too) and `user.erasure_requested` tells the other services.
#[utoipa::path(
    delete,
    path = "/v1/auth/account",
    tag = "account",
    request_body = DeleteAccountRequest,
    responses(
        (status = 204, description = "Deleted; the refresh cookie is cleared"),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Wrong password", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong passwords", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Sessions could not be revoked; retry", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn delete_account(
    State(state): State<AppState>,
    caller: Caller,
    meta: client::ClientMeta,
    ValidatedJson(request): ValidatedJson<DeleteAccountRequest>,
) -> AuthResult<Response> {
    let mut conn = state.db.acquire().await?;
    let user = match find_by_id(&mut conn, caller.user_id).await? {
        Some(user) if user.status != UserStatus::Deleted => user,
        _ => return Err(AuthError::NotFound("user")),
    };
    drop(conn);
    throttle::confirm_password(&state, &user, &request.password, &meta, "password").await?;

    let mut tx = state.db.begin().await?;
    let tombstone = format!("deleted+{}@invalid", user.id);
    sqlx::query!(
        r#"UPDATE users SET email = $2, password_hash = NULL, first_name = NULL, last_name = NULL,
                  phone = NULL, email_verified_at = NULL, status = 'DELETED', deleted_at = now()
           WHERE id = $1"#,
        user.id,
        tombstone
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE sessions SET user_agent = NULL, ip_network = NULL WHERE user_id = $1",
        user.id
    )
    .execute(&mut *tx)
    .await?;
    let ended = sessions::end_user_sessions(&mut tx, user.id, "account-deleted", None).await?;
    event_bus::outbox::publish(
        &mut tx,
        &event(UserErasureRequested {
            user_id: user.id,
            requested_by: None,
            requested_at: Utc::now(),
        }),
    )
    .await?;
    tx.commit().await?;
    sessions::forget(&state, &ended).await?;
    tracing::info!(user_id = %user.id, "account deleted and erased");
    Ok((
        StatusCode::NO_CONTENT,
        [(
            header::SET_COOKIE,
            client::clear_refresh_cookie(state.settings.cookie_secure),
        )],
    )
        .into_response())
}

/// The account routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(delete_account))
}
