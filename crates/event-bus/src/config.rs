//! Plain configuration structs; `service-kit` fills them from the environment.

use std::{collections::BTreeMap, fmt, time::Duration};

/// Which broker carries the events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendKind {
    /// RabbitMQ over AMQP 0-9-1 (the default).
    #[default]
    RabbitMq,
    /// Amazon SQS (or a local SQS-compatible server).
    Sqs,
    /// An in-process broker for unit tests only: nothing survives the process, nothing crosses it.
    InMemory,
}

/// Everything the bus needs to know.
#[derive(Debug, Clone)]
pub struct BusConfig {
    /// The broker.
    pub backend: BackendKind,
    /// RabbitMQ URL, e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`. A `heartbeat` of 10 s is
    /// added unless the URL sets one, so a vanished broker is noticed quickly, and a `frame_max`
    /// of 16 KiB, which keeps each connection's buffers at 1 MiB instead of 8.
    pub amqp_url: String,
    /// The durable topic exchange every event is published to (default `lomash.events`). Dead
    /// letters go through `<exchange>.dlx`.
    pub exchange: String,
    /// Prepended to every queue name (RabbitMQ and SQS): empty in production, unique per test.
    pub queue_prefix: String,
    /// RabbitMQ only: when set, each service's quorum queue is declared with this `x-expires`, so
    /// the broker deletes it once it has had no consumer for that long. For tests, whose queues
    /// are throwaway: deleting a quorum queue seconds after declaring it, as test teardown did,
    /// crashed RabbitMQ's Raft subsystem on a loaded single node. `None` in production.
    pub queue_expiry: Option<Duration>,
    /// SQS settings, used when `backend` is [`BackendKind::Sqs`].
    pub sqs: SqsConfig,
    /// How long one publish (or one batch of publishes) may take, confirms included, before it
    /// counts as failed. A publish never hangs longer than this, even if the broker vanishes.
    pub publish_timeout: Duration,
    /// How long connecting to the broker may take.
    pub connect_timeout: Duration,
    /// Defaults for consumers of this bus.
    pub consumer: ConsumerSettings,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            backend: BackendKind::RabbitMq,
            amqp_url: "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned(),
            exchange: "lomash.events".to_owned(),
            queue_prefix: String::new(),
            queue_expiry: None,
            sqs: SqsConfig::default(),
            publish_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            consumer: ConsumerSettings::default(),
        }
    }
}

impl BusConfig {
    /// The name of `service`'s queue (`<queue_prefix><service>`).
    #[must_use]
    pub fn queue_name(&self, service: &str) -> String {
        format!("{}{service}", self.queue_prefix)
    }

    /// The name of `service`'s dead-letter queue: `<queue>.dlq` on RabbitMQ, `<queue>-dlq` on SQS
    /// (whose names may not contain dots).
    #[must_use]
    pub fn dead_letter_queue_name(&self, service: &str) -> String {
        match self.backend {
            BackendKind::Sqs => format!("{}-dlq", self.queue_name(service)),
            BackendKind::RabbitMq | BackendKind::InMemory => {
                format!("{}.dlq", self.queue_name(service))
            }
        }
    }

    /// The consuming services and their topics, from the routing table (`sqs.routes`, which is
    /// the platform's subscriptions whatever the backend): what a publisher declares up front so
    /// no event is dropped for want of a queue before its consumer first starts.
    #[must_use]
    pub fn subscriptions(&self) -> BTreeMap<String, Vec<String>> {
        let mut by_service = BTreeMap::<String, Vec<String>>::new();
        for (topic, services) in &self.sqs.routes {
            for service in services {
                by_service
                    .entry(service.clone())
                    .or_default()
                    .push(topic.clone());
            }
        }
        by_service
    }

    /// The dead-letter exchange (`<exchange>.dlx`).
    #[must_use]
    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.dlx", self.exchange)
    }
}

