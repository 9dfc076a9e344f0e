//! Administration of users: the admin table (`GET /v1/auth/users`), role and status changes
//! (`PATCH /v1/auth/users/{id}`), and [`create_admin`] for `cargo xtask create-admin`.
//!
//! Rules: ADMIN and SUPER_ADMIN may list users and change CONSULTANT/CUSTOMER accounts; only a
//! SUPER_ADMIN grants or revokes ADMIN or SUPER_ADMIN, or changes the status of an
//! administrator. Nobody changes their own role or status (no accidental lock-out). Suspending
//! a user, or changing their role, ends their sessions at once (Postgres, then the Redis
//! allow-list), so the change cannot wait for a 15-minute access token to expire.

use std::str::FromStr;

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::json;
use service_kit::audit::Entry;
use service_kit::{AdminCaller, OffsetPage, PageParams, Role, ValidatedJson, ValidatedQuery};
use shared_types::auth::UserCreated;
use sqlx::PgPool;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use validation::{Email, PasswordContext};
use validator::Validate;

use crate::account::{self, RoleName, User, UserRow, UserStatus, UserView};
use crate::error::{AuthError, AuthResult};
use crate::{AppState, crypto, event, register, sessions};

/// Query of the admin table: paging, filters and an email-prefix search.
#[derive(Debug, Default, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsersQuery {
    /// Page number from 1.
    #[validate(range(min = 1, max = 100000, message = "must be at least 1"))]
    #[param(minimum = 1, maximum = 100000)]
    pub page: Option<u32>,
    /// Rows a page, 1–100 (default 20).
    #[serde(rename = "pageSize")]
    #[validate(range(min = 1, max = 100, message = "must be between 1 and 100"))]
    #[param(minimum = 1, maximum = 100)]
    pub page_size: Option<u32>,
    /// Roles to include, comma-separated (`ADMIN,CONSULTANT`).
    #[serde(rename = "filter[role]")]
    #[param(
        pattern = r"^(?:[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*,)*[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?:SUPER_ADMIN|ADMIN|CONSULTANT|CUSTOMER)[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?:,[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?:(?:SUPER_ADMIN|ADMIN|CONSULTANT|CUSTOMER)[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*)?)*$"
    )]
    pub role: Option<String>,
    /// Statuses to include, comma-separated (`ACTIVE,SUSPENDED`).
    #[serde(rename = "filter[status]")]
    #[param(
        pattern = r"^(?:[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*,)*[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?:ACTIVE|SUSPENDED|DELETED)[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?:,[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?:(?:ACTIVE|SUSPENDED|DELETED)[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*)?)*$"
    )]
    pub status: Option<String>,
    /// Email prefix, case-insensitive (`jane.d`).
    #[serde(rename = "filter[email]")]
    #[validate(length(min = 1, max = 254, message = "must be 1–254 characters"))]
    #[param(min_length = 1, max_length = 254)]
    pub email: Option<String>,
}

fn parse_list<T: FromStr>(field: &str, raw: Option<&str>) -> AuthResult<Option<Vec<String>>> {
    let Some(raw) = raw else { return Ok(None) };
    let items: Vec<String> = raw
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if items.is_empty() || items.iter().any(|item| T::from_str(item).is_err()) {
        return Err(AuthError::field(field, "contains an unknown value"));
    }
    Ok(Some(items))
}

/// `%` and `_` are literal in a search prefix.
fn like_prefix(prefix: &str) -> String {
    let mut escaped = String::with_capacity(prefix.len() + 1);
    for c in prefix.trim().to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped.push('%');
    escaped
}

