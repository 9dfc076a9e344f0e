//! The ingest buffer: a Redis **stream** read by a consumer group of flushers.
//!
//! - **Ingest** appends one stream entry per request (`XADD`, the whole batch as one JSON field),
//!   so the request path does one Redis round trip and no database write. If the `XADD` fails or
//!   is slower than `ANALYTICS_REDIS_TIMEOUT_MS`, the request inserts straight into Postgres
//!   (slower, never failing because Redis is down).
//! - **Flushing**: each process runs one [`Flusher`] in the group `flushers` under its own
//!   consumer name. It takes new entries (`XREADGROUP ... >`, they become *pending* for it),
//!   and writes what it holds once it has `ANALYTICS_FLUSH_BATCH_MAX` rows or every
//!   `ANALYTICS_FLUSH_INTERVAL_MS`, in multi-row inserts of at most that many rows. Only after
//!   the commit does it `XACK` + `XDEL` the entries (one `MULTI`).
//! - **Crash**: a flusher that dies before its `XACK` leaves its entries pending; any flusher
//!   takes them over with `XAUTOCLAIM` once idle for `ANALYTICS_RECLAIM_IDLE_MS` and writes
//!   them again. Rows are keyed by `message_id` (`ON CONFLICT DO NOTHING`), so entries that were
//!   committed but not acknowledged insert nothing twice: no loss, no duplicates.
//! - A Redis that lost its data (restart without persistence) loses what was not flushed yet;
//!   Redis is a buffer here, as DESIGN.md allows, and the group is recreated on `NOGROUP`.

use std::time::Duration;

use redis::AsyncCommands;
use redis::streams::{
    StreamAutoClaimOptions, StreamAutoClaimReply, StreamId, StreamReadOptions, StreamReadReply,
};
use service_kit::redis::Redis;
use sqlx::PgPool;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::store::{self, EventRow};

/// The consumer group every flusher joins.
pub const GROUP: &str = "flushers";
const FIELD: &str = "b";

/// Appends accepted events to the stream.
#[derive(Clone, Debug)]
pub struct StreamBuffer {
    redis: Redis,
    key: String,
    timeout: Duration,
}

impl StreamBuffer {
    /// The buffer of this service's Redis prefix.
    pub fn new(redis: Redis, timeout: Duration) -> Self {
        let key = redis.key("stream", "events");
        Self {
            redis,
            key,
            timeout,
        }
    }

    /// The stream's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// One `XADD` carrying all of `rows`; an error when Redis failed or was too slow.
    pub async fn push(&self, rows: &[EventRow]) -> anyhow::Result<()> {
        let body = serde_json::to_vec(rows)?;
        let mut conn = self.redis.conn();
        let fields = [(FIELD, body)];
        let add = conn.xadd::<_, _, _, _, String>(&self.key, "*", &fields);
        tokio::time::timeout(self.timeout, add)
            .await
            .map_err(|_| anyhow::anyhow!("XADD timed out"))??;
        Ok(())
    }
}

/// Entries taken from the stream and not yet acknowledged.
#[derive(Debug, Default)]
pub struct Batch {
    /// Stream entry ids.
    pub ids: Vec<String>,
    /// Their rows.
    pub rows: Vec<EventRow>,
}

