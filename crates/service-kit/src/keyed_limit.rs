//! Per-subject limits in Redis ("3 brochure requests per email per hour").
//!
//! The gateway limits by IP and user, but it cannot read request bodies, so a limit on something
//! inside the body (an email address) is the owning service's job. A [`KeyedLimit`] counts
//! submissions per subject in a fixed window with one atomic `INCR` + `EXPIRE NX` + `TTL`
//! pipeline; the first count starts the window, and a count beyond `max` is refused with the rest
//! of the window as `Retry-After`.
//!
//! - Keys hold a SHA-256 prefix of the subject, never the subject itself (no addresses in Redis):
//!   `<service prefix>:<entity>:<scope>:<hash>`.
//! - Callers pass a *normalised* subject (a lower-cased, validated email), so `Jane@Example.com`
//!   and `jane@example.com` share one count, and count only submissions they will accept (check
//!   after validation, so invalid input never uses up a quota).
//! - The limit fails open: if Redis errors or does not answer within the timeout, the submission
//!   is allowed and a warning is logged. Redis is never a system of record here,
//!   and the gateway's per-IP limits still apply.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::Problem;
use crate::redis::Redis;

/// A per-subject limit: at most `max` counted submissions per subject in each `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyedLimit {
    /// The key entity (`form-limit`, `brochure-limit`).
    pub entity: &'static str,
    /// What is limited within the entity (`contact`, `newsletter`): separate counts.
    pub scope: &'static str,
    /// Submissions allowed per window.
    pub max: u32,
    /// The window, in whole seconds (Redis expiry granularity).
    pub window_secs: u64,
}

/// A refusal: the subject has used its quota; retry after this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("limit reached; retry after {retry_after_secs} s")]
pub struct Limited {
    /// Seconds until the window ends (at least 1).
    pub retry_after_secs: u64,
}

impl Limited {
    /// The 429 problem with `Retry-After`, its detail naming what was limited
    /// (e.g. "Too many brochure requests for this email address; retry later.").
    pub fn problem(self, detail: impl Into<String>) -> Problem {
        Problem::too_many_requests(self.retry_after_secs).with_detail(detail)
    }
}

impl KeyedLimit {
    /// A limit of `max` per `window_secs` for `scope` under `entity`.
    pub const fn new(
        entity: &'static str,
        scope: &'static str,
        max: u32,
        window_secs: u64,
    ) -> Self {
        Self {
            entity,
            scope,
            max,
            window_secs,
        }
    }

    /// The Redis key counting `subject` (the subject only as a hash).
    pub fn key(&self, redis: &Redis, subject: &str) -> String {
        let hash = hex::encode(Sha256::digest(subject.as_bytes()));
        redis.key(self.entity, format!("{}:{}", self.scope, &hash[..32]))
    }

    /// Counts one submission for `subject`; `Err(Limited)` when it is beyond the limit.
    ///
    /// A refused submission still counts (so hammering does not reopen the window early, and the
    /// window does not restart either: `EXPIRE NX` keeps the first expiry). Redis failures and
    /// answers slower than `timeout` allow the submission (logged as a warning).
    pub async fn hit(
        &self,
        redis: &Redis,
        subject: &str,
        timeout: Duration,
    ) -> Result<(), Limited> {
        let key = self.key(redis, subject);
        let mut conn = redis.conn();
        let counted = tokio::time::timeout(timeout, async {
            let (count, ttl): (u64, i64) = redis::pipe()
                .atomic()
                .incr(&key, 1)
                .cmd("EXPIRE")
                .arg(&key)
                .arg(self.window_secs)
                .arg("NX")
                .ignore()
                .ttl(&key)
                .query_async(&mut conn)
                .await?;
            Ok::<_, redis::RedisError>((count, ttl))
        })
        .await;
        match counted {
            Ok(Ok((count, ttl))) if count > u64::from(self.max) => Err(Limited {
                retry_after_secs: u64::try_from(ttl)
                    .ok()
                    .filter(|t| *t > 0)
                    .unwrap_or(self.window_secs.max(1)),
            }),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => {
                tracing::warn!(
                    %error,
                    entity = self.entity,
                    scope = self.scope,
                    "keyed limit unavailable: submission accepted unchecked"
                );
                Ok(())
            }
            Err(_) => {
                tracing::warn!(
                    entity = self.entity,
                    scope = self.scope,
                    "keyed limit timed out: submission accepted unchecked"
                );
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_a_429_with_retry_after() {
        let problem = Limited {
            retry_after_secs: 42,
        }
        .problem("Too many brochure requests for this email address; retry later.");
        let response = axum::response::IntoResponse::into_response(problem);
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "42");
    }
}
