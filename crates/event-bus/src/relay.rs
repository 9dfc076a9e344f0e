//! The outbox relay: publishes committed outbox rows to the broker.

use std::time::Duration;

use sqlx::{PgPool, postgres::PgListener};
use tokio::time::{Instant, sleep};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    BusError, backoff,
    bus::{OutgoingMessage, SharedBus},
    outbox::NOTIFY_CHANNEL,
};

/// How the relay works; [`RelaySettings::new`] gives production defaults.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// The producing service (the `service` label of the metrics).
    pub service: String,
    /// Rows claimed and published per transaction.
    pub batch_size: u32,
    /// How often to look for rows when no `NOTIFY` arrives.
    pub poll_interval: Duration,
    /// Delay after the first failed publish; doubled per further failure (jittered).
    pub backoff: Duration,
    /// Upper bound of the failure delay.
    pub backoff_max: Duration,
    /// How long published rows are kept before pruning.
    pub retention: Duration,
    /// How often to prune.
    pub prune_interval: Duration,
    /// How often to refresh the lag gauges.
    pub metrics_interval: Duration,
}

impl RelaySettings {
    /// Defaults for `service`: batches of 100, 100 ms polling, backoff from 200 ms to 30 s,
    /// published rows kept 7 days and pruned hourly, gauges refreshed every 5 s.
    #[must_use]
    pub fn new(service: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            batch_size: 100,
            poll_interval: Duration::from_millis(100),
            backoff: Duration::from_millis(200),
            backoff_max: Duration::from_secs(30),
            retention: Duration::from_secs(7 * 24 * 3600),
            prune_interval: Duration::from_secs(3600),
            metrics_interval: Duration::from_secs(5),
        }
    }
}

/// Publishes a service's outbox: claims pending rows in `seq` order with
/// `FOR UPDATE SKIP LOCKED` (so replicas share the work), publishes them with confirms, and marks
/// them sent in the transaction that holds their locks. A failed publish records `attempts` and
/// `last_error` and is retried after a jittered exponential backoff; nothing is lost while the
/// broker is away, and a row published but not marked (a crash in between) is published again —
/// consumers are idempotent.
///
/// Metrics (label `service`): gauges `outbox_pending_events` and
/// `outbox_oldest_pending_age_seconds`, counters `outbox_published_total` and
/// `outbox_publish_failures_total`.
pub struct Relay {
    pool: PgPool,
    bus: SharedBus,
    settings: RelaySettings,
}

/// The lag of an outbox.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Lag {
    pending: i64,
    oldest_age_seconds: f64,
}

impl Relay {
    /// A relay for the outbox in `pool`'s database.
    #[must_use]
    pub fn new(pool: PgPool, bus: SharedBus, settings: RelaySettings) -> Self {
        Self {
            pool,
            bus,
            settings,
        }
    }

    /// Runs until `cancel` fires, finishing the batch in hand first.
    pub async fn run(self, cancel: CancellationToken) {
        let mut listener = self.listen().await;
        let mut failures = 0u32;
        let mut next_metrics = Instant::now();
        let mut next_prune =
            Instant::now() + self.settings.prune_interval.min(Duration::from_secs(60));
        tracing::info!(service = self.settings.service, "outbox relay started");

        while !cancel.is_cancelled() {
            if Instant::now() >= next_metrics {
                self.record_lag().await;
                next_metrics = Instant::now() + self.settings.metrics_interval;
            }
            if Instant::now() >= next_prune {
                match self.prune().await {
                    Ok(0) => {}
                    Ok(deleted) => tracing::debug!(deleted, "pruned the outbox"),
                    Err(error) => tracing::warn!(%error, "outbox pruning failed"),
                }
                next_prune = Instant::now() + self.settings.prune_interval;
            }

            let pause = match self.publish_batch().await {
                Ok(sent) => {
                    failures = 0;
                    if sent >= self.settings.batch_size as usize {
                        continue; // more may be waiting
                    }
                    None
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    let delay =
                        backoff::delay(self.settings.backoff, self.settings.backoff_max, failures);
                    tracing::warn!(
                        service = self.settings.service,
                        %error,
                        attempt = failures,
                        retry_in_ms = delay.as_millis(),
                        "outbox publish failed"
                    );
                    Some(delay)
                }
            };

            match pause {
                Some(delay) => {
                    tokio::select! {
                        () = cancel.cancelled() => {}
                        () = sleep(delay) => {}
                    }
                }
                None => self.wait_for_work(&cancel, &mut listener).await,
            }
        }
        tracing::info!(service = self.settings.service, "outbox relay stopped");
    }

