//! RFC 7807 `application/problem+json` errors, the one error shape every service answers with.
//!
//! Services keep their own `thiserror` enum and turn each variant into a [`Problem`]; unexpected
//! errors become an opaque 500 via [`Problem::internal`], which logs the full cause chain and
//! sends none of it. Database errors go through [`Problem::from_database`], which tells an
//! exhausted connection pool (503, retry) from a real failure.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::request_id;

/// The media type of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Base of every problem `type` URI; the last segment is the stable machine code.
pub const PROBLEM_TYPE_BASE: &str = "https://api.lomashwood.co.uk/problems/";

/// One invalid input field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldError {
    /// Path of the field, e.g. `email` or `items[2].quantity`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An RFC 7807 problem document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Problem {
    /// URI naming the kind of problem; its last segment is a stable machine code.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind of problem.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What went wrong in this occurrence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The request id of this occurrence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Per-field errors for validation failures.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Extra members specific to the problem (e.g. the failing readiness checks).
    #[serde(flatten, default, skip_serializing_if = "serde_json::Map::is_empty")]
    #[schema(value_type = Object)]
    pub extensions: serde_json::Map<String, serde_json::Value>,
    /// Seconds after which a retry may succeed (sent as `Retry-After`, not in the body).
    #[serde(skip)]
    pub retry_after_secs: Option<u64>,
}

impl Problem {
    /// A problem with a status, a stable machine `code` (kebab-case) and a title.
    pub fn new(status: StatusCode, code: &str, title: impl Into<String>) -> Self {
        Self {
            kind: format!("{PROBLEM_TYPE_BASE}{code}"),
            title: title.into(),
            status: status.as_u16(),
            detail: None,
            instance: None,
            errors: Vec::new(),
            extensions: serde_json::Map::new(),
            retry_after_secs: None,
        }
    }

    /// Adds a detail sentence.
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Adds per-field errors.
    #[must_use]
    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    /// Adds an extension member.
    #[must_use]
    pub fn with_extension(mut self, key: &str, value: serde_json::Value) -> Self {
        self.extensions.insert(key.to_owned(), value);
        self
    }

    /// Sets `Retry-After`.
    #[must_use]
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    /// The machine code: the last segment of `type`.
    pub fn code(&self) -> &str {
        self.kind.rsplit('/').next().unwrap_or(&self.kind)
    }

    /// The status as a `StatusCode`.
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// 400: the request could not be read (e.g. malformed JSON).
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", "Bad request").with_detail(detail)
    }

    /// 401: no valid credentials.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Authentication required",
        )
        .with_detail(detail)
    }

    /// 403: authenticated, but not allowed.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden").with_detail(detail)
    }

    /// 404: no such resource.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found").with_detail(detail)
    }

    /// 409: the request conflicts with the current state.
    pub fn conflict(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, "Conflict").with_detail(detail)
    }

    /// 422: the input failed validation.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
            "Validation failed",
        )
        .with_detail("One or more fields are invalid.")
        .with_errors(errors)
    }

    /// 422 for one field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError::new(field, message)])
    }

    /// 429: rate limited.
    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too many requests",
        )
        .with_detail("Rate limit exceeded; retry later.")
        .with_retry_after(retry_after_secs)
    }

    /// 503: a dependency is unavailable.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service-unavailable",
            "Service unavailable",
        )
        .with_detail(detail)
    }

    /// 500 for an unexpected error: logs the full cause chain, sends none of it.
    pub fn internal(error: &(dyn std::error::Error + 'static)) -> Self {
        let mut chain = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            chain.push_str(": ");
            chain.push_str(&cause.to_string());
            source = cause.source();
        }
        tracing::error!(error = %chain, "unexpected error");
        Self::internal_opaque()
    }

    /// The problem for a database error a service has no more specific answer for. Waiting for
    /// a pooled connection longer than `DATABASE_ACQUIRE_TIMEOUT_MS` (or a pool closed by a
    /// shutdown) is a transient overload, not a bug: 503 with `Retry-After`, logged as a warning.
    /// Text Postgres cannot store — U+0000 in a string, which JSON allows as `\u0000` — is the
    /// client's input, not a bug: 422. Anything else is [`Problem::internal`].
    pub fn from_database(error: &sqlx::Error) -> Self {
        match error {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
                tracing::warn!(%error, "no database connection available");
                Self::unavailable("The service is busy; retry shortly.")
                    .with_retry_after(DATABASE_RETRY_AFTER_SECS)
            }
            // 22021 character_not_in_repertoire (NUL in text), 22P05 untranslatable_character
            // (`\u0000` inside jsonb).
            sqlx::Error::Database(db)
                if matches!(db.code().as_deref(), Some("22021" | "22P05")) =>
            {
                Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "unstorable-text",
                    "Validation failed",
                )
                .with_detail(
                    "A text value contains the NUL character (U+0000), which cannot be stored.",
                )
            }
            _ => Self::internal(error),
        }
    }

    /// 500 with no cause to log (it has been logged already).
    pub fn internal_opaque() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal server error",
        )
        .with_detail("Something went wrong on our side; the request id identifies it.")
    }

    /// The canonical problem for a bare status (used for framework-made error responses).
    pub fn from_status(status: StatusCode) -> Self {
        let (code, detail) = match status {
            StatusCode::NOT_FOUND => ("not-found", "No resource matches this path."),
            StatusCode::METHOD_NOT_ALLOWED => (
                "method-not-allowed",
                "This resource does not support this method.",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => {
                ("payload-too-large", "The request body is too large.")
            }
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                "unsupported-media-type",
                "The request body has an unsupported media type.",
            ),
            StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => {
                ("timeout", "The request took too long.")
            }
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
                ("headers-too-large", "The request headers are too large.")
            }
            StatusCode::URI_TOO_LONG => ("uri-too-long", "The request URI is too long."),
            StatusCode::BAD_REQUEST => ("bad-request", "The request could not be read."),
            StatusCode::UNAUTHORIZED => ("unauthorized", "Authentication required."),
            StatusCode::FORBIDDEN => ("forbidden", "Not allowed."),
            StatusCode::SERVICE_UNAVAILABLE => (
                "service-unavailable",
                "The service cannot answer right now.",
            ),
            s if s.is_server_error() => ("internal", "Something went wrong on our side."),
            _ => ("error", "The request failed."),
        };
        Self::new(
            status,
            code,
            status.canonical_reason().unwrap_or("Error").to_owned(),
        )
        .with_detail(detail)
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.title)?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problem {}

