//! The scheduled-publish job: SCHEDULED posts whose time has come go live, exactly once.
//!
//! Each run claims due posts `FOR UPDATE SKIP LOCKED` in batches, so replicas running the job at
//! the same moment take different posts, and a post an admin is publishing by hand (locked by
//! that request) is skipped rather than waited for. The publish itself is
//! `publish_locked`, whose `status <> 'PUBLISHED'` condition and once-only
//! `announced_at` make a second publish of the same post a no-op: `blog.published` leaves the
//! outbox once. A post goes live with `publishedAt` = its scheduled time, however late the job
//! runs.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use sqlx::PgPool;

use crate::AppState;
use crate::error::ContentResult;

/// Posts published per transaction.
const BATCH: i64 = 50;

/// Publishes every post scheduled at or before `now`; returns the ids published. The caller
/// invalidates the public cache when any were ([`run_job`] does).
pub async fn publish_due(db: &PgPool, now: DateTime<Utc>) -> ContentResult<Vec<Uuid>> {
    let mut published = Vec::new();
    loop {
        let mut tx = db.begin().await?;
        let due: Vec<(Uuid, DateTime<Utc>)> = sqlx::query_as(
            "SELECT id, scheduled_for FROM blog_posts
             WHERE status = 'SCHEDULED' AND deleted_at IS NULL AND scheduled_for <= $1
             ORDER BY scheduled_for, id
             LIMIT $2
             FOR UPDATE SKIP LOCKED",
        )
        .bind(now)
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        let fetched = due.len();
        for (id, at) in due {
            if super::publish_locked(&mut tx, id, at).await? {
                published.push(id);
            }
        }
        tx.commit().await?;
        if fetched < BATCH as usize {
            break;
        }
    }
    Ok(published)
}

/// The periodic job: runs [`publish_due`] every `every` until cancelled.
pub async fn run_job(state: AppState, every: Duration, token: CancellationToken) {
    loop {
        match publish_due(&state.db, Utc::now()).await {
            Ok(ids) if ids.is_empty() => {}
            Ok(ids) => {
                tracing::info!(count = ids.len(), "scheduled blog posts published");
                state.content_changed(&["/v1/blog".to_owned()]).await;
            }
            Err(error) => tracing::error!(%error, "scheduled publishing failed"),
        }
        tokio::select! {
            () = token.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}
