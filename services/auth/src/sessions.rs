//! Sessions and refresh tokens: creation at login, rotation (`/refresh`) with reuse detection,
//! logout, listing and revocation, and the Redis allow-list the gateway checks.
//!
//! A session is live while its row has no `revoked_at` and has not expired; exactly then the
//! key `auth_client::session_key(prefix, sid)` exists in Redis (value: the user id, TTL: the
//! session's expiry). Creation writes the row, then the key, then commits (a failed Redis write
//! aborts the login). Revocation commits the row first, then deletes the key; if Redis fails the
//! request fails with 503 and a retry deletes the key again (revocations also clear the keys of
//! sessions revoked earlier and not yet expired, so nothing stays allowed by a missed delete).
//! Rotation only *extends* an existing key (`SET … XX`): a key that vanished (Redis lost its
//! data) is never brought back, the session is ended instead.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use service_kit::caller::FirstFactorCaller;
use sqlx::{PgConnection, PgTransaction};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::account::{self, User, UserStatus, UserView};
use crate::client::{self, ClientMeta};
use crate::crypto;
use crate::error::{AuthError, AuthResult};

/// The Redis key of a live session.
pub(crate) fn session_key(state: &AppState, session_id: Uuid) -> String {
    auth_client::session_key(state.redis.prefix(), session_id)
}

/// What a successful login or refresh answers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenResponse {
    /// RS256 JWT to send as `Authorization: Bearer …`.
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The signed-in user.
    pub user: UserView,
}

/// A new session's identifiers and its first refresh token.
pub(crate) struct NewSession {
    pub session_id: Uuid,
    pub refresh_token: String,
}

/// Creates a session with its first refresh token inside `tx` and adds it to the Redis
/// allow-list; the caller commits.
pub(crate) async fn create(
    state: &AppState,
    tx: &mut PgTransaction<'_>,
    user: &User,
    meta: &ClientMeta,
    amr: &[String],
) -> AuthResult<NewSession> {
    let session_id = Uuid::now_v7();
    let family_id = Uuid::now_v7();
    let ttl = state.settings.refresh_token_ttl;
    let expires_at = Utc::now() + ttl;
    sqlx::query(
        r#"INSERT INTO sessions (id, user_id, family_id, user_agent, ip_network, expires_at, amr)
           VALUES ($1, $2, $3, $4, $5, $6, $7)"#,
    )
    .bind(session_id)
    .bind(user.id)
    .bind(family_id)
    .bind(&meta.user_agent)
    .bind(meta.ip_network())
    .bind(expires_at)
    .bind(amr)
    .execute(&mut **tx)
    .await?;
    let refresh_token = crypto::random_token();
    insert_refresh_token(tx, &refresh_token, family_id, session_id, expires_at).await?;
    let mut redis = state.redis.conn();
    redis::cmd("SET")
        .arg(session_key(state, session_id))
        .arg(user.id.to_string())
        .arg("EX")
        .arg(ttl.as_secs())
        .query_async::<()>(&mut redis)
        .await?;
    Ok(NewSession {
        session_id,
        refresh_token,
    })
}

