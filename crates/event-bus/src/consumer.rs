//! Idempotent consumers.

use std::{
    collections::BTreeMap, marker::PhantomData, panic::AssertUnwindSafe, sync::Arc, time::Duration,
};

use futures::{FutureExt, future::BoxFuture};
use shared_types::{DecodeError, DomainEvent, EventPayload, RawEvent};
use sqlx::{PgConnection, PgPool};
use tokio::{
    task::JoinSet,
    time::{Instant, sleep},
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    BusError, backoff,
    bus::{Incoming, MessageStream, SharedBus, Subscription},
    config::ConsumerSettings,
    trace::continue_trace,
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a handler did not apply an event. Either way its transaction is rolled back.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// A transient failure (database hiccup, peer service down): retry with backoff, and
    /// dead-letter after the delivery limit.
    #[error("{0}")]
    Retry(#[source] BoxError),
    /// The event can never be applied (e.g. it breaks an invariant): dead-letter it now.
    #[error("{0}")]
    Reject(#[source] BoxError),
}

impl HandlerError {
    /// A transient failure.
    pub fn retry(error: impl Into<BoxError>) -> Self {
        Self::Retry(error.into())
    }

    /// A permanent failure.
    pub fn reject(error: impl Into<BoxError>) -> Self {
        Self::Reject(error.into())
    }
}

impl From<sqlx::Error> for HandlerError {
    fn from(error: sqlx::Error) -> Self {
        Self::Retry(Box::new(error))
    }
}

/// Applies one kind of event inside the consumer's transaction.
///
/// Closures of the shape `|event, conn| Box::pin(async move { ... })` implement it; so does any
/// `Fn(DomainEvent<P>, &mut PgConnection) -> BoxFuture<'_, Result<(), HandlerError>>`.
/// Everything written through `conn` commits together with the `processed_events` record.
pub trait EventHandler<P>: Send + Sync + 'static {
    /// Applies `event` through `conn`, an open transaction.
    fn handle<'c>(
        &'c self,
        event: DomainEvent<P>,
        conn: &'c mut PgConnection,
    ) -> BoxFuture<'c, Result<(), HandlerError>>;
}

impl<P, F> EventHandler<P> for F
where
    F: for<'c> Fn(DomainEvent<P>, &'c mut PgConnection) -> BoxFuture<'c, Result<(), HandlerError>>
        + Send
        + Sync
        + 'static,
{
    fn handle<'c>(
        &'c self,
        event: DomainEvent<P>,
        conn: &'c mut PgConnection,
    ) -> BoxFuture<'c, Result<(), HandlerError>> {
        self(event, conn)
    }
}

/// A decoded event bound to its handler, ready to run in a transaction.
type Call =
    Box<dyn for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<(), HandlerError>> + Send>;

/// A handler with its payload type erased.
trait Route: Send + Sync {
    fn prepare(&self, raw: RawEvent) -> Result<Call, DecodeError>;
}

struct Typed<P, H> {
    handler: Arc<H>,
    payload: PhantomData<fn() -> P>,
}

impl<P: EventPayload, H: EventHandler<P>> Route for Typed<P, H> {
    fn prepare(&self, raw: RawEvent) -> Result<Call, DecodeError> {
        let event = raw.decode::<P>()?;
        let handler = Arc::clone(&self.handler);
        Ok(Box::new(move |conn: &mut PgConnection| {
            Box::pin(async move { handler.handle(event, conn).await })
        }))
    }
}

/// How one delivery ended (the `outcome` label of `events_consumed_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Applied and acknowledged.
    Processed,
    /// Already applied earlier (a redelivery): acknowledged without effect.
    Duplicate,
    /// No handler for the topic: acknowledged without effect.
    Unhandled,
    /// Handler failed: will be delivered again after a backoff.
    Retried,
    /// Moved to the dead-letter queue.
    DeadLettered,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Self::Processed => "processed",
            Self::Duplicate => "duplicate",
            Self::Unhandled => "unhandled",
            Self::Retried => "retried",
            Self::DeadLettered => "dead_lettered",
        }
    }
}

