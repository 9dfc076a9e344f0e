//! SQS backend.
//!
//! One standard queue per consuming service (`<queue_prefix><service>`) with a dead-letter queue
//! (`<queue>-dlq`) attached by a redrive policy (`maxReceiveCount` = the delivery limit). The
//! producer sends each event to every queue the routing table names for its topic. A consumer
//! long-polls, deletes a message after its transaction commits, retries by setting the message's
//! visibility timeout to the backoff delay, and dead-letters by sending a copy (with the reason
//! as message attributes) to its DLQ and deleting the original.

use std::{
    collections::{HashMap, VecDeque},
    time::Duration,
};

use aws_sdk_sqs::{
    Client,
    error::{DisplayErrorContext, SdkError},
    operation::{create_queue::CreateQueueError, get_queue_url::GetQueueUrlError},
    types::{Message, MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName},
};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use tokio::{
    sync::Mutex,
    time::{Instant, timeout, timeout_at},
};

use crate::{
    BusError,
    bus::{
        Acknowledger, Bus, Incoming, MessageStream, OutgoingMessage, PublishOutcome, Subscription,
    },
    config::BusConfig,
    dlq::{DeadLetter, Replay},
};

/// Message attribute: the consumer's dead-letter reason.
const REASON_ATTRIBUTE: &str = "deadLetterReason";
/// Message attribute: deliveries made before dead-lettering.
const ATTEMPTS_ATTRIBUTE: &str = "attempts";
/// Message attribute: when it was dead-lettered (RFC 3339).
const DEAD_AT_ATTRIBUTE: &str = "deadLetteredAt";
/// Message attribute: the event's topic.
const TOPIC_ATTRIBUTE: &str = "topic";
/// Message attribute: the event's id.
const EVENT_ID_ATTRIBUTE: &str = "eventId";
/// How long a message fetched for listing stays hidden before it is released again.
const LISTING_VISIBILITY_SECS: i32 = 60;
/// Dead letters are kept for the SQS maximum, 14 days.
const DLQ_RETENTION_SECS: &str = "1209600";

fn sdk_error<E, R>(error: SdkError<E, R>) -> BusError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match error {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            BusError::Connection(DisplayErrorContext(&error).to_string())
        }
        other => BusError::Broker(DisplayErrorContext(&other).to_string()),
    }
}

fn string_attribute(value: &str) -> Result<MessageAttributeValue, BusError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| BusError::Broker(e.to_string()))
}

fn attribute<'a>(message: &'a Message, name: &str) -> Option<&'a str> {
    message
        .message_attributes()
        .and_then(|attributes| attributes.get(name))
        .and_then(MessageAttributeValue::string_value)
}

fn receive_count(message: &Message) -> u32 {
    message
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|count| count.parse().ok())
        .unwrap_or(1)
}

fn whole_seconds(duration: Duration, max: u64) -> i32 {
    let secs = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    i32::try_from(secs.min(max)).unwrap_or(i32::MAX)
}

/// The SQS bus.
pub(crate) struct SqsBus {
    config: BusConfig,
    client: Client,
    urls: Mutex<HashMap<String, String>>,
}

impl SqsBus {
    pub(crate) async fn new(config: BusConfig) -> Result<Self, BusError> {
        let client = Client::new(
            &crate::aws::sdk_config(&crate::aws::AwsSettings {
                region: config.sqs.region.clone(),
                endpoint_url: config.sqs.endpoint_url.clone(),
                credentials: config.sqs.credentials.clone(),
            })
            .await,
        );
        Ok(Self {
            config,
            client,
            urls: Mutex::new(HashMap::new()),
        })
    }

    /// The URL of an existing queue, `None` if there is no such queue.
    async fn existing_url(&self, name: &str) -> Result<Option<String>, BusError> {
        if let Some(url) = self.urls.lock().await.get(name) {
            return Ok(Some(url.clone()));
        }
        match self.client.get_queue_url().queue_name(name).send().await {
            Ok(output) => {
                let url = output.queue_url().unwrap_or_default().to_owned();
                self.urls.lock().await.insert(name.to_owned(), url.clone());
                Ok(Some(url))
            }
            Err(error)
                if matches!(
                    error.as_service_error(),
                    Some(GetQueueUrlError::QueueDoesNotExist(_))
                ) =>
            {
                Ok(None)
            }
            Err(error) => Err(sdk_error(error)),
        }
    }

