//! The backend-neutral broker interface.

use std::{sync::Arc, time::Duration};

use futures::future::BoxFuture;
use uuid::Uuid;

use crate::{
    BusError,
    config::{BackendKind, BusConfig},
    dlq::{DeadLetter, Replay},
    memory::MemoryBus,
    rabbitmq::RabbitBus,
    sqs::SqsBus,
};

/// A bus shared by the relay, consumers and the `/ready` endpoint.
pub type SharedBus = Arc<dyn Bus>;

/// Builds the bus `config` describes. Connections are made lazily (and remade after a loss) by
/// the operations that need them, so this succeeds while the broker is down; only an unusable
/// configuration is an error.
///
/// # Errors
/// [`BusError::Config`] for a configuration that cannot work.
pub async fn connect(config: BusConfig) -> Result<SharedBus, BusError> {
    if config.consumer.delivery_limit == 0 {
        return Err(BusError::Config("delivery_limit must be at least 1".into()));
    }
    if config.consumer.concurrency == 0 {
        return Err(BusError::Config(
            "consumer concurrency must be at least 1".into(),
        ));
    }
    Ok(match config.backend {
        BackendKind::RabbitMq => Arc::new(RabbitBus::new(config)?),
        BackendKind::Sqs => Arc::new(SqsBus::new(config).await?),
        BackendKind::InMemory => Arc::new(MemoryBus::new(config)),
    })
}

/// One event to publish: the serialized envelope and what routes it.
#[derive(Debug, Clone)]
pub struct OutgoingMessage {
    /// The envelope's id (also the broker message id).
    pub event_id: Uuid,
    /// The envelope's topic (the routing key).
    pub topic: String,
    /// The serialized envelope.
    pub body: Vec<u8>,
}

/// The result of publishing a batch in order.
#[derive(Debug)]
pub struct PublishOutcome {
    /// How many messages, from the start of the batch, the broker confirmed.
    pub published: usize,
    /// Why the message at index `published` failed; the messages after it count as not sent.
    pub error: Option<BusError>,
}

/// What a consumer subscribes to: its service name (which names its queue) and its topics.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// The consuming service, e.g. `customer`.
    pub service: String,
    /// The topics it handles.
    pub topics: Vec<String>,
    /// Unacknowledged messages the broker may hand this subscriber at a time (on SQS, the
    /// receive batch, at most 10).
    pub prefetch: u16,
}

/// One received message.
pub struct Incoming {
    /// The raw envelope.
    pub body: Vec<u8>,
    /// Which delivery of this message this is, starting at 1.
    pub attempt: u32,
    /// Settles the message with the broker.
    pub acknowledger: Box<dyn Acknowledger>,
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("bytes", &self.body.len())
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

/// Settles one received message. Dropping it unsettled leaves the message to the broker, which
/// redelivers it (after the connection closes, or the visibility timeout on SQS).
pub trait Acknowledger: Send {
    /// The message is done with: remove it.
    fn ack(self: Box<Self>) -> BoxFuture<'static, Result<(), BusError>>;
    /// Deliver the message again after `delay`.
    fn retry(self: Box<Self>, delay: Duration) -> BoxFuture<'static, Result<(), BusError>>;
    /// Move the message to the dead-letter queue, noting `reason`.
    fn dead_letter(self: Box<Self>, reason: String) -> BoxFuture<'static, Result<(), BusError>>;
}

/// The messages of one subscription. An error means the subscription is lost (e.g. the broker
/// connection dropped); subscribe again.
pub trait MessageStream: Send {
    /// The next message; waits until one arrives.
    fn next(&mut self) -> BoxFuture<'_, Result<Incoming, BusError>>;
    /// Stops consuming and hands back anything received but not yet returned by `next`.
    fn close(self: Box<Self>) -> BoxFuture<'static, ()>;
}

/// A message broker backend: RabbitMQ, SQS or in-process.
pub trait Bus: Send + Sync + 'static {
    /// The configuration the bus was built from.
    fn config(&self) -> &BusConfig;

    /// Publishes `messages` in order with confirms, within the configured publish timeout,
    /// reconnecting first if the connection was lost. Stops at the first failure.
    fn publish_batch<'a>(
        &'a self,
        messages: &'a [OutgoingMessage],
    ) -> BoxFuture<'a, PublishOutcome>;

    /// Declares the subscriber's queue (with its dead-letter queue and bindings) and starts
    /// consuming it.
    fn subscribe<'a>(
        &'a self,
        subscription: &'a Subscription,
    ) -> BoxFuture<'a, Result<Box<dyn MessageStream>, BusError>>;

    /// Whether the broker is reachable, for a service's `/ready` endpoint.
    fn check_ready(&self) -> BoxFuture<'_, Result<(), String>>;

    /// The number of messages waiting in `service`'s queue, when the broker can tell cheaply.
    fn queue_depth<'a>(&'a self, service: &'a str) -> BoxFuture<'a, Result<Option<u64>, BusError>>;

    /// The messages in `service`'s dead-letter queue (left in place).
    fn dead_letters<'a>(
        &'a self,
        service: &'a str,
    ) -> BoxFuture<'a, Result<Vec<DeadLetter>, BusError>>;

    /// Moves the selected dead letters of `service` back to its queue; returns how many.
    fn replay_dead_letters<'a>(
        &'a self,
        service: &'a str,
        selection: Replay,
    ) -> BoxFuture<'a, Result<usize, BusError>>;
}

impl dyn Bus {
    /// Publishes one message; see [`Bus::publish_batch`].
    ///
    /// # Errors
    /// The broker's failure.
    pub async fn publish(&self, message: OutgoingMessage) -> Result<(), BusError> {
        let outcome = self.publish_batch(std::slice::from_ref(&message)).await;
        match outcome.error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}