/// Consumes a service's queue, applying each event exactly once.
///
/// For each message: begin a transaction, insert the event id into `processed_events`
/// (`ON CONFLICT DO NOTHING`) — if it was there already, the event was applied before, so
/// acknowledge and stop; else run the handler in the same transaction, commit, acknowledge.
/// A failing handler is retried with a jittered exponential backoff and dead-lettered after
/// `delivery_limit` deliveries; an undecodable message or an unsupported version is
/// dead-lettered at once; a handler that panics counts as a failure to retry.
///
/// Up to `concurrency` messages are handled at the same time, each in a task and transaction of
/// its own (the broker's prefetch is raised to match). Two deliveries of one event that overlap
/// still apply it once: the second `processed_events` insert waits for the first transaction and
/// then finds the row. The consumer reconnects (with backoff) when the broker goes away, and on
/// cancellation stops taking messages, finishes (commits and settles) every message in hand, then
/// stops.
///
/// Metrics (label `service`): counters `events_consumed_total{topic,outcome}` and
/// `event_settle_failures_total{topic}` (acknowledgements that did not reach the broker), histogram
/// `event_handler_seconds{topic}`, gauges `event_consumer_lag_seconds{topic}` (age of the last
/// handled event) and `event_consumer_queue_depth`.
pub struct Consumer {
    pool: PgPool,
    bus: SharedBus,
    service: String,
    settings: ConsumerSettings,
    routes: BTreeMap<String, Arc<dyn Route>>,
    duplicate_topics: Vec<String>,
}

impl Consumer {
    /// A consumer for `service` (which names its queue), with the bus's consumer settings.
    #[must_use]
    pub fn new(pool: PgPool, bus: SharedBus, service: impl Into<String>) -> Self {
        let settings = bus.config().consumer.clone();
        Self {
            pool,
            bus,
            service: service.into(),
            settings,
            routes: BTreeMap::new(),
            duplicate_topics: Vec::new(),
        }
    }

    /// Overrides the bus's consumer settings.
    #[must_use]
    pub fn settings(mut self, settings: ConsumerSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Handles topic `P::TOPIC` with `handler`, typically
    /// `|event, conn| Box::pin(async move { ...; Ok(()) })` or `|e, c| Box::pin(apply(e, c))`
    /// for an `async fn apply(event: DomainEvent<P>, conn: &mut PgConnection)`.
    #[must_use]
    pub fn on<P, F>(self, handler: F) -> Self
    where
        P: EventPayload,
        F: for<'c> Fn(
                DomainEvent<P>,
                &'c mut PgConnection,
            ) -> BoxFuture<'c, Result<(), HandlerError>>
            + Send
            + Sync
            + 'static,
    {
        self.on_handler::<P, F>(handler)
    }

    /// Handles topic `P::TOPIC` with an [`EventHandler`] value (e.g. a struct holding clients).
    #[must_use]
    pub fn on_handler<P: EventPayload, H: EventHandler<P>>(mut self, handler: H) -> Self {
        let route = Typed::<P, H> {
            handler: Arc::new(handler),
            payload: PhantomData,
        };
        if self
            .routes
            .insert(P::TOPIC.to_owned(), Arc::new(route))
            .is_some()
        {
            self.duplicate_topics.push(P::TOPIC.to_owned());
        }
        self
    }

    /// The topics this consumer handles.
    #[must_use]
    pub fn topics(&self) -> Vec<String> {
        self.routes.keys().cloned().collect()
    }