    /// Creates queue `name` unless it exists; returns its URL.
    async fn create_queue(&self, name: &str) -> Result<String, BusError> {
        if let Some(url) = self.existing_url(name).await? {
            return Ok(url);
        }
        let url = match self.client.create_queue().queue_name(name).send().await {
            Ok(output) => output.queue_url().unwrap_or_default().to_owned(),
            Err(error)
                if matches!(
                    error.as_service_error(),
                    Some(CreateQueueError::QueueNameExists(_))
                ) =>
            {
                self.existing_url(name)
                    .await?
                    .ok_or_else(|| BusError::Broker(format!("queue {name} vanished")))?
            }
            Err(error) => return Err(sdk_error(error)),
        };
        self.urls.lock().await.insert(name.to_owned(), url.clone());
        Ok(url)
    }

    /// Makes sure `service`'s queue and DLQ exist with the redrive policy and visibility timeout
    /// of this configuration; returns `(queue URL, DLQ URL)`.
    async fn ensure_queues(&self, service: &str) -> Result<(String, String), BusError> {
        let dlq_url = self
            .create_queue(&self.config.dead_letter_queue_name(service))
            .await?;
        self.client
            .set_queue_attributes()
            .queue_url(&dlq_url)
            .attributes(
                QueueAttributeName::MessageRetentionPeriod,
                DLQ_RETENTION_SECS,
            )
            .send()
            .await
            .map_err(sdk_error)?;
        let dlq_arn = self
            .client
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(sdk_error)?
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .cloned()
            .ok_or_else(|| BusError::Broker("the DLQ has no ARN".into()))?;

        let url = self.create_queue(&self.config.queue_name(service)).await?;
        let redrive = serde_json::json!({
            "deadLetterTargetArn": dlq_arn,
            "maxReceiveCount": self.config.consumer.delivery_limit.to_string(),
        });
        self.client
            .set_queue_attributes()
            .queue_url(&url)
            .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                whole_seconds(self.config.sqs.visibility_timeout, 43_200).to_string(),
            )
            .send()
            .await
            .map_err(sdk_error)?;
        Ok((url, dlq_url))
    }

    /// The URL of `service`'s queue, creating the queues when they do not exist yet (so events
    /// published before the consumer first starts wait for it).
    async fn route_url(&self, service: &str) -> Result<String, BusError> {
        match self.existing_url(&self.config.queue_name(service)).await? {
            Some(url) => Ok(url),
            None => Ok(self.ensure_queues(service).await?.0),
        }
    }

    async fn send(&self, url: &str, message: &OutgoingMessage) -> Result<(), BusError> {
        self.client
            .send_message()
            .queue_url(url)
            .message_body(String::from_utf8_lossy(&message.body))
            .message_attributes(TOPIC_ATTRIBUTE, string_attribute(&message.topic)?)
            .message_attributes(
                EVENT_ID_ATTRIBUTE,
                string_attribute(&message.event_id.to_string())?,
            )
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    async fn publish_in_order(
        &self,
        messages: &[OutgoingMessage],
        published: &mut usize,
    ) -> Result<(), BusError> {
        for message in messages {
            for service in self.config.sqs.services_for(&message.topic) {
                let url = self.route_url(service).await?;
                self.send(&url, message).await?;
            }
            *published += 1;
        }
        Ok(())
    }

    /// Receives everything currently in the DLQ of `service` (hidden for a while).
    async fn drain_dead_letters(&self, service: &str) -> Result<(String, Vec<Message>), BusError> {
        let Some(url) = self
            .existing_url(&self.config.dead_letter_queue_name(service))
            .await?
        else {
            return Ok((String::new(), Vec::new()));
        };
        let mut messages = Vec::new();
        let mut empty_polls = 0;
        while empty_polls < 2 {
            let output = self
                .client
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .visibility_timeout(LISTING_VISIBILITY_SECS)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await
                .map_err(sdk_error)?;
            let batch = output.messages.unwrap_or_default();
            if batch.is_empty() {
                empty_polls += 1;
            }
            messages.extend(batch);
        }
        Ok((url, messages))
    }

    async fn release(&self, url: &str, messages: &[Message]) {
        for message in messages {
            if let Some(handle) = message.receipt_handle() {
                let _ = self
                    .client
                    .change_message_visibility()
                    .queue_url(url)
                    .receipt_handle(handle)
                    .visibility_timeout(0)
                    .send()
                    .await;
            }
        }
    }

    async fn list(&self, service: &str) -> Result<Vec<DeadLetter>, BusError> {
        let (url, messages) = self.drain_dead_letters(service).await?;
        let found = messages.iter().map(dead_letter_of).collect();
        self.release(&url, &messages).await;
        Ok(found)
    }

    async fn replay(&self, service: &str, selection: Replay) -> Result<usize, BusError> {
        let (dlq_url, messages) = self.drain_dead_letters(service).await?;
        if messages.is_empty() {
            return Ok(0);
        }
        let url = self.route_url(service).await?;
        let mut left = Vec::new();
        let mut replayed = 0;
        let mut result = Ok(());
        for message in messages {
            let dead_letter = dead_letter_of(&message);
            if !dead_letter.is_selected(selection) || result.is_err() {
                left.push(message);
                continue;
            }
            let outgoing = OutgoingMessage {
                event_id: dead_letter.event_id.unwrap_or_default(),
                topic: dead_letter.topic.clone().unwrap_or_default(),
                body: message.body().unwrap_or_default().as_bytes().to_vec(),
            };
            let moved = async {
                self.send(&url, &outgoing).await?;
                self.client
                    .delete_message()
                    .queue_url(&dlq_url)
                    .receipt_handle(message.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .map_err(sdk_error)?;
                Ok::<_, BusError>(())
            }
            .await;
            match moved {
                Ok(()) => replayed += 1,
                Err(error) => {
                    result = Err(error);
                    left.push(message);
                }
            }
        }
        self.release(&dlq_url, &left).await;
        result.map(|()| replayed)
    }
}

fn dead_letter_of(message: &Message) -> DeadLetter {
    let reason = attribute(message, REASON_ATTRIBUTE)
        .unwrap_or("maxReceiveCount exceeded (SQS redrive)")
        .to_owned();
    let count = attribute(message, ATTEMPTS_ATTRIBUTE)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| receive_count(message));
    let mut dead_letter =
        DeadLetter::from_body(message.body().unwrap_or_default().as_bytes(), reason, count);
    dead_letter.dead_lettered_at = attribute(message, DEAD_AT_ATTRIBUTE)
        .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
        .map(|at| at.with_timezone(&Utc));
    dead_letter
}