/// SQS settings.
#[derive(Clone)]
pub struct SqsConfig {
    /// Endpoint override, e.g. `http://127.0.0.1:5000` for a local server; `None` for AWS.
    pub endpoint_url: Option<String>,
    /// AWS region.
    pub region: String,
    /// Which services' queues receive each topic: `topic → [service, ...]`. Queue names are
    /// `<queue_prefix><service>`; their URLs are looked up (and the queues created when missing).
    pub routes: BTreeMap<String, Vec<String>>,
    /// Fixed credentials (local servers, tests). `None` uses the AWS default chain (environment,
    /// web identity, instance profile).
    pub credentials: Option<SqsCredentials>,
    /// Long-poll wait of one receive (at most 20 s).
    pub wait_time: Duration,
    /// How long a received message stays invisible to other consumers while it is handled.
    pub visibility_timeout: Duration,
}

impl Default for SqsConfig {
    fn default() -> Self {
        Self {
            endpoint_url: None,
            region: "eu-west-2".to_owned(),
            routes: BTreeMap::new(),
            credentials: None,
            wait_time: Duration::from_secs(20),
            visibility_timeout: Duration::from_secs(30),
        }
    }
}

impl fmt::Debug for SqsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqsConfig")
            .field("endpoint_url", &self.endpoint_url)
            .field("region", &self.region)
            .field("routes", &self.routes)
            .field("credentials", &self.credentials.as_ref().map(|_| "<set>"))
            .field("wait_time", &self.wait_time)
            .field("visibility_timeout", &self.visibility_timeout)
            .finish()
    }
}

impl SqsConfig {
    /// The services whose queues receive `topic`.
    #[must_use]
    pub fn services_for(&self, topic: &str) -> &[String] {
        self.routes.get(topic).map_or(&[], Vec::as_slice)
    }
}

/// Fixed SQS credentials.
#[derive(Clone)]
pub struct SqsCredentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key (never printed).
    pub secret_access_key: String,
}

impl fmt::Debug for SqsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// How a consumer runs, retries and dead-letters.
///
/// The defaults: 4 handler tasks (a service's pool has 10 connections by default, so its HTTP
/// handlers keep 6 while a backlog drains), prefetch 16, 5 deliveries, retries from 1 s to 60 s.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// Deliveries of one message before it is dead-lettered (first delivery included). Also set
    /// as the queue's `x-delivery-limit` (RabbitMQ) or redrive `maxReceiveCount` (SQS), which
    /// catch messages whose handling crashes the process.
    pub delivery_limit: u32,
    /// Messages one consumer handles at the same time, each in its own task and transaction
    /// (so each holds one pooled database connection while it runs). At least 1. Events are not
    /// applied in order: handlers must be correct when events of one aggregate run concurrently
    /// (they already had to be, across retries and replicas).
    pub concurrency: u16,
    /// Unacknowledged messages the broker hands one consumer at a time (on SQS, at most 10 per
    /// receive); raised to `concurrency` when smaller, so every handler task can be busy. A
    /// message waiting out its retry delay holds one of these slots.
    pub prefetch: u16,
    /// Delay before the first retry of a failed message; doubled per further attempt (jittered).
    pub retry_backoff: Duration,
    /// Upper bound of the retry delay.
    pub retry_backoff_max: Duration,
    /// Upper bound of the delay between reconnection attempts after the broker is lost.
    pub reconnect_backoff_max: Duration,
    /// How often the consumer reads its queue depth for the `event_consumer_queue_depth` gauge.
    pub depth_poll_interval: Duration,
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        Self {
            delivery_limit: 5,
            concurrency: 4,
            prefetch: 16,
            retry_backoff: Duration::from_secs(1),
            retry_backoff_max: Duration::from_secs(60),
            reconnect_backoff_max: Duration::from_secs(30),
            depth_poll_interval: Duration::from_secs(15),
        }
    }
}

impl ConsumerSettings {
    /// The prefetch asked of the broker: at least one message per handler task.
    #[must_use]
    pub fn effective_prefetch(&self) -> u16 {
        self.prefetch.max(self.concurrency).max(1)
    }
}