async fn insert_refresh_token(
    conn: &mut PgConnection,
    token: &str,
    family_id: Uuid,
    session_id: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"INSERT INTO refresh_tokens (id, token_hash, family_id, session_id, expires_at)
           VALUES ($1, $2, $3, $4, $5)"#,
        Uuid::now_v7(),
        crypto::sha256(token),
        family_id,
        session_id,
        expires_at
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The token answer: access token in the body, refresh token in an HttpOnly cookie, never
/// cached. `amr` is how the session signed in.
pub(crate) async fn token_response(
    state: &AppState,
    user: &User,
    session_id: Uuid,
    refresh_token: &str,
    amr: Vec<String>,
) -> AuthResult<Response> {
    let ttl = state.settings.access_token_ttl;
    let now = Utc::now().timestamp();
    let claims = auth_client::AccessClaims {
        iss: auth_client::access::ACCESS_ISSUER.to_owned(),
        aud: auth_client::access::ACCESS_AUDIENCE.to_owned(),
        sub: user.id,
        role: user.role,
        sid: session_id,
        amr,
        jti: Uuid::now_v7(),
        iat: now,
        exp: now + ttl.as_secs() as i64,
    };
    let access_token = state.keys.sign(&claims).await?;
    let body = TokenResponse {
        access_token,
        token_type: "Bearer".to_owned(),
        expires_in: ttl.as_secs(),
        user: UserView::from(user),
    };
    let cookie = client::refresh_cookie(
        refresh_token,
        state.settings.refresh_token_ttl.as_secs(),
        state.settings.cookie_secure,
    );
    Ok((
        [
            (header::SET_COOKIE, cookie),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        Json(body),
    )
        .into_response())
}

/// Revokes every live session of `user_id` (but `except`) and returns the ids whose allow-list
/// keys must go: those just revoked and any revoked earlier that have not expired yet.
pub(crate) async fn end_user_sessions(
    tx: &mut PgTransaction<'_>,
    user_id: Uuid,
    reason: &str,
    except: Option<Uuid>,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query!(
        r#"UPDATE sessions SET revoked_at = now(), revoked_reason = $2
           WHERE user_id = $1 AND revoked_at IS NULL AND ($3::uuid IS NULL OR id <> $3)"#,
        user_id,
        reason,
        except
    )
    .execute(&mut **tx)
    .await?;
    sqlx::query_scalar!(
        r#"SELECT id FROM sessions
           WHERE user_id = $1 AND revoked_at IS NOT NULL AND expires_at > now()
             AND ($2::uuid IS NULL OR id <> $2)"#,
        user_id,
        except
    )
    .fetch_all(&mut **tx)
    .await
}

/// Revokes the sessions of a refresh-token family.
async fn end_family(
    tx: &mut PgTransaction<'_>,
    family_id: Uuid,
    reason: &str,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"UPDATE sessions SET revoked_at = COALESCE(revoked_at, now()),
                               revoked_reason = COALESCE(revoked_reason, $2)
           WHERE family_id = $1 RETURNING id"#,
        family_id,
        reason
    )
    .fetch_all(&mut **tx)
    .await
}

/// Revokes one session of `user_id`; `false` when the user has no such session.
async fn end_one(
    tx: &mut PgTransaction<'_>,
    user_id: Uuid,
    session_id: Uuid,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let found = sqlx::query_scalar!(
        r#"UPDATE sessions SET revoked_at = COALESCE(revoked_at, now()),
                               revoked_reason = COALESCE(revoked_reason, $3)
           WHERE id = $1 AND user_id = $2 RETURNING id"#,
        session_id,
        user_id,
        reason
    )
    .fetch_optional(&mut **tx)
    .await?;
    Ok(found.is_some())
}

/// Removes sessions from the Redis allow-list (after the revocation committed). A Redis failure
/// is an error (503): the revocation must not be reported done while the gateway still allows
/// the session.
pub(crate) async fn forget(state: &AppState, session_ids: &[Uuid]) -> AuthResult<()> {
    if session_ids.is_empty() {
        return Ok(());
    }
    let keys: Vec<String> = session_ids
        .iter()
        .map(|id| session_key(state, *id))
        .collect();
    let mut redis = state.redis.conn();
    redis::cmd("DEL")
        .arg(keys)
        .query_async::<()>(&mut redis)
        .await?;
    Ok(())
}

/// `POST /v1/auth/refresh` body, for clients that cannot keep cookies.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefreshRequest {
    /// The refresh token (browsers send the `refresh_token` cookie instead).
    pub refresh_token: Option<String>,
}

/// The refresh token of the request: the cookie, else the body.
fn presented_refresh_token(headers: &HeaderMap, body: &Bytes) -> AuthResult<String> {
    if let Some(token) = client::refresh_token_cookie(headers) {
        return Ok(token);
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(AuthError::InvalidRefreshToken);
    }
    // The documented body is optional (`RefreshRequest` or `null`): `null` presents no token.
    let request: Option<RefreshRequest> = service_kit::extract::parse_json(body)?;
    request
        .and_then(|request| request.refresh_token)
        .filter(|token| !token.is_empty())
        .ok_or(AuthError::InvalidRefreshToken)
}

