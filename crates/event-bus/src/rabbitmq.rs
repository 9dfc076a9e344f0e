//! RabbitMQ backend (lapin).
//!
//! Topology, for exchange `X` and a consuming service whose queue is `Q`:
//! - `X`: durable topic exchange; events are published with their topic as routing key.
//! - `Q`: durable quorum queue bound to `X` once per handled topic, with `x-delivery-limit`,
//!   `x-dead-letter-exchange: X.dlx`, `x-dead-letter-routing-key: Q` and at-least-once
//!   dead-lettering (`x-dead-letter-strategy: at-least-once`, which needs
//!   `x-overflow: reject-publish`).
//! - `X.dlx`: durable direct exchange; `Q.dlq`: durable classic queue bound to it with key `Q`.
//!   (A classic queue, so that listing it — fetch, then requeue — never counts towards a delivery
//!   limit.)
//!
//! Consumers dead-letter a message themselves (publishing a copy, with the reason in headers, to
//! `X.dlx` with confirms, then acknowledging it); the broker's own dead-lettering catches messages
//! that exceed the delivery limit because their handling keeps crashing the process.
//!
//! A queue is declared with fixed arguments: changing them for an existing queue fails with
//! `PRECONDITION_FAILED`; delete the queue (or use a new name) to change them.

use std::{str::FromStr, time::Duration};

use chrono::{DateTime, Utc};
use futures::{StreamExt, future::BoxFuture};
use lapin::{
    Acker, BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
    message::Delivery,
    options::{
        BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicGetOptions,
        BasicNackOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
        ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
    },
    types::{AMQPValue, FieldTable, LongString, ShortString},
    uri::AMQPUri,
};
use tokio::{
    sync::Mutex,
    time::{Instant, timeout, timeout_at},
};
use uuid::Uuid;

use crate::{
    BusError,
    bus::{
        Acknowledger, Bus, Incoming, MessageStream, OutgoingMessage, PublishOutcome, Subscription,
    },
    config::BusConfig,
    dlq::{DeadLetter, Replay},
};

/// Header holding the consumer's dead-letter reason.
const REASON_HEADER: &str = "x-lomash-dead-letter-reason";
/// Header holding the deliveries made before dead-lettering.
const ATTEMPTS_HEADER: &str = "x-lomash-attempts";
/// Header holding when the consumer dead-lettered the message (Unix seconds).
const DEAD_AT_HEADER: &str = "x-lomash-dead-lettered-at";
/// Heartbeat used unless the URL sets one: a silent broker is noticed within ~2 intervals.
const DEFAULT_HEARTBEAT_SECS: u16 = 10;
/// Largest frame asked for unless the URL sets `frame_max`. lapin gives every connection a read
/// and a write buffer of 32 frames, zero-filled at the handshake: at the broker's 128 KiB that
/// was 8 MiB resident per connection (two per consuming service) before a single event. Events
/// are a few KiB of JSON; a larger body is split over several frames.
const DEFAULT_FRAME_MAX: u32 = 16 * 1024;

/// The RabbitMQ bus.
pub(crate) struct RabbitBus {
    config: BusConfig,
    uri: AMQPUri,
    publisher: Mutex<Option<Publisher>>,
}

/// The publishing connection, kept between publishes and remade after a loss.
struct Publisher {
    connection: Connection,
    channel: Channel,
}

impl Publisher {
    fn is_usable(&self) -> bool {
        self.connection.status().connected() && self.channel.status().connected()
    }
}

fn short(value: &str) -> Result<ShortString, BusError> {
    ShortString::try_new(value)
        .map_err(|_| BusError::Config(format!("name longer than 255 bytes: {value}")))
}

fn durable_queue() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    }
}

fn durable_exchange() -> ExchangeDeclareOptions {
    ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    }
}