impl Bus for SqsBus {
    fn config(&self) -> &BusConfig {
        &self.config
    }

    fn publish_batch<'a>(
        &'a self,
        messages: &'a [OutgoingMessage],
    ) -> BoxFuture<'a, PublishOutcome> {
        Box::pin(async move {
            let mut published = 0;
            let deadline = Instant::now() + self.config.publish_timeout;
            let result = timeout_at(deadline, self.publish_in_order(messages, &mut published))
                .await
                .unwrap_or(Err(BusError::Timeout(self.config.publish_timeout)));
            PublishOutcome {
                published,
                error: result.err(),
            }
        })
    }

    fn subscribe<'a>(
        &'a self,
        subscription: &'a Subscription,
    ) -> BoxFuture<'a, Result<Box<dyn MessageStream>, BusError>> {
        Box::pin(async move {
            let (queue_url, dlq_url) = self.ensure_queues(&subscription.service).await?;
            for topic in &subscription.topics {
                if !self
                    .config
                    .sqs
                    .services_for(topic)
                    .contains(&subscription.service)
                {
                    tracing::warn!(
                        topic,
                        service = subscription.service,
                        "the SQS routing table sends this topic to other queues only"
                    );
                }
            }
            Ok(Box::new(SqsStream {
                client: self.client.clone(),
                queue_url,
                dlq_url,
                buffer: VecDeque::new(),
                wait_time: whole_seconds(self.config.sqs.wait_time, 20),
                batch: i32::from(subscription.prefetch.clamp(1, 10)),
                op_timeout: self.config.publish_timeout,
            }) as Box<dyn MessageStream>)
        })
    }

    fn check_ready(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            match timeout(
                self.config.connect_timeout,
                self.client.list_queues().max_results(1).send(),
            )
            .await
            {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(error)) => Err(format!("SQS unreachable: {}", DisplayErrorContext(&error))),
                Err(_) => Err("SQS did not answer in time".to_owned()),
            }
        })
    }

    fn queue_depth<'a>(&'a self, service: &'a str) -> BoxFuture<'a, Result<Option<u64>, BusError>> {
        Box::pin(async move {
            let Some(url) = self.existing_url(&self.config.queue_name(service)).await? else {
                return Ok(None);
            };
            let output = self
                .client
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                .send()
                .await
                .map_err(sdk_error)?;
            Ok(output
                .attributes()
                .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
                .and_then(|n| n.parse().ok()))
        })
    }

    fn dead_letters<'a>(
        &'a self,
        service: &'a str,
    ) -> BoxFuture<'a, Result<Vec<DeadLetter>, BusError>> {
        Box::pin(self.list(service))
    }

    fn replay_dead_letters<'a>(
        &'a self,
        service: &'a str,
        selection: Replay,
    ) -> BoxFuture<'a, Result<usize, BusError>> {
        Box::pin(self.replay(service, selection))
    }
}