impl IntoResponse for Problem {
    fn into_response(mut self) -> Response {
        if self.instance.is_none() {
            self.instance = request_id::current();
        }
        let status = self.status_code();
        let retry_after = self.retry_after_secs;
        let body = serde_json::to_vec(&self).unwrap_or_else(|_| b"{}".to_vec());
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(secs) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// The `Retry-After` of a 503 for an exhausted database pool: a connection is usually free again
/// within a second (requests hold one for milliseconds).
pub const DATABASE_RETRY_AFTER_SECS: u64 = 1;

/// Errors raised by sqlx that carry a named constraint: lets services map unique and foreign-key
/// violations to 409/422 by constraint name.
pub fn violated_constraint(error: &sqlx::Error) -> Option<&str> {
    match error {
        sqlx::Error::Database(db) => db.constraint(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_with_rfc7807_member_names() {
        let problem = Problem::validation(vec![FieldError::new("email", "is not an email")]);
        let json = serde_json::to_value(&problem).expect("serialises");
        assert_eq!(
            json["type"],
            "https://api.lomashwood.co.uk/problems/validation-failed"
        );
        assert_eq!(json["status"], 422);
        assert_eq!(json["errors"][0]["field"], "email");
        assert!(json.get("instance").is_none());
        assert_eq!(problem.code(), "validation-failed");
    }

    #[test]
    fn internal_errors_send_no_cause() {
        let io = std::io::Error::other("password authentication failed for user lomash");
        let problem = Problem::internal(&io);
        let json = serde_json::to_string(&problem).expect("serialises");
        assert!(!json.contains("password"), "{json}");
        assert_eq!(problem.status, 500);
    }

    /// A real `PoolTimedOut`: the only connection of a one-connection pool is held while a
    /// request waits for another, with a tiny acquire timeout.
    #[tokio::test]
    async fn an_exhausted_pool_is_503_with_retry_after() {
        let url = std::env::var("TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let pool =
            crate::db::connect_with_timeout(&url, 1, std::time::Duration::from_millis(50), None)
                .await
                .expect("Postgres answers");
        let held = pool.acquire().await.expect("the one connection");
        let error = sqlx::query("SELECT 1")
            .execute(&pool)
            .await
            .expect_err("no connection is free");
        assert!(matches!(error, sqlx::Error::PoolTimedOut), "{error:?}");

        let response = Problem::from_database(&error).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        assert_eq!(
            response.headers()[header::RETRY_AFTER],
            DATABASE_RETRY_AFTER_SECS.to_string().as_str()
        );
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("a body");
        let problem: Problem = serde_json::from_slice(&body).expect("a problem document");
        assert_eq!(problem.status, 503);
        assert_eq!(problem.code(), "service-unavailable");

        // With the connection back, the same pool serves; a real failure of a query is still
        // a 500 that tells nothing.
        drop(held);
        let failed = sqlx::query("SELECT * FROM no_such_table_here")
            .execute(&pool)
            .await
            .expect_err("no such table");
        let problem = Problem::from_database(&failed);
        assert_eq!(problem.status, 500);
        assert!(!problem.to_string().contains("no_such_table"), "{problem}");

        // NUL in text or in jsonb is the client's input: 422, not 500.
        for (sql, value) in [
            ("SELECT $1::text", "a\u{0}b"),
            ("SELECT $1::jsonb", "\"a\\u0000b\""),
        ] {
            let unstorable = sqlx::query(sql)
                .bind(value)
                .execute(&pool)
                .await
                .expect_err("Postgres refuses NUL");
            let problem = Problem::from_database(&unstorable);
            assert_eq!(problem.status, 422, "{sql}: {unstorable:?}");
            assert_eq!(problem.code(), "unstorable-text");
        }

        // A pool closed by a shutdown is not a bug either.
        pool.close().await;
        let closed = sqlx::query("SELECT 1")
            .execute(&pool)
            .await
            .expect_err("the pool is closed");
        assert_eq!(Problem::from_database(&closed).status, 503);
    }
}