/// Properties of a published event.
fn event_properties(event_id: Option<Uuid>, topic: Option<&str>) -> BasicProperties {
    let mut properties = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_timestamp(u64::try_from(Utc::now().timestamp()).unwrap_or_default());
    if let Some(id) = event_id {
        properties = properties.with_message_id(id.to_string().into());
    }
    if let Some(topic) = topic.and_then(|t| ShortString::try_new(t).ok()) {
        properties = properties.with_type(topic);
    }
    properties
}

fn header<'a>(properties: &'a BasicProperties, name: &str) -> Option<&'a AMQPValue> {
    properties
        .headers()
        .as_ref()
        .and_then(|headers| headers.inner().get(name))
}

fn as_u64(value: &AMQPValue) -> Option<u64> {
    match value {
        AMQPValue::ShortShortInt(v) => u64::try_from(*v).ok(),
        AMQPValue::ShortShortUInt(v) => Some(u64::from(*v)),
        AMQPValue::ShortInt(v) => u64::try_from(*v).ok(),
        AMQPValue::ShortUInt(v) => Some(u64::from(*v)),
        AMQPValue::LongInt(v) => u64::try_from(*v).ok(),
        AMQPValue::LongUInt(v) => Some(u64::from(*v)),
        AMQPValue::LongLongInt(v) => u64::try_from(*v).ok(),
        AMQPValue::Timestamp(v) => Some(*v),
        _ => None,
    }
}

fn as_string(value: &AMQPValue) -> Option<String> {
    match value {
        AMQPValue::LongString(s) => Some(s.to_string()),
        AMQPValue::ShortString(s) => Some(s.to_string()),
        _ => None,
    }
}

