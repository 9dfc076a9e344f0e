//! `Idempotency-Key` records for `POST`s that must not happen twice (`POST /v1/orders`, payment
//! intents).
//!
//! A record is keyed by **(caller, key)** — the caller being the signed-in user (or the service
//! name) — and remembers a fingerprint of the request (method, path and the JSON body in
//! canonical form, so key order and whitespace do not matter) and, once finished, the response's
//! status, content type and exact bytes. Then, for 24 hours:
//! - same key, same request, finished → the stored response, byte for byte
//!   (`Idempotent-Replayed: true`);
//! - same key, another request → 422 `idempotency-key-reused`;
//! - same key while the first request is still running → 409 `idempotency-key-in-flight`
//!   (a record whose request died is taken over once its lock lapses, after 60 s).
//!
//! # Use
//! ```text
//! let fingerprint = idempotency::fingerprint("POST", "/v1/orders", &body_json);
//! match idempotency::begin(&db, &caller_key, &key.0, &fingerprint).await? {
//!     Begin::Replay(response) => return Ok(response),
//!     Begin::Proceed(claim) => {
//!         // ... do the work in `tx`; then, in the same transaction:
//!         let response = claim.complete(&mut tx, StatusCode::CREATED, &body).await?;
//!         tx.commit().await?;            // the state change and its stored answer commit together
//!         // on failure before commit: claim.abandon(&db).await (so a retry may run)
//!     }
//! }
//! ```
//! Finished 4xx answers (validation, conflicts) are stored and replayed like successes; 5xx and
//! upstream failures abandon the record so the client can retry with the same key.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};

use crate::error::{OrderError, OrderResult};

/// How long a record answers replays.
pub const RECORD_TTL: chrono::Duration = chrono::Duration::hours(24);

/// How long an unfinished record blocks its key before it counts as abandoned.
pub const LOCK_TTL: chrono::Duration = chrono::Duration::seconds(60);

/// The header marking a replayed response.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// The fingerprint of a request: SHA-256 over method, path and the canonical JSON body
/// (`serde_json::Value` keeps object keys sorted, so equal JSON hashes equally).
pub fn fingerprint(method: &str, path: &str, body: &serde_json::Value) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update(b" ");
    hasher.update(path.as_bytes());
    hasher.update(b"\n");
    hasher.update(body.to_string().as_bytes());
    hex::encode(hasher.finalize())
}

/// What [`begin`] decided.
#[derive(Debug)]
pub enum Begin {
    /// The key is ours: do the work, then [`Claim::complete`] (or [`Claim::abandon`]).
    Proceed(Claim),
    /// The request already ran: send this stored response.
    Replay(Response),
}

/// The right to run the request under a key.
#[derive(Debug, Clone)]
pub struct Claim {
    caller: String,
    key: String,
}

struct Record {
    request_hash: String,
    response_status: Option<i16>,
    response_headers: Option<serde_json::Value>,
    response_body: Option<Vec<u8>>,
    locked_until: DateTime<Utc>,
}

/// Claims `key` for `caller`'s request with `fingerprint`, or says why not.
pub async fn begin(db: &PgPool, caller: &str, key: &str, fingerprint: &str) -> OrderResult<Begin> {
    let now = Utc::now();
    // A lapsed record no longer exists as far as clients are concerned.
    sqlx::query!(
        "DELETE FROM idempotency_records WHERE caller = $1 AND key = $2 AND expires_at <= $3",
        caller,
        key,
        now
    )
    .execute(db)
    .await?;
    let inserted = sqlx::query!(
        "INSERT INTO idempotency_records (caller, key, request_hash, locked_until, expires_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (caller, key) DO NOTHING",
        caller,
        key,
        fingerprint,
        now + LOCK_TTL,
        now + RECORD_TTL
    )
    .execute(db)
    .await?
    .rows_affected();
    let claim = Claim {
        caller: caller.to_owned(),
        key: key.to_owned(),
    };
    if inserted == 1 {
        return Ok(Begin::Proceed(claim));
    }
    let Some(record) = sqlx::query_as!(
        Record,
        "SELECT request_hash, response_status, response_headers, response_body, locked_until
         FROM idempotency_records WHERE caller = $1 AND key = $2",
        caller,
        key
    )
    .fetch_optional(db)
    .await?
    else {
        // Deleted between our insert and select (abandoned just now): the client may retry.
        return Err(in_flight());
    };
    if record.request_hash != fingerprint {
        return Err(OrderError::Problem(
            service_kit::Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency-Key reused",
            )
            .with_detail(
                "This Idempotency-Key was used with a different request; use a new key for a new request.",
            ),
        ));
    }
    match (record.response_status, record.response_body) {
        (Some(status), Some(body)) => Ok(Begin::Replay(replay(
            status,
            record.response_headers.as_ref(),
            body,
        ))),
        _ if record.locked_until <= now => {
            // The first request died without finishing: take its place.
            let taken = sqlx::query!(
                "UPDATE idempotency_records SET locked_until = $3
                 WHERE caller = $1 AND key = $2 AND response_status IS NULL AND locked_until <= $4",
                caller,
                key,
                now + LOCK_TTL,
                now
            )
            .execute(db)
            .await?
            .rows_affected();
            if taken == 1 {
                Ok(Begin::Proceed(claim))
            } else {
                Err(in_flight())
            }
        }
        _ => Err(in_flight()),
    }
}