    /// Consumes until `cancel` fires.
    ///
    /// # Errors
    /// Only for a consumer that cannot work (no handler, two for one topic, or a concurrency of
    /// 0); broker and database failures are logged and retried.
    pub async fn run(self, cancel: CancellationToken) -> Result<(), BusError> {
        if self.routes.is_empty() {
            return Err(BusError::Config(format!(
                "consumer {} has no handlers",
                self.service
            )));
        }
        if !self.duplicate_topics.is_empty() {
            return Err(BusError::Config(format!(
                "consumer {} has two handlers for {:?}",
                self.service, self.duplicate_topics
            )));
        }
        if self.settings.concurrency == 0 {
            return Err(BusError::Config(format!(
                "consumer {} has a concurrency of 0",
                self.service
            )));
        }
        let subscription = Subscription {
            service: self.service.clone(),
            topics: self.topics(),
            prefetch: self.settings.effective_prefetch(),
        };
        let Self {
            pool,
            bus,
            service,
            settings,
            routes,
            duplicate_topics: _,
        } = self;
        let worker = Arc::new(Worker {
            pool,
            service,
            settings,
            routes,
        });
        let depth = tokio::spawn(poll_queue_depth(
            bus.clone(),
            worker.service.clone(),
            worker.settings.depth_poll_interval,
            cancel.child_token(),
        ));
        tracing::info!(
            service = worker.service,
            topics = ?subscription.topics,
            concurrency = worker.settings.concurrency,
            prefetch = subscription.prefetch,
            "consumer started"
        );

        let mut failures = 0u32;
        while !cancel.is_cancelled() {
            let subscribed = tokio::select! {
                () = cancel.cancelled() => break,
                subscribed = bus.subscribe(&subscription) => subscribed,
            };
            match subscribed {
                Ok(stream) => {
                    failures = 0;
                    if consume(&worker, stream, &cancel).await {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(service = worker.service, %error, "could not subscribe");
                }
            }
            failures = failures.saturating_add(1);
            let delay = backoff::delay(
                Duration::from_millis(100),
                worker.settings.reconnect_backoff_max,
                failures,
            );
            tokio::select! {
                () = cancel.cancelled() => break,
                () = sleep(delay) => {}
            }
        }
        depth.abort();
        tracing::info!(service = worker.service, "consumer stopped");
        Ok(())
    }
}

/// Takes messages from `stream` and hands each to a task of its own, at most `concurrency` at a
/// time, until the stream fails (returns `false`) or `cancel` fires (`true`). Either way every
/// message in hand is finished before the stream is closed: closing first would hand them back
/// to the broker and make their acknowledgements fail.
async fn consume(
    worker: &Arc<Worker>,
    mut stream: Box<dyn MessageStream>,
    cancel: &CancellationToken,
) -> bool {
    let limit = usize::from(worker.settings.concurrency.max(1));
    let mut in_hand = JoinSet::new();
    let stopped = loop {
        while let Some(done) = in_hand.try_join_next() {
            note_task_end(&worker.service, done);
        }
        if in_hand.len() >= limit {
            tokio::select! {
                biased;
                () = cancel.cancelled() => break true,
                done = in_hand.join_next() => {
                    if let Some(done) = done {
                        note_task_end(&worker.service, done);
                    }
                    continue;
                }
            }
        }
        let next = tokio::select! {
            biased;
            () = cancel.cancelled() => break true,
            next = stream.next() => next,
        };
        match next {
            // Not raced against `cancel`: a message taken is always finished.
            Ok(incoming) => {
                let worker = Arc::clone(worker);
                // In the consumer's span, as when it handled messages inline.
                in_hand.spawn(async move { worker.handle(incoming).await }.in_current_span());
            }
            Err(error) => {
                tracing::warn!(service = worker.service, %error, "lost the broker; reconnecting");
                break false;
            }
        }
    };
    while let Some(done) = in_hand.join_next().await {
        note_task_end(&worker.service, done);
    }
    stream.close().await;
    stopped
}

/// Handler panics are caught inside the task; this only reports one that escaped anyway (its
/// message was not settled and goes back to the broker when the stream closes or times out).
fn note_task_end(service: &str, done: Result<(), tokio::task::JoinError>) {
    if let Err(error) = done {
        tracing::error!(service, %error, "a message task ended abnormally");
    }
}

/// What every handler task of a running consumer shares.
struct Worker {
    pool: PgPool,
    service: String,
    settings: ConsumerSettings,
    routes: BTreeMap<String, Arc<dyn Route>>,
}

impl Worker {
    /// Applies one message and settles it.
    async fn handle(&self, incoming: Incoming) {
        let Incoming {
            body,
            attempt,
            acknowledger,
        } = incoming;

        let raw = match RawEvent::from_slice(&body) {
            Ok(raw) => raw,
            Err(error) => {
                let reason = format!("undecodable envelope: {error}");
                tracing::error!(service = self.service, %reason, "dead-lettering a message");
                let settled = acknowledger.dead_letter(reason).await;
                self.finish("unknown", Outcome::DeadLettered, settled, None);
                return;
            }
        };
        let topic = raw.topic.clone();
        let event_id = raw.id;

        let span = tracing::info_span!(
            "event.consume",
            otel.kind = "consumer",
            service = %self.service,
            topic = %topic,
            event.id = %event_id,
            attempt,
            correlation_id = raw.correlation_id.as_deref().unwrap_or_default(),
            trace_id = tracing::field::Empty,
        );
        continue_trace(&span, raw.traceparent.as_deref());

        async {
            let Some(route) = self.routes.get(&topic) else {
                tracing::debug!("no handler for this topic; acknowledging");
                let settled = acknowledger.ack().await;
                self.finish(&topic, Outcome::Unhandled, settled, None);
                return;
            };
            let age = (chrono::Utc::now() - raw.timestamp).to_std().unwrap_or_default();
            let call = match route.prepare(raw) {
                Ok(call) => call,
                Err(error) => {
                    tracing::error!(%error, "cannot read this event; dead-lettering");
                    let settled = acknowledger.dead_letter(error.to_string()).await;
                    self.finish(&topic, Outcome::DeadLettered, settled, None);
                    return;
                }
            };

            let started = Instant::now();
            let applied = self.apply(event_id, &topic, call).await;
            let elapsed = started.elapsed();
            metrics::histogram!("event_handler_seconds", "service" => self.service.clone(), "topic" => topic.clone())
                .record(elapsed.as_secs_f64());

            let (outcome, settled) = match applied {
                Ok(true) => (Outcome::Processed, acknowledger.ack().await),
                Ok(false) => {
                    tracing::debug!("already processed; acknowledging the redelivery");
                    (Outcome::Duplicate, acknowledger.ack().await)
                }
                Err(HandlerError::Reject(error)) => {
                    tracing::error!(%error, "handler rejected the event; dead-lettering");
                    let reason = format!("rejected by handler: {error}");
                    (Outcome::DeadLettered, acknowledger.dead_letter(reason).await)
                }
                Err(HandlerError::Retry(error)) if attempt >= self.settings.delivery_limit => {
                    tracing::error!(%error, "handler failed on the last allowed delivery; dead-lettering");
                    let reason = format!("handler failed {attempt} times, last: {error}");
                    (Outcome::DeadLettered, acknowledger.dead_letter(reason).await)
                }
                Err(HandlerError::Retry(error)) => {
                    let delay = backoff::delay(
                        self.settings.retry_backoff,
                        self.settings.retry_backoff_max,
                        attempt,
                    );
                    tracing::warn!(%error, retry_in_ms = delay.as_millis(), "handler failed; will retry");
                    (Outcome::Retried, acknowledger.retry(delay).await)
                }
            };
            self.finish(&topic, outcome, settled, Some(age));
        }
        .instrument(span)
        .await;
    }