fn to_u32(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// Which delivery this is: the quorum queue's `x-delivery-count` counts earlier ones.
fn attempt_of(delivery: &Delivery) -> u32 {
    let earlier = header(&delivery.properties, "x-delivery-count")
        .and_then(as_u64)
        .map(to_u32);
    match earlier {
        Some(count) => count.saturating_add(1),
        None if delivery.redelivered => 2,
        None => 1,
    }
}

fn timestamp(secs: u64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(i64::try_from(secs).ok()?, 0)
}

/// Reads what is known about why a message in a DLQ is there.
fn dead_letter_of(delivery: &Delivery) -> DeadLetter {
    let properties = &delivery.properties;
    let first_death = header(properties, "x-death").and_then(|value| match value {
        AMQPValue::FieldArray(deaths) => deaths.as_slice().first().and_then(|d| match d {
            AMQPValue::FieldTable(table) => Some(table.clone()),
            _ => None,
        }),
        _ => None,
    });
    let death_field = |name: &str| {
        first_death
            .as_ref()
            .and_then(|t| t.inner().get(name).cloned())
    };

    let reason = header(properties, REASON_HEADER)
        .and_then(as_string)
        .or_else(|| death_field("reason").as_ref().and_then(as_string))
        .unwrap_or_else(|| "unknown".to_owned());
    let count = header(properties, ATTEMPTS_HEADER)
        .and_then(as_u64)
        .or_else(|| {
            // A quorum queue dead-letters at the delivery limit: report deliveries, not deaths.
            header(properties, "x-delivery-count")
                .and_then(as_u64)
                .filter(|_| reason == "delivery_limit")
        })
        .or_else(|| death_field("count").as_ref().and_then(as_u64))
        .unwrap_or(1);
    let at = header(properties, DEAD_AT_HEADER)
        .and_then(as_u64)
        .or_else(|| death_field("time").as_ref().and_then(as_u64))
        .and_then(timestamp);

    let mut dead_letter = DeadLetter::from_body(&delivery.data, reason, to_u32(count));
    dead_letter.dead_lettered_at = at;
    dead_letter
}

impl RabbitBus {
    pub(crate) fn new(config: BusConfig) -> Result<Self, BusError> {
        let mut uri = AMQPUri::from_str(&config.amqp_url)
            .map_err(|e| BusError::Config(format!("invalid AMQP URL: {e}")))?;
        if uri.query.heartbeat.is_none() {
            uri.query.heartbeat = Some(DEFAULT_HEARTBEAT_SECS);
        }
        if uri.query.frame_max.is_none() {
            uri.query.frame_max = Some(DEFAULT_FRAME_MAX);
        }
        short(&config.exchange)?;
        short(&config.dead_letter_exchange())?;
        Ok(Self {
            config,
            uri,
            publisher: Mutex::new(None),
        })
    }

    async fn open_connection(&self, name: &str) -> Result<Connection, BusError> {
        let properties = ConnectionProperties::default().with_connection_name(name.into());
        match timeout(
            self.config.connect_timeout,
            Connection::connect_uri(self.uri.clone(), properties),
        )
        .await
        {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(error)) => Err(BusError::Connection(error.to_string())),
            Err(_) => Err(BusError::Timeout(self.config.connect_timeout)),
        }
    }

    /// Declares the subscriber's topology on a new channel of `connection` and starts consuming
    /// its queue with the subscription's prefetch.
    async fn start_consuming(
        &self,
        connection: &Connection,
        subscription: &Subscription,
    ) -> Result<(Channel, lapin::Consumer), BusError> {
        let channel = connection.create_channel().await?;
        self.declare_topology(&channel, &subscription.service, &subscription.topics)
            .await?;
        channel
            .basic_qos(subscription.prefetch.max(1), BasicQosOptions::default())
            .await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let consumer = channel
            .basic_consume(
                short(&self.config.queue_name(&subscription.service))?,
                ShortString::from(""),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok((channel, consumer))
    }

    /// The publishing channel, (re)connecting when there is none or it was lost.
    async fn publisher_channel(&self, slot: &mut Option<Publisher>) -> Result<Channel, BusError> {
        if let Some(publisher) = slot.as_ref().filter(|p| p.is_usable()) {
            return Ok(publisher.channel.clone());
        }
        if slot.take().is_some() {
            tracing::info!("reconnecting the event publisher to RabbitMQ");
        }
        let connection = self.open_connection("event-bus publisher").await?;
        let channel = connection.create_channel().await?;
        channel
            .exchange_declare(
                short(&self.config.exchange)?,
                ExchangeKind::Topic,
                durable_exchange(),
                FieldTable::default(),
            )
            .await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        self.declare_subscribers(&connection).await;
        *slot = Some(Publisher {
            connection,
            channel: channel.clone(),
        });
        Ok(channel)
    }

    /// Publishes in order, counting confirmed messages in `confirmed`.
    async fn publish_locked(
        &self,
        slot: &mut Option<Publisher>,
        messages: &[OutgoingMessage],
        confirmed: &mut usize,
    ) -> Result<(), BusError> {
        let channel = self.publisher_channel(slot).await?;
        let exchange = short(&self.config.exchange)?;
        let mut pending = Vec::with_capacity(messages.len());
        let mut publish_error = None;
        for message in messages {
            let sent = async {
                channel
                    .basic_publish(
                        exchange.clone(),
                        short(&message.topic)?,
                        BasicPublishOptions::default(),
                        &message.body,
                        event_properties(Some(message.event_id), Some(&message.topic)),
                    )
                    .await
                    .map_err(BusError::from)
            }
            .await;
            match sent {
                Ok(confirm) => pending.push(confirm),
                Err(error) => {
                    publish_error = Some(error);
                    break;
                }
            }
        }
        for confirm in pending {
            match confirm.await? {
                Confirmation::Ack(_) => *confirmed += 1,
                Confirmation::Nack(_) => return Err(BusError::Nacked),
                Confirmation::NotRequested => {
                    return Err(BusError::Broker("publisher confirms are off".into()));
                }
            }
        }
        publish_error.map_or(Ok(()), Err)
    }

    /// Declares every subscribed service's queue and bindings, so events published before a
    /// consumer first starts wait in its queue instead of being dropped by the exchange. On its
    /// own channel: a refused declaration (a queue with other arguments) closes that channel,
    /// not the publisher's; it is logged and the consumer's own declaration will report it.
    async fn declare_subscribers(&self, connection: &Connection) {
        for (service, topics) in self.config.subscriptions() {
            let declared = match connection.create_channel().await {
                Ok(channel) => {
                    let result = self.declare_topology(&channel, &service, &topics).await;
                    let _ = channel.close(200, "declared".into()).await;
                    result
                }
                Err(error) => Err(error.into()),
            };
            if let Err(error) = declared {
                tracing::warn!(%service, %error, "could not declare a subscriber's queue");
            }
        }
    }

    /// Declares the exchanges and `service`'s queues and bindings on `channel`.
    async fn declare_topology(
        &self,
        channel: &Channel,
        service: &str,
        topics: &[String],
    ) -> Result<(), BusError> {
        let queue = self.config.queue_name(service);
        let dead_letter_queue = self.config.dead_letter_queue_name(service);
        let exchange = short(&self.config.exchange)?;
        let dlx = short(&self.config.dead_letter_exchange())?;

        channel
            .exchange_declare(
                exchange.clone(),
                ExchangeKind::Topic,
                durable_exchange(),
                FieldTable::default(),
            )
            .await?;
        channel
            .exchange_declare(
                dlx.clone(),
                ExchangeKind::Direct,
                durable_exchange(),
                FieldTable::default(),
            )
            .await?;
        channel
            .queue_declare(
                short(&dead_letter_queue)?,
                durable_queue(),
                FieldTable::default(),
            )
            .await?;
        channel
            .queue_bind(
                short(&dead_letter_queue)?,
                dlx.clone(),
                short(&queue)?,
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;

        let mut arguments = FieldTable::default();
        arguments.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        arguments.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongLongInt(i64::from(self.config.consumer.delivery_limit)),
        );
        arguments.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(self.config.dead_letter_exchange().into()),
        );
        arguments.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(queue.as_str().into()),
        );
        arguments.insert(
            "x-dead-letter-strategy".into(),
            AMQPValue::LongString("at-least-once".into()),
        );
        arguments.insert(
            "x-overflow".into(),
            AMQPValue::LongString("reject-publish".into()),
        );
        if let Some(expiry) = self.config.queue_expiry {
            arguments.insert(
                "x-expires".into(),
                AMQPValue::LongLongInt(i64::try_from(expiry.as_millis()).unwrap_or(i64::MAX)),
            );
        }
        channel
            .queue_declare(short(&queue)?, durable_queue(), arguments)
            .await?;
        for topic in topics {
            channel
                .queue_bind(
                    short(&queue)?,
                    exchange.clone(),
                    short(topic)?,
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
        Ok(())
    }

    /// A fresh connection and channel for an administrative operation, with `service`'s DLQ
    /// declared (so that a service that never consumed has an empty one).
    async fn admin_channel(&self, service: &str) -> Result<(Connection, Channel), BusError> {
        let connection = self.open_connection("event-bus dlq admin").await?;
        let channel = connection.create_channel().await?;
        channel
            .queue_declare(
                short(&self.config.dead_letter_queue_name(service))?,
                durable_queue(),
                FieldTable::default(),
            )
            .await?;
        Ok((connection, channel))
    }

    async fn list_dead_letters(&self, service: &str) -> Result<Vec<DeadLetter>, BusError> {
        let (connection, channel) = self.admin_channel(service).await?;
        let queue = short(&self.config.dead_letter_queue_name(service))?;
        let mut found = Vec::new();
        // Fetch everything without acknowledging; closing the channel puts it all back.
        while let Some(message) = channel
            .basic_get(queue.clone(), BasicGetOptions::default())
            .await?
        {
            found.push(dead_letter_of(&message.delivery));
        }
        close(connection, channel).await;
        Ok(found)
    }

    async fn replay(&self, service: &str, selection: Replay) -> Result<usize, BusError> {
        let (connection, channel) = self.admin_channel(service).await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let dead_letter_queue = short(&self.config.dead_letter_queue_name(service))?;
        let target = short(&self.config.queue_name(service))?;
        let mut replayed = 0;
        let result = async {
            while let Some(message) = channel
                .basic_get(dead_letter_queue.clone(), BasicGetOptions::default())
                .await?
            {
                let delivery = message.delivery;
                let dead_letter = dead_letter_of(&delivery);
                if !dead_letter.is_selected(selection) {
                    continue; // left unacknowledged: back in the DLQ when the channel closes
                }
                // Straight to the service's queue through the default exchange, with fresh
                // properties (no death history, so it gets a full delivery budget again).
                let confirm = channel
                    .basic_publish(
                        ShortString::from(""),
                        target.clone(),
                        BasicPublishOptions::default(),
                        &delivery.data,
                        event_properties(dead_letter.event_id, dead_letter.topic.as_deref()),
                    )
                    .await?;
                match timeout(self.config.publish_timeout, confirm).await {
                    Ok(Ok(Confirmation::Ack(_))) => {}
                    Ok(Ok(_)) => return Err(BusError::Nacked),
                    Ok(Err(error)) => return Err(error.into()),
                    Err(_) => return Err(BusError::Timeout(self.config.publish_timeout)),
                }
                settled(delivery.acker.ack(BasicAckOptions::default()).await)?;
                replayed += 1;
            }
            Ok(())
        }
        .await;
        close(connection, channel).await;
        result.map(|()| replayed)
    }
}

/// Closes a connection whose consumer could not be set up, not waiting long for a broker that
/// is gone.
async fn abandon(connection: &Connection) {
    let _ = timeout(Duration::from_secs(2), connection.close(200, "bye".into())).await;
}

/// Closes a channel and its connection, not waiting long for a broker that is gone.
async fn close(connection: Connection, channel: Channel) {
    let grace = Duration::from_secs(2);
    let _ = timeout(grace, channel.close(200, "bye".into())).await;
    let _ = timeout(grace, connection.close(200, "bye".into())).await;
}

impl Bus for RabbitBus {
    fn config(&self) -> &BusConfig {
        &self.config
    }

    fn publish_batch<'a>(
        &'a self,
        messages: &'a [OutgoingMessage],
    ) -> BoxFuture<'a, PublishOutcome> {
        Box::pin(async move {
            if messages.is_empty() {
                return PublishOutcome {
                    published: 0,
                    error: None,
                };
            }
            let deadline = Instant::now() + self.config.publish_timeout;
            let mut confirmed = 0;
            let result = match timeout_at(deadline, self.publisher.lock()).await {
                Err(_) => Err(BusError::Timeout(self.config.publish_timeout)),
                Ok(mut slot) => {
                    let outcome = timeout_at(
                        deadline,
                        self.publish_locked(&mut slot, messages, &mut confirmed),
                    )
                    .await
                    .unwrap_or(Err(BusError::Timeout(self.config.publish_timeout)));
                    if outcome.is_err() {
                        // Whatever went wrong, start the next publish on a fresh connection.
                        *slot = None;
                    }
                    outcome
                }
            };
            PublishOutcome {
                published: confirmed,
                error: result.err(),
            }
        })
    }

    fn subscribe<'a>(
        &'a self,
        subscription: &'a Subscription,
    ) -> BoxFuture<'a, Result<Box<dyn MessageStream>, BusError>> {
        Box::pin(async move {
            let connection = self
                .open_connection(&format!("event-bus consumer {}", subscription.service))
                .await?;
            // Each step below waits for the broker's answer; a broker that accepted the TCP
            // connection and then stalls would otherwise leave the consumer waiting forever
            // instead of retrying. The whole setup gets the connect timeout once more.
            let setup = self.start_consuming(&connection, subscription);
            match timeout(self.config.connect_timeout, setup).await {
                Ok(Ok((channel, consumer))) => Ok(Box::new(RabbitStream {
                    connection,
                    channel,
                    consumer,
                    dead_letter_exchange: self.config.dead_letter_exchange(),
                    queue: self.config.queue_name(&subscription.service),
                    publish_timeout: self.config.publish_timeout,
                }) as Box<dyn MessageStream>),
                Ok(Err(error)) => {
                    abandon(&connection).await;
                    Err(error)
                }
                Err(_) => {
                    abandon(&connection).await;
                    Err(BusError::Timeout(self.config.connect_timeout))
                }
            }
        })
    }

    fn check_ready(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let deadline = Instant::now() + self.config.connect_timeout;
            let mut slot = timeout_at(deadline, self.publisher.lock())
                .await
                .map_err(|_| "RabbitMQ publisher busy".to_owned())?;
            match timeout_at(deadline, self.publisher_channel(&mut slot)).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(error)) => Err(format!("RabbitMQ unreachable: {error}")),
                Err(_) => Err("RabbitMQ did not answer in time".to_owned()),
            }
        })
    }

    fn queue_depth<'a>(&'a self, service: &'a str) -> BoxFuture<'a, Result<Option<u64>, BusError>> {
        Box::pin(async move {
            let channel = {
                let mut slot = self.publisher.lock().await;
                self.publisher_channel(&mut slot).await?;
                match slot.as_ref() {
                    Some(publisher) => publisher.connection.create_channel().await?,
                    None => return Ok(None),
                }
            };
            let declared = channel
                .queue_declare(
                    short(&self.config.queue_name(service))?,
                    QueueDeclareOptions {
                        passive: true,
                        ..QueueDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await;
            let _ = channel.close(200, "bye".into()).await;
            // A missing queue closes the channel with NOT_FOUND: nothing to measure yet.
            Ok(declared.ok().map(|queue| u64::from(queue.message_count())))
        })
    }

    fn dead_letters<'a>(
        &'a self,
        service: &'a str,
    ) -> BoxFuture<'a, Result<Vec<DeadLetter>, BusError>> {
        Box::pin(self.list_dead_letters(service))
    }

    fn replay_dead_letters<'a>(
        &'a self,
        service: &'a str,
        selection: Replay,
    ) -> BoxFuture<'a, Result<usize, BusError>> {
        Box::pin(self.replay(service, selection))
    }
}

