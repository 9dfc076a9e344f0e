//! The sitemap trigger (the seed's rule: on `blog.published`, ask content to regenerate the
//! sitemap).
//!
//! The consumer's handler only records the publish in `sitemap_state` (stale since, last post,
//! a publish counter), in the consumer's transaction: an HTTP call there would hold the
//! transaction open and turn a content outage into redelivered events. A job ([`run`]) then
//! calls content's `POST /internal/sitemap/refresh` while the state is stale, which drops the
//! cached sitemap and its CDN copy (a publish drops neither the CDN copy nor the catalogue part;
//! see `services/content/src/internal.rs`). On success the stale mark is cleared for the
//! publishes that call covered (one that arrived meanwhile keeps it stale for the next round);
//! on failure the attempt, the error and a backoff (interval × 2^attempts, at most an hour) are
//! recorded. Content's route is idempotent, so two replicas calling at once do no harm.

use std::time::Duration;

use serde::Deserialize;
use service_kit::PeerClient;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// Content's answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refreshed {
    /// Whether a cached sitemap was dropped.
    pub cache_entry_dropped: bool,
    /// What the CDN did (`LOGGED` or `CREATED`).
    pub cdn: String,
}

/// What one round did.
#[derive(Debug, PartialEq, Eq)]
pub enum Round {
    /// Nothing stale, or the backoff has not run out.
    Idle,
    /// Content refreshed the sitemap.
    Refreshed,
    /// The call failed; retried after the backoff.
    Failed,
}

/// Longest wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// One round: asks content to refresh when the sitemap is stale and no backoff is running.
pub async fn refresh_if_stale(
    db: &PgPool,
    content: &PeerClient,
    interval: Duration,
) -> Result<Round, sqlx::Error> {
    let due: Option<(i64, i32)> = sqlx::query_as(
        "SELECT publishes, attempts FROM sitemap_state
         WHERE stale_since IS NOT NULL AND (next_attempt_at IS NULL OR next_attempt_at <= now())",
    )
    .fetch_optional(db)
    .await?;
    let Some((publishes, attempts)) = due else {
        return Ok(Round::Idle);
    };
    match content
        .post::<_, Refreshed>("/internal/sitemap/refresh", &serde_json::json!({}))
        .await
    {
        Ok(answer) => {
            sqlx::query(
                "UPDATE sitemap_state
                    SET stale_since = CASE WHEN publishes = $1 THEN NULL ELSE stale_since END,
                        refreshed_at = now(), attempts = 0, next_attempt_at = NULL,
                        last_error = NULL",
            )
            .bind(publishes)
            .execute(db)
            .await?;
            tracing::info!(
                dropped = answer.cache_entry_dropped,
                cdn = %answer.cdn,
                "content refreshed the sitemap after a publish"
            );
            Ok(Round::Refreshed)
        }
        Err(error) => {
            let backoff = backoff(interval, attempts);
            let message = format!("{error:#}");
            tracing::warn!(error = %message, retry_in_ms = backoff.as_millis() as u64,
                "content did not refresh the sitemap");
            sqlx::query(
                "UPDATE sitemap_state
                    SET attempts = attempts + 1, last_error = $1,
                        next_attempt_at = now() + make_interval(secs => $2)",
            )
            .bind(message.chars().take(500).collect::<String>())
            .bind(backoff.as_secs_f64())
            .execute(db)
            .await?;
            Ok(Round::Failed)
        }
    }
}

/// `interval × 2^attempts`, at most [`MAX_BACKOFF`].
fn backoff(interval: Duration, attempts: i32) -> Duration {
    let factor = 2u32.saturating_pow(u32::try_from(attempts.clamp(0, 20)).unwrap_or(20));
    interval.saturating_mul(factor).min(MAX_BACKOFF)
}

/// The job: a round every `interval` until cancelled.
pub async fn run(db: PgPool, content: PeerClient, interval: Duration, token: CancellationToken) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = token.cancelled() => return,
        }
        if let Err(error) = refresh_if_stale(&db, &content, interval).await {
            tracing::warn!(%error, "sitemap trigger round failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_an_hour() {
        let second = Duration::from_secs(1);
        assert_eq!(backoff(second, 0), second);
        assert_eq!(backoff(second, 3), Duration::from_secs(8));
        assert_eq!(backoff(second, 30), MAX_BACKOFF);
        assert_eq!(
            backoff(Duration::from_secs(10), -1),
            Duration::from_secs(10)
        );
    }
}