/// Users, newest first, filtered (ADMIN, SUPER_ADMIN).
#[utoipa::path(
    get,
    path = "/v1/auth/users",
    tag = "users",
    params(UsersQuery),
    responses(
        (status = 200, description = "One page of users", body = OffsetPage<UserView>),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown filter or value", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn list_users(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ValidatedQuery(query): ValidatedQuery<UsersQuery>,
) -> AuthResult<Json<OffsetPage<UserView>>> {
    let roles = parse_list::<Role>("filter[role]", query.role.as_deref())?;
    let statuses = parse_list::<UserStatus>("filter[status]", query.status.as_deref())?;
    let email = query.email.as_deref().map(like_prefix);
    let paging = PageParams {
        page: query.page,
        page_size: query.page_size,
    };
    let total = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM users
           WHERE ($1::text[] IS NULL OR role = ANY($1))
             AND ($2::text[] IS NULL OR status = ANY($2))
             AND ($3::text IS NULL OR lower(email) LIKE $3)"#,
        roles.as_deref(),
        statuses.as_deref(),
        email
    )
    .fetch_one(&state.db)
    .await?;
    let rows = sqlx::query_as!(
        UserRow,
        r#"SELECT id, email, password_hash, first_name, last_name, phone, role, status,
                  email_verified_at, created_at
           FROM users
           WHERE ($1::text[] IS NULL OR role = ANY($1))
             AND ($2::text[] IS NULL OR status = ANY($2))
             AND ($3::text IS NULL OR lower(email) LIKE $3)
           ORDER BY created_at DESC, id DESC
           LIMIT $4 OFFSET $5"#,
        roles.as_deref(),
        statuses.as_deref(),
        email,
        i64::from(paging.page_size()),
        paging.offset()
    )
    .fetch_all(&state.db)
    .await?;
    let data = rows
        .into_iter()
        .map(|row| User::try_from(row).map(|user| UserView::from(&user)))
        .collect::<AuthResult<Vec<_>>>()?;
    Ok(Json(OffsetPage {
        data,
        page: paging.page(),
        page_size: paging.page_size(),
        total,
    }))
}

/// A status an administrator may set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SettableStatus {
    /// Can sign in.
    Active,
    /// Blocked; sessions end at once.
    Suspended,
}

impl From<SettableStatus> for UserStatus {
    fn from(status: SettableStatus) -> Self {
        match status {
            SettableStatus::Active => UserStatus::Active,
            SettableStatus::Suspended => UserStatus::Suspended,
        }
    }
}

/// `PATCH /v1/auth/users/{id}` (JSON Merge Patch): absent members are left as they are.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// New role (left out: unchanged; a user always has a role, so `null` is refused).
    #[serde(default, deserialize_with = "service_kit::merge_patch::nullable")]
    #[schema(value_type = RoleName, required = false)]
    pub role: Option<Option<Role>>,
    /// New status (left out: unchanged; a user always has a status, so `null` is refused).
    #[serde(default, deserialize_with = "service_kit::merge_patch::nullable")]
    #[schema(value_type = SettableStatus, required = false)]
    pub status: Option<Option<SettableStatus>>,
}

/// Changes a user's role or status (ADMIN, SUPER_ADMIN; see the module rules).
#[utoipa::path(
    patch,
    path = "/v1/auth/users/{id}",
    tag = "users",
    params(("id" = Uuid, Path, description = "User id")),
    request_body(content = UserPatch, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "The updated user", body = UserView),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed for this role or user", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The account is deleted", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid patch", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Sessions could not be revoked; retry", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn patch_user(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<Uuid>,
    ValidatedJson(patch): ValidatedJson<UserPatch>,
) -> AuthResult<Json<UserView>> {
    let role = match patch.role {
        Some(None) => return Err(AuthError::field("role", "cannot be null")),
        other => other.flatten(),
    };
    let status = match patch.status {
        Some(None) => return Err(AuthError::field("status", "cannot be null")),
        other => other.flatten().map(UserStatus::from),
    };
    let mut tx = state.db.begin().await?;
    let Some(user) = account::find_by_id_for_update(&mut tx, id).await? else {
        return Err(AuthError::NotFound("user"));
    };
    if user.status == UserStatus::Deleted {
        return Err(AuthError::Conflict(
            "user-deleted",
            "This account has been deleted.",
        ));
    }
    let role_change = role.filter(|r| *r != user.role);
    let status_change = status.filter(|s| *s != user.status);
    if role_change.is_none() && status_change.is_none() {
        return Ok(Json(UserView::from(&user)));
    }
    if user.id == admin.user_id {
        return Err(AuthError::Forbidden(
            "You cannot change your own role or status.",
        ));
    }
    let touches_admins = user.role.is_admin() || role_change.is_some_and(Role::is_admin);
    if touches_admins && admin.role != Role::SuperAdmin {
        return Err(AuthError::Forbidden(
            "Only a SUPER_ADMIN grants, revokes or changes administrator accounts.",
        ));
    }
    let new_role = role_change.unwrap_or(user.role);
    let new_status = status_change.unwrap_or(user.status);
    let row = sqlx::query_as!(
        UserRow,
        r#"UPDATE users SET role = $2, status = $3 WHERE id = $1
           RETURNING id, email, password_hash, first_name, last_name, phone, role, status,
                     email_verified_at, created_at"#,
        user.id,
        new_role.as_str(),
        new_status.as_str()
    )
    .fetch_one(&mut *tx)
    .await?;
    let ended = if new_status == UserStatus::Suspended || role_change.is_some() {
        let reason = if status_change == Some(UserStatus::Suspended) {
            "suspended"
        } else {
            "role-changed"
        };
        sessions::end_user_sessions(&mut tx, user.id, reason, None).await?
    } else {
        Vec::new()
    };
    let action = match (role_change, status_change) {
        (Some(_), None) => "role.change".to_owned(),
        (None, Some(status)) => format!("status.{}", status.as_str().to_ascii_lowercase()),
        _ => "update".to_owned(),
    };
    Entry::new(&admin, "user", user.id, &action)
        .before(&json!({"role": user.role, "status": user.status.as_str()}))
        .after(&json!({"role": new_role, "status": new_status.as_str()}))
        .record(&mut tx)
        .await?;
    tx.commit().await?;
    sessions::forget(&state, &ended).await?;
    tracing::info!(
        admin_id = %admin.user_id,
        user_id = %user.id,
        role = %new_role,
        status = new_status.as_str(),
        "user updated by an administrator"
    );
    Ok(Json(UserView::from(&User::try_from(row)?)))
}