/// A consuming channel of one service's queue.
struct RabbitStream {
    connection: Connection,
    channel: Channel,
    consumer: lapin::Consumer,
    dead_letter_exchange: String,
    queue: String,
    publish_timeout: Duration,
}

impl MessageStream for RabbitStream {
    fn next(&mut self) -> BoxFuture<'_, Result<Incoming, BusError>> {
        Box::pin(async move {
            match self.consumer.next().await {
                Some(Ok(delivery)) => {
                    let attempt = attempt_of(&delivery);
                    let body = delivery.data.clone();
                    Ok(Incoming {
                        body,
                        attempt,
                        acknowledger: Box::new(RabbitAcknowledger {
                            acker: delivery.acker,
                            data: delivery.data,
                            properties: delivery.properties,
                            attempt,
                            channel: self.channel.clone(),
                            dead_letter_exchange: self.dead_letter_exchange.clone(),
                            queue: self.queue.clone(),
                            publish_timeout: self.publish_timeout,
                        }),
                    })
                }
                Some(Err(error)) => Err(BusError::Connection(error.to_string())),
                None => Err(BusError::Connection(
                    "the broker cancelled the consumer".into(),
                )),
            }
        })
    }

    fn close(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let grace = Duration::from_secs(2);
            let tag = self.consumer.tag();
            let _ = timeout(
                grace,
                self.channel
                    .basic_cancel(tag, BasicCancelOptions::default()),
            )
            .await;
            // Closing returns every unacknowledged message to the queue.
            close(self.connection, self.channel).await;
        })
    }
}