impl Batch {
    fn add(&mut self, entry: &StreamId) {
        self.ids.push(entry.id.clone());
        let rows = match entry.map.get(FIELD) {
            Some(redis::Value::BulkString(bytes)) => serde_json::from_slice::<Vec<EventRow>>(bytes),
            _ => Ok(Vec::new()),
        };
        match rows {
            Ok(rows) => self.rows.extend(rows),
            // Unreadable entries cannot become readable: acknowledge them with the batch.
            Err(error) => {
                tracing::error!(%error, id = %entry.id, "dropping an unreadable stream entry")
            }
        }
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// One member of the flusher group.
#[derive(Clone, Debug)]
pub struct Flusher {
    redis: Redis,
    db: PgPool,
    key: String,
    consumer: String,
    batch_max: usize,
    interval: Duration,
    poll: Duration,
    reclaim_idle: Duration,
}

impl Flusher {
    /// A flusher named `consumer` (unique per process).
    pub fn new(
        redis: Redis,
        db: PgPool,
        consumer: String,
        settings: &crate::AnalyticsSettings,
    ) -> Self {
        let key = redis.key("stream", "events");
        Self {
            redis,
            db,
            key,
            consumer,
            batch_max: settings.flush_batch_max,
            interval: settings.flush_interval,
            poll: settings.flush_poll,
            reclaim_idle: settings.reclaim_idle,
        }
    }

    /// Creates the stream and the group if missing (from the stream's start, so entries added
    /// before any flusher existed are flushed too).
    pub async fn ensure_group(&self) -> redis::RedisResult<()> {
        let mut conn = self.redis.conn();
        match conn
            .xgroup_create_mkstream::<_, _, _, ()>(&self.key, GROUP, "0")
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Takes up to `count` new entries into `batch` (they become pending for this flusher);
    /// returns how many.
    pub async fn take_new(&self, batch: &mut Batch, count: usize) -> redis::RedisResult<usize> {
        let mut conn = self.redis.conn();
        let options = StreamReadOptions::default()
            .group(GROUP, &self.consumer)
            .count(count);
        let reply: redis::RedisResult<Option<StreamReadReply>> =
            conn.xread_options(&[&self.key], &[">"], &options).await;
        let reply = match reply {
            Err(e) if e.code() == Some("NOGROUP") => {
                self.ensure_group().await?;
                return Ok(0);
            }
            other => other?,
        };
        let mut taken = 0;
        for key in reply.map(|r| r.keys).unwrap_or_default() {
            for entry in &key.ids {
                batch.add(entry);
                taken += 1;
            }
        }
        Ok(taken)
    }

    /// Takes over up to `count` entries pending on any flusher for longer than the reclaim idle
    /// time (a flusher that died mid-batch); returns how many.
    pub async fn reclaim(&self, batch: &mut Batch, count: usize) -> redis::RedisResult<usize> {
        let mut conn = self.redis.conn();
        let idle = u64::try_from(self.reclaim_idle.as_millis()).unwrap_or(u64::MAX);
        let reply: redis::RedisResult<StreamAutoClaimReply> = conn
            .xautoclaim_options(
                &self.key,
                GROUP,
                &self.consumer,
                idle,
                "0-0",
                StreamAutoClaimOptions::default().count(count),
            )
            .await;
        let reply = match reply {
            Err(e) if e.code() == Some("NOGROUP") => {
                self.ensure_group().await?;
                return Ok(0);
            }
            other => other?,
        };
        let mut taken = 0;
        for entry in &reply.claimed {
            if !batch.ids.contains(&entry.id) {
                batch.add(entry);
                taken += 1;
            }
        }
        // Entries trimmed away while pending: just clear them from the pending list.
        if !reply.deleted_ids.is_empty() {
            let _: redis::RedisResult<i64> = conn.xack(&self.key, GROUP, &reply.deleted_ids).await;
        }
        Ok(taken)
    }

    /// Writes the batch's rows (multi-row inserts of at most `batch_max`), commits, then
    /// acknowledges and deletes its entries. Returns the rows newly stored.
    pub async fn write(&self, batch: &Batch) -> anyhow::Result<u64> {
        match self.write_chunks(batch).await {
            Err(sqlx::Error::Database(e)) if e.code().is_some_and(|c| c.starts_with("22")) => {
                // A row Postgres refuses (validation should make this impossible) must not
                // block the stream forever: store the others one by one, log and drop it.
                tracing::error!(error = %e, "a flush batch holds a row Postgres refuses; isolating it");
                Ok(self.write_each(batch).await?)
            }
            other => Ok(other?),
        }
    }

    async fn write_chunks(&self, batch: &Batch) -> Result<u64, sqlx::Error> {
        let mut stored = 0;
        let mut tx = self.db.begin().await?;
        for chunk in batch.rows.chunks(self.batch_max.max(1)) {
            stored += store::insert(&mut tx, chunk).await?;
        }
        tx.commit().await?;
        Ok(stored)
    }

    async fn write_each(&self, batch: &Batch) -> Result<u64, sqlx::Error> {
        let mut stored = 0;
        let mut tx = self.db.begin().await?;
        for row in &batch.rows {
            let mut savepoint = sqlx::Acquire::begin(&mut *tx).await?;
            match store::insert(&mut savepoint, std::slice::from_ref(row)).await {
                Ok(n) => {
                    savepoint.commit().await?;
                    stored += n;
                }
                Err(sqlx::Error::Database(e)) if e.code().is_some_and(|c| c.starts_with("22")) => {
                    tracing::error!(error = %e, message_id = %row.message_id, "dropping an unstorable event");
                    savepoint.rollback().await?;
                }
                Err(e) => return Err(e),
            }
        }
        tx.commit().await?;
        Ok(stored)
    }

    /// `XACK` + `XDEL` of the batch's entries, atomically.
    pub async fn ack(&self, batch: &Batch) -> redis::RedisResult<()> {
        if batch.ids.is_empty() {
            return Ok(());
        }
        let mut conn = self.redis.conn();
        redis::pipe()
            .atomic()
            .xack(&self.key, GROUP, &batch.ids)
            .ignore()
            .xdel(&self.key, &batch.ids)
            .ignore()
            .query_async::<()>(&mut conn)
            .await
    }

    /// Writes and acknowledges; on failure the entries stay pending and are written again.
    async fn flush(&self, batch: &mut Batch) {
        if batch.is_empty() {
            return;
        }
        match self.write(batch).await {
            Ok(stored) => {
                metrics_flushed(batch.rows.len(), stored);
                if let Err(error) = self.ack(batch).await {
                    // Committed but not acknowledged: reclaimed later, inserting nothing twice.
                    tracing::warn!(%error, "flushed rows could not be acknowledged");
                }
                *batch = Batch::default();
            }
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    rows = batch.rows.len(),
                    "flush failed; keeping the batch for the next attempt"
                );
            }
        }
    }

    /// Flushes until cancelled, then writes what it holds once more.
    pub async fn run(self, token: CancellationToken) {
        if let Err(error) = self.ensure_group().await {
            tracing::warn!(%error, "cannot create the flusher group yet");
        }
        let mut batch = Batch::default();
        let mut last_flush = Instant::now();
        let mut last_reclaim = Instant::now() - self.reclaim_idle;
        loop {
            // Entries hold 1-100 rows each: read at most 100 entries at a time.
            let room = self
                .batch_max
                .saturating_sub(batch.rows.len())
                .clamp(1, 100);
            let mut took = 0;
            if last_reclaim.elapsed() >= self.reclaim_idle.min(Duration::from_secs(30)) {
                took += self
                    .reclaim(&mut batch, room)
                    .await
                    .unwrap_or_else(|error| {
                        tracing::warn!(%error, "XAUTOCLAIM failed");
                        0
                    });
                last_reclaim = Instant::now();
            }
            took += self
                .take_new(&mut batch, room)
                .await
                .unwrap_or_else(|error| {
                    tracing::debug!(%error, "XREADGROUP failed");
                    0
                });
            let full = batch.rows.len() >= self.batch_max;
            if full || (!batch.is_empty() && last_flush.elapsed() >= self.interval) {
                self.flush(&mut batch).await;
                last_flush = Instant::now();
            } else if batch.is_empty() {
                last_flush = Instant::now();
            }
            if full || took >= room {
                // More is waiting: keep going without sleeping, unless asked to stop.
                if token.is_cancelled() {
                    break;
                }
                continue;
            }
            tokio::select! {
                () = tokio::time::sleep(self.poll) => {}
                () = token.cancelled() => break,
            }
        }
        self.flush(&mut batch).await;
    }
}

fn metrics_flushed(read: usize, stored: u64) {
    tracing::debug!(read, stored, "flushed tracking events");
}
