//! Product views counted off the request path: a `GET` adds to an in-process buffer, and a
//! background task adds the buffered counts to `products.popularity` in one statement every
//! `POPULARITY_FLUSH_MS` (and once more on shutdown). Replicas each flush their own buffer;
//! the additions commute. A crash loses at most one interval of views, which a popularity
//! ranking can afford.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Views not yet written to Postgres.
#[derive(Clone, Default, Debug)]
pub struct ViewCounter {
    pending: Arc<Mutex<HashMap<Uuid, i64>>>,
}

impl ViewCounter {
    /// Counts one view of `product`.
    pub fn record(&self, product: Uuid) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        *pending.entry(product).or_insert(0) += 1;
    }

    fn take(&self) -> HashMap<Uuid, i64> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *pending)
    }

    /// Adds the buffered views to the products; on failure they are put back for next time.
    pub async fn flush(&self, db: &PgPool) {
        let batch = self.take();
        if batch.is_empty() {
            return;
        }
        let (ids, counts): (Vec<Uuid>, Vec<i64>) = batch.iter().map(|(k, v)| (*k, *v)).unzip();
        // The updated_at trigger skips popularity-only updates: a view is not an edit.
        let result = sqlx::query!(
            r#"UPDATE products p SET popularity = p.popularity + v.n
               FROM unnest($1::uuid[], $2::bigint[]) AS v(id, n)
               WHERE p.id = v.id"#,
            &ids,
            &counts
        )
        .execute(db)
        .await;
        if let Err(error) = result {
            tracing::warn!(%error, "popularity flush failed; keeping the counts for the next one");
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            for (id, n) in batch {
                *pending.entry(id).or_insert(0) += n;
            }
        }
    }

    /// Flushes every `interval` until cancelled, then once more.
    pub async fn run(self, db: PgPool, interval: Duration, token: CancellationToken) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => self.flush(&db).await,
                () = token.cancelled() => break,
            }
        }
        self.flush(&db).await;
    }
}