    /// Publishes one batch of pending rows; returns how many were sent.
    ///
    /// # Errors
    /// When the database fails or the broker does not confirm (the rows stay pending).
    pub async fn publish_batch(&self) -> Result<usize, BusError> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<(i64, Uuid, String, String)> = sqlx::query_as(
            "SELECT seq, event_id, topic, envelope::text FROM outbox \
             WHERE published_at IS NULL ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(i64::from(self.settings.batch_size))
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            tx.commit().await?;
            return Ok(0);
        }

        let (seqs, messages): (Vec<i64>, Vec<OutgoingMessage>) = rows
            .into_iter()
            .map(|(seq, event_id, topic, envelope)| {
                let message = OutgoingMessage {
                    event_id,
                    topic,
                    body: envelope.into_bytes(),
                };
                (seq, message)
            })
            .unzip();
        let outcome = self.bus.publish_batch(&messages).await;
        let published = outcome.published.min(seqs.len());

        if published > 0 {
            sqlx::query(
                "UPDATE outbox SET published_at = now(), attempts = attempts + 1, last_error = NULL \
                 WHERE seq = ANY($1)",
            )
            .bind(&seqs[..published])
            .execute(&mut *tx)
            .await?;
        }
        if let Some(error) = &outcome.error
            && let Some(failed) = seqs.get(published)
        {
            sqlx::query(
                "UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE seq = $1",
            )
            .bind(failed)
            .bind(error.to_string())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;

        let service = self.settings.service.clone();
        metrics::counter!("outbox_published_total", "service" => service.clone())
            .increment(published as u64);
        match outcome.error {
            Some(error) => {
                metrics::counter!("outbox_publish_failures_total", "service" => service)
                    .increment(1);
                Err(error)
            }
            None => Ok(published),
        }
    }

    /// Waits for a `NOTIFY`, the poll interval, or cancellation.
    async fn wait_for_work(&self, cancel: &CancellationToken, listener: &mut Option<PgListener>) {
        let poll = sleep(self.settings.poll_interval);
        match listener {
            Some(active) => {
                tokio::select! {
                    () = cancel.cancelled() => {}
                    () = poll => {}
                    notified = active.recv() => {
                        if let Err(error) = notified {
                            tracing::debug!(%error, "outbox listener lost; polling only");
                            *listener = None;
                        }
                    }
                }
            }
            None => {
                tokio::select! {
                    () = cancel.cancelled() => {}
                    () = poll => {}
                }
            }
        }
    }

    /// Listens for outbox commits; without it the relay still polls.
    async fn listen(&self) -> Option<PgListener> {
        let mut listener = PgListener::connect_with(&self.pool).await.ok()?;
        listener.listen(NOTIFY_CHANNEL).await.ok()?;
        Some(listener)
    }

    async fn lag(&self) -> Result<Lag, sqlx::Error> {
        let (pending, oldest_age_seconds): (i64, Option<f64>) = sqlx::query_as(
            "SELECT count(*), \
             extract(epoch FROM now() - min(created_at))::float8 \
             FROM outbox WHERE published_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(Lag {
            pending,
            oldest_age_seconds: oldest_age_seconds.unwrap_or(0.0).max(0.0),
        })
    }

    async fn record_lag(&self) {
        match self.lag().await {
            Ok(lag) => {
                let service = self.settings.service.clone();
                #[allow(clippy::cast_precision_loss)] // a gauge; exact beyond 2^53 is moot
                metrics::gauge!("outbox_pending_events", "service" => service.clone())
                    .set(lag.pending as f64);
                metrics::gauge!("outbox_oldest_pending_age_seconds", "service" => service)
                    .set(lag.oldest_age_seconds);
            }
            Err(error) => tracing::warn!(%error, "could not measure the outbox lag"),
        }
    }

    /// Deletes published rows older than the retention (in chunks, so no lock is held long);
    /// returns how many. [`Relay::run`] calls it every `prune_interval`.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn prune(&self) -> Result<u64, sqlx::Error> {
        const CHUNK: u64 = 5000;
        let retention = self.settings.retention.as_secs_f64();
        let mut total = 0;
        loop {
            let deleted = sqlx::query(
                "DELETE FROM outbox WHERE seq IN (\
                   SELECT seq FROM outbox \
                   WHERE published_at < now() - make_interval(secs => $1) \
                   LIMIT 5000)",
            )
            .bind(retention)
            .execute(&self.pool)
            .await?
            .rows_affected();
            total += deleted;
            if deleted < CHUNK {
                return Ok(total);
            }
        }
    }
}