    /// Runs `call` exactly once per event id: `Ok(false)` when the event was already processed.
    async fn apply(
        &self,
        event_id: uuid::Uuid,
        topic: &str,
        call: Call,
    ) -> Result<bool, HandlerError> {
        let mut tx = self.pool.begin().await?;
        let first_time = sqlx::query(
            "INSERT INTO processed_events (event_id, topic) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(event_id)
        .bind(topic)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !first_time {
            tx.rollback().await?;
            return Ok(false);
        }
        // A panic would otherwise end the task with the message unsettled: on RabbitMQ it would
        // hold a prefetch slot until the channel closes. As a failure it is retried, then
        // dead-lettered, like any other; the transaction is dropped, so rolled back.
        match AssertUnwindSafe(call(&mut tx)).catch_unwind().await {
            Ok(applied) => applied?,
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a non-string payload".to_owned());
                return Err(HandlerError::retry(format!("handler panicked: {message}")));
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    fn finish(
        &self,
        topic: &str,
        outcome: Outcome,
        settled: Result<(), BusError>,
        age: Option<Duration>,
    ) {
        if let Err(error) = settled {
            // The broker will deliver it again; the processed_events record makes that harmless.
            tracing::warn!(service = self.service, topic, %error, "could not settle a message");
            metrics::counter!(
                "event_settle_failures_total",
                "service" => self.service.clone(),
                "topic" => topic.to_owned()
            )
            .increment(1);
        }
        metrics::counter!(
            "events_consumed_total",
            "service" => self.service.clone(),
            "topic" => topic.to_owned(),
            "outcome" => outcome.label()
        )
        .increment(1);
        if let Some(age) = age {
            metrics::gauge!("event_consumer_lag_seconds", "service" => self.service.clone(), "topic" => topic.to_owned())
                .set(age.as_secs_f64());
        }
    }
}

/// Refreshes the `event_consumer_queue_depth` gauge.
async fn poll_queue_depth(
    bus: SharedBus,
    service: String,
    interval: Duration,
    cancel: CancellationToken,
) {
    let mut failing = false;
    while !cancel.is_cancelled() {
        match bus.queue_depth(&service).await {
            Ok(Some(depth)) => {
                #[allow(clippy::cast_precision_loss)]
                metrics::gauge!("event_consumer_queue_depth", "service" => service.clone())
                    .set(depth as f64);
                failing = false;
            }
            Ok(None) => {}
            Err(error) => {
                if !failing {
                    tracing::debug!(%error, "could not read the queue depth");
                }
                failing = true;
            }
        }
        tokio::select! {
            () = cancel.cancelled() => {}
            () = sleep(interval) => {}
        }
    }
}