/// What [`create_admin`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminOutcome {
    /// A new SUPER_ADMIN account was created with the given password (email verified).
    Created(Uuid),
    /// An existing account was made SUPER_ADMIN, active and verified; its password was left
    /// unchanged (use forgot-password to change it).
    Promoted(Uuid),
}

/// Why [`create_admin`] refused.
#[derive(Debug, thiserror::Error)]
pub enum CreateAdminError {
    /// Not an email address.
    #[error("email {0}")]
    Email(String),
    /// The password fails the policy.
    #[error("password {0}")]
    Password(String),
    /// The account was erased.
    #[error("that account has been deleted")]
    Deleted,
    /// Anything else.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Creates the SUPER_ADMIN `email` with `password` (verified, active), or promotes the existing
/// account with that address to SUPER_ADMIN (verified, active, password unchanged). For
/// `cargo xtask create-admin`.
pub async fn create_admin(
    pool: &PgPool,
    email: &str,
    password: &str,
) -> Result<AdminOutcome, CreateAdminError> {
    let email = Email::parse(email).map_err(|e| CreateAdminError::Email(e.message()))?;
    let mut tx = pool.begin().await.map_err(anyhow::Error::from)?;
    let existing = sqlx::query!(
        "SELECT id, status FROM users WHERE lower(email) = lower($1) FOR UPDATE",
        email.as_str()
    )
    .fetch_optional(&mut *tx)
    .await
    .map_err(anyhow::Error::from)?;
    if let Some(existing) = existing {
        if existing.status == UserStatus::Deleted.as_str() {
            return Err(CreateAdminError::Deleted);
        }
        sqlx::query!(
            r#"UPDATE users SET role = 'SUPER_ADMIN', status = 'ACTIVE',
                      email_verified_at = COALESCE(email_verified_at, now())
               WHERE id = $1"#,
            existing.id
        )
        .execute(&mut *tx)
        .await
        .map_err(anyhow::Error::from)?;
        tx.commit().await.map_err(anyhow::Error::from)?;
        return Ok(AdminOutcome::Promoted(existing.id));
    }
    validation::check_password(password, &PasswordContext::with_email(email.as_str()))
        .map_err(|e| CreateAdminError::Password(e.message()))?;
    let hash = crypto::hash_password(password)
        .await
        .map_err(anyhow::Error::from)?;
    let id = Uuid::now_v7();
    let created_at = sqlx::query_scalar!(
        r#"INSERT INTO users (id, email, password_hash, role, status, email_verified_at)
           VALUES ($1, $2, $3, 'SUPER_ADMIN', 'ACTIVE', now())
           RETURNING created_at"#,
        id,
        email.as_str(),
        hash
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(anyhow::Error::from)?;
    event_bus::outbox::publish(
        &mut tx,
        &event(UserCreated {
            user_id: id,
            email: email.as_str().to_owned(),
            first_name: String::new(),
            last_name: String::new(),
            phone: None,
            role: register::user_role(Role::SuperAdmin),
            marketing_opt_in: false,
            created_at,
        }),
    )
    .await
    .map_err(anyhow::Error::from)?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    Ok(AdminOutcome::Created(id))
}

/// The admin routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users))
        .routes(routes!(patch_user))
}