/// Exchanges a refresh token for a new access token and a new refresh token. The presented
/// token is spent; presenting it again revokes its whole family (every session it led to).
#[utoipa::path(
    post,
    path = "/v1/auth/refresh",
    tag = "sessions",
    request_body(content = Option<RefreshRequest>, description = "Only for clients without the cookie"),
    responses(
        (status = 200, description = "New tokens; the new refresh token is in Set-Cookie", body = TokenResponse),
        (status = 401, description = "Missing, invalid, expired or reused refresh token", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Session storage unavailable", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn refresh(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> AuthResult<Response> {
    let token = presented_refresh_token(&headers, &body)?;
    let mut tx = state.db.begin().await?;
    let Some(row) = sqlx::query!(
        r#"SELECT rt.id, rt.family_id, rt.session_id, rt.expires_at, rt.used_at,
                  s.user_id, s.revoked_at, s.expires_at AS session_expires_at
           FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id
           WHERE rt.token_hash = $1
           FOR UPDATE OF rt, s"#,
        crypto::sha256(&token)
    )
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Err(AuthError::InvalidRefreshToken);
    };

    if row.used_at.is_some() {
        // Reuse: someone holds a token that was already exchanged. End the whole family.
        let ended = end_family(&mut tx, row.family_id, "refresh-token-reuse").await?;
        tx.commit().await?;
        tracing::warn!(user_id = %row.user_id, family_id = %row.family_id, "refresh token reused; family revoked");
        forget(&state, &ended).await?;
        return Err(AuthError::RefreshTokenReused);
    }
    let now = Utc::now();
    if row.revoked_at.is_some() || row.expires_at <= now || row.session_expires_at <= now {
        return Err(AuthError::InvalidRefreshToken);
    }
    let user = match account::find_by_id(&mut tx, row.user_id).await? {
        Some(user) if user.status == UserStatus::Active => user,
        _ => {
            let ended = end_family(&mut tx, row.family_id, "account-inactive").await?;
            tx.commit().await?;
            forget(&state, &ended).await?;
            return Err(AuthError::InvalidRefreshToken);
        }
    };

    sqlx::query!(
        "UPDATE refresh_tokens SET used_at = now() WHERE id = $1",
        row.id
    )
    .execute(&mut *tx)
    .await?;
    let ttl = state.settings.refresh_token_ttl;
    let expires_at = now + ttl;
    let new_token = crypto::random_token();
    insert_refresh_token(
        &mut tx,
        &new_token,
        row.family_id,
        row.session_id,
        expires_at,
    )
    .await?;
    sqlx::query!(
        "UPDATE sessions SET last_used_at = now(), expires_at = $2 WHERE id = $1",
        row.session_id,
        expires_at
    )
    .execute(&mut *tx)
    .await?;
    // Extend the allow-list entry, never create it: if it vanished, the session is over.
    let mut redis = state.redis.conn();
    let extended: Option<String> = redis::cmd("SET")
        .arg(session_key(&state, row.session_id))
        .arg(user.id.to_string())
        .arg("XX")
        .arg("EX")
        .arg(ttl.as_secs())
        .query_async(&mut redis)
        .await?;
    if extended.is_none() {
        drop(tx);
        let mut tx = state.db.begin().await?;
        end_family(&mut tx, row.family_id, "allow-list-lost").await?;
        tx.commit().await?;
        return Err(AuthError::InvalidRefreshToken);
    }
    // The session keeps the sign-in methods it started with (a second factor included).
    let amr: Vec<String> = sqlx::query_scalar("SELECT amr FROM sessions WHERE id = $1")
        .bind(row.session_id)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    token_response(&state, &user, row.session_id, &new_token, amr).await
}

fn no_content_clearing_cookie(state: &AppState) -> Response {
    (
        StatusCode::NO_CONTENT,
        [(
            header::SET_COOKIE,
            client::clear_refresh_cookie(state.settings.cookie_secure),
        )],
    )
        .into_response()
}