/// Settles one RabbitMQ delivery.
struct RabbitAcknowledger {
    acker: Acker,
    data: Vec<u8>,
    properties: BasicProperties,
    attempt: u32,
    channel: Channel,
    dead_letter_exchange: String,
    queue: String,
    publish_timeout: Duration,
}

impl RabbitAcknowledger {
    /// Publishes a copy with the reason to the dead-letter exchange and waits for the confirm.
    async fn publish_dead_letter(&self, reason: &str) -> Result<(), BusError> {
        let mut headers = self.properties.headers().clone().unwrap_or_default();
        headers.insert(
            REASON_HEADER.into(),
            AMQPValue::LongString(LongString::from(reason)),
        );
        headers.insert(
            ATTEMPTS_HEADER.into(),
            AMQPValue::LongLongInt(i64::from(self.attempt)),
        );
        headers.insert(
            DEAD_AT_HEADER.into(),
            AMQPValue::Timestamp(u64::try_from(Utc::now().timestamp()).unwrap_or_default()),
        );
        let properties = self.properties.clone().with_headers(headers);
        let confirm = self
            .channel
            .basic_publish(
                short(&self.dead_letter_exchange)?,
                short(&self.queue)?,
                BasicPublishOptions::default(),
                &self.data,
                properties,
            )
            .await?;
        match timeout(self.publish_timeout, confirm).await {
            Ok(Ok(Confirmation::Ack(_))) => Ok(()),
            Ok(Ok(_)) => Err(BusError::Nacked),
            Ok(Err(error)) => Err(error.into()),
            Err(_) => Err(BusError::Timeout(self.publish_timeout)),
        }
    }
}