/// Long-polls one service's queue.
struct SqsStream {
    client: Client,
    queue_url: String,
    dlq_url: String,
    buffer: VecDeque<Message>,
    wait_time: i32,
    batch: i32,
    op_timeout: Duration,
}

impl MessageStream for SqsStream {
    fn next(&mut self) -> BoxFuture<'_, Result<Incoming, BusError>> {
        Box::pin(async move {
            loop {
                if let Some(message) = self.buffer.pop_front() {
                    let attempt = receive_count(&message);
                    let body = message.body().unwrap_or_default().as_bytes().to_vec();
                    return Ok(Incoming {
                        body,
                        attempt,
                        acknowledger: Box::new(SqsAcknowledger {
                            client: self.client.clone(),
                            queue_url: self.queue_url.clone(),
                            dlq_url: self.dlq_url.clone(),
                            attempt,
                            message,
                            op_timeout: self.op_timeout,
                        }),
                    });
                }
                let output = self
                    .client
                    .receive_message()
                    .queue_url(&self.queue_url)
                    .max_number_of_messages(self.batch)
                    .wait_time_seconds(self.wait_time)
                    .message_system_attribute_names(
                        MessageSystemAttributeName::ApproximateReceiveCount,
                    )
                    .message_attribute_names("All")
                    .send()
                    .await
                    .map_err(sdk_error)?;
                self.buffer.extend(output.messages.unwrap_or_default());
            }
        })
    }

    fn close(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            // Make prefetched messages visible again at once instead of after the timeout.
            for message in &self.buffer {
                if let Some(handle) = message.receipt_handle() {
                    let _ = timeout(
                        self.op_timeout,
                        self.client
                            .change_message_visibility()
                            .queue_url(&self.queue_url)
                            .receipt_handle(handle)
                            .visibility_timeout(0)
                            .send(),
                    )
                    .await;
                }
            }
        })
    }
}

/// Settles one SQS message.
struct SqsAcknowledger {
    client: Client,
    queue_url: String,
    dlq_url: String,
    attempt: u32,
    message: Message,
    op_timeout: Duration,
}

impl SqsAcknowledger {
    async fn delete(&self) -> Result<(), BusError> {
        self.client
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(self.message.receipt_handle().unwrap_or_default())
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    async fn move_to_dlq(&self, reason: &str) -> Result<(), BusError> {
        let mut send = self
            .client
            .send_message()
            .queue_url(&self.dlq_url)
            .message_body(self.message.body().unwrap_or_default())
            .message_attributes(REASON_ATTRIBUTE, string_attribute(reason)?)
            .message_attributes(
                ATTEMPTS_ATTRIBUTE,
                string_attribute(&self.attempt.to_string())?,
            )
            .message_attributes(
                DEAD_AT_ATTRIBUTE,
                string_attribute(&Utc::now().to_rfc3339())?,
            );
        for name in [TOPIC_ATTRIBUTE, EVENT_ID_ATTRIBUTE] {
            if let Some(value) = attribute(&self.message, name) {
                send = send.message_attributes(name, string_attribute(value)?);
            }
        }
        send.send().await.map_err(sdk_error)?;
        self.delete().await
    }

    async fn bounded(
        &self,
        operation: impl Future<Output = Result<(), BusError>>,
    ) -> Result<(), BusError> {
        timeout(self.op_timeout, operation)
            .await
            .unwrap_or(Err(BusError::Timeout(self.op_timeout)))
    }
}

impl Acknowledger for SqsAcknowledger {
    fn ack(self: Box<Self>) -> BoxFuture<'static, Result<(), BusError>> {
        Box::pin(async move { self.bounded(self.delete()).await })
    }

    fn retry(self: Box<Self>, delay: Duration) -> BoxFuture<'static, Result<(), BusError>> {
        Box::pin(async move {
            let change = async {
                self.client
                    .change_message_visibility()
                    .queue_url(&self.queue_url)
                    .receipt_handle(self.message.receipt_handle().unwrap_or_default())
                    .visibility_timeout(whole_seconds(delay, 43_200))
                    .send()
                    .await
                    .map_err(sdk_error)?;
                Ok(())
            };
            self.bounded(change).await
        })
    }

    fn dead_letter(self: Box<Self>, reason: String) -> BoxFuture<'static, Result<(), BusError>> {
        Box::pin(async move { self.bounded(self.move_to_dlq(&reason)).await })
    }
}