fn in_flight() -> OrderError {
    OrderError::conflict(
        "idempotency-key-in-flight",
        "A request with this Idempotency-Key is still being processed; retry shortly.",
    )
}

fn replay(status: i16, headers: Option<&serde_json::Value>, body: Vec<u8>) -> Response {
    let status = u16::try_from(status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let content_type = headers
        .and_then(|h| h["content-type"].as_str())
        .unwrap_or("application/json")
        .to_owned();
    let mut response = (status, body).into_response();
    if let Ok(value) = HeaderValue::from_str(&content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
        .headers_mut()
        .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    response
}

impl Claim {
    /// Stores `body` as the answer with `status` (inside the caller's transaction, so the state
    /// change and its answer commit together) and returns the response to send.
    pub async fn complete<T: Serialize>(
        &self,
        conn: &mut PgConnection,
        status: StatusCode,
        body: &T,
    ) -> OrderResult<Response> {
        let bytes = serde_json::to_vec(body).map_err(anyhow::Error::from)?;
        self.store(conn, status, "application/json", bytes).await
    }

    /// Stores a problem answer (a 4xx the client should see again on replay).
    pub async fn complete_problem(
        &self,
        conn: &mut PgConnection,
        problem: &service_kit::Problem,
    ) -> OrderResult<Response> {
        let bytes = serde_json::to_vec(problem).map_err(anyhow::Error::from)?;
        self.store(
            conn,
            problem.status_code(),
            "application/problem+json",
            bytes,
        )
        .await
    }

    async fn store(
        &self,
        conn: &mut PgConnection,
        status: StatusCode,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> OrderResult<Response> {
        sqlx::query!(
            "UPDATE idempotency_records
             SET response_status = $3, response_headers = $4, response_body = $5
             WHERE caller = $1 AND key = $2",
            self.caller,
            self.key,
            i16::try_from(status.as_u16()).unwrap_or(500),
            serde_json::json!({ "content-type": content_type }),
            &bytes
        )
        .execute(&mut *conn)
        .await?;
        let mut response = (status, bytes).into_response();
        if let Ok(value) = HeaderValue::from_str(content_type) {
            response.headers_mut().insert(header::CONTENT_TYPE, value);
        }
        Ok(response)
    }

    /// Gives the key up (the request failed in a way worth retrying).
    pub async fn abandon(&self, db: &PgPool) {
        let result = sqlx::query!(
            "DELETE FROM idempotency_records
             WHERE caller = $1 AND key = $2 AND response_status IS NULL",
            self.caller,
            self.key
        )
        .execute(db)
        .await;
        if let Err(error) = result {
            // The lock lapses on its own after LOCK_TTL; the client can retry then.
            tracing::warn!(%error, "could not release an idempotency key");
        }
    }
}

/// Forgets records past their 24 hours (run by the housekeeping job).
pub async fn purge_expired(db: &PgPool) -> OrderResult<u64> {
    Ok(
        sqlx::query!("DELETE FROM idempotency_records WHERE expires_at <= now()")
            .execute(db)
            .await?
            .rows_affected(),
    )
}