/// lapin answers `Ok(false)` when the channel is already gone: the broker never hears of it.
fn settled(sent: Result<bool, lapin::Error>) -> Result<(), BusError> {
    match sent {
        Ok(true) => Ok(()),
        Ok(false) => Err(BusError::Connection(
            "channel closed before the message was settled; the broker will redeliver it".into(),
        )),
        Err(error) => Err(error.into()),
    }
}

impl Acknowledger for RabbitAcknowledger {
    fn ack(self: Box<Self>) -> BoxFuture<'static, Result<(), BusError>> {
        Box::pin(async move { settled(self.acker.ack(BasicAckOptions::default()).await) })
    }

    fn retry(self: Box<Self>, delay: Duration) -> BoxFuture<'static, Result<(), BusError>> {
        Box::pin(async move {
            // Hold the message for `delay`, then hand it back; the quorum queue counts the
            // return in `x-delivery-count`. Meanwhile the consumer goes on with other messages.
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let requeue = BasicNackOptions {
                    requeue: true,
                    multiple: false,
                };
                if let Err(error) = self.acker.nack(requeue).await {
                    // The channel is gone; the broker requeued the message itself.
                    tracing::debug!(%error, "could not requeue a message for retry");
                }
            });
            Ok(())
        })
    }

    fn dead_letter(self: Box<Self>, reason: String) -> BoxFuture<'static, Result<(), BusError>> {
        Box::pin(async move {
            match self.publish_dead_letter(&reason).await {
                Ok(()) => settled(self.acker.ack(BasicAckOptions::default()).await),
                Err(error) => {
                    // Let the broker dead-letter it (at least once), without our reason.
                    tracing::warn!(%error, "dead-letter publish failed; rejecting instead");
                    let reject = BasicNackOptions {
                        requeue: false,
                        multiple: false,
                    };
                    settled(self.acker.nack(reject).await)
                }
            }
        })
    }
}