/// Ends the caller's current session.
#[utoipa::path(
    post,
    path = "/v1/auth/logout",
    tag = "sessions",
    responses(
        (status = 204, description = "Signed out; the refresh cookie is cleared"),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Session storage unavailable; retry", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn logout(
    State(state): State<AppState>,
    FirstFactorCaller(caller): FirstFactorCaller,
) -> AuthResult<Response> {
    let mut tx = state.db.begin().await?;
    let found = end_one(&mut tx, caller.user_id, caller.session_id, "logout").await?;
    tx.commit().await?;
    if found {
        forget(&state, &[caller.session_id]).await?;
    }
    Ok(no_content_clearing_cookie(&state))
}

/// Ends every session of the caller, this one included.
#[utoipa::path(
    post,
    path = "/v1/auth/logout-all",
    tag = "sessions",
    responses(
        (status = 204, description = "Every session ended; the refresh cookie is cleared"),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Session storage unavailable; retry", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn logout_all(
    State(state): State<AppState>,
    FirstFactorCaller(caller): FirstFactorCaller,
) -> AuthResult<Response> {
    let mut tx = state.db.begin().await?;
    let ended = end_user_sessions(&mut tx, caller.user_id, "logout-all", None).await?;
    tx.commit().await?;
    forget(&state, &ended).await?;
    Ok(no_content_clearing_cookie(&state))
}

/// One of the caller's live sessions.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    /// Session id.
    pub id: Uuid,
    /// Whether this is the session making the request.
    pub current: bool,
    /// The browser or app that signed in.
    pub user_agent: Option<String>,
    /// The network it signed in from (`203.0.113.0/24`), never the full address.
    pub ip_network: Option<String>,
    /// When it signed in.
    pub created_at: DateTime<Utc>,
    /// When it last refreshed its tokens.
    pub last_used_at: DateTime<Utc>,
    /// When it ends unless refreshed.
    pub expires_at: DateTime<Utc>,
}

/// The caller's live sessions, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionList {
    /// The sessions.
    pub data: Vec<SessionView>,
}

/// The caller's live sessions, the current one marked.
#[utoipa::path(
    get,
    path = "/v1/auth/sessions",
    tag = "sessions",
    responses(
        (status = 200, description = "Live sessions", body = SessionList),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn list_sessions(
    State(state): State<AppState>,
    FirstFactorCaller(caller): FirstFactorCaller,
) -> AuthResult<Json<SessionList>> {
    let rows = sqlx::query!(
        r#"SELECT id, user_agent, ip_network, created_at, last_used_at, expires_at
           FROM sessions
           WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now()
           ORDER BY created_at DESC"#,
        caller.user_id
    )
    .fetch_all(&state.db)
    .await?;
    Ok(Json(SessionList {
        data: rows
            .into_iter()
            .map(|row| SessionView {
                current: row.id == caller.session_id,
                id: row.id,
                user_agent: row.user_agent,
                ip_network: row.ip_network,
                created_at: row.created_at,
                last_used_at: row.last_used_at,
                expires_at: row.expires_at,
            })
            .collect(),
    }))
}

/// Ends one of the caller's sessions (another device, or this one).
#[utoipa::path(
    delete,
    path = "/v1/auth/sessions/{id}",
    tag = "sessions",
    params(("id" = Uuid, Path, description = "Session id")),
    responses(
        (status = 204, description = "Session ended"),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not one of the caller's sessions", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Session storage unavailable; retry", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn delete_session(
    State(state): State<AppState>,
    FirstFactorCaller(caller): FirstFactorCaller,
    Path(id): Path<Uuid>,
) -> AuthResult<StatusCode> {
    let mut tx = state.db.begin().await?;
    if !end_one(&mut tx, caller.user_id, id, "revoked-by-user").await? {
        return Err(AuthError::NotFound("session"));
    }
    tx.commit().await?;
    forget(&state, &[id]).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Whether `session_id` is on the allow-list (for `/internal/verify`).
pub(crate) async fn is_live(state: &AppState, session_id: Uuid) -> AuthResult<bool> {
    let mut redis = state.redis.conn();
    let exists: bool = redis::cmd("EXISTS")
        .arg(session_key(state, session_id))
        .query_async(&mut redis)
        .await?;
    Ok(exists)
}

/// The session routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(logout_all))
        .routes(routes!(list_sessions))
        .routes(routes!(delete_session))
}
