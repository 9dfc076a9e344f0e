//! The event envelope.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

/// A payload type that can travel in a [`DomainEvent`]: it knows its topic and schema version.
///
/// Every payload struct in this crate implements it; consumers use it to check an incoming
/// envelope before decoding its payload.
pub trait EventPayload: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The routing topic, e.g. `payment.succeeded`.
    const TOPIC: &'static str;
    /// The payload's schema version, bumped on every incompatible change.
    const VERSION: u16;

    /// Whether a consumer built against this type can read an envelope of `version`.
    ///
    /// By default only [`Self::VERSION`] itself; a type that still reads older versions may say so.
    #[must_use]
    fn accepts_version(version: u16) -> bool {
        version == Self::VERSION
    }
}

/// The envelope every domain event travels in (JSON, camelCase).
///
/// ```json
/// { "id": "0190…", "topic": "payment.succeeded", "version": 1,
///   "timestamp": "2026-11-23T10:00:00Z", "producer": "order-payment",
///   "correlationId": "req-42", "traceparent": "00-…-…-01", "payload": { … } }
/// ```
///
/// Unknown fields are ignored on reading; `correlationId` and `traceparent` are left out when
/// absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DomainEvent<T> {
    /// The event id (UUIDv7): the idempotency key a consumer records in `processed_events`.
    pub id: Uuid,
    /// The topic, e.g. `booking.created`; also the broker routing key.
    pub topic: String,
    /// The payload's schema version.
    pub version: u16,
    /// When the producer created the event.
    pub timestamp: DateTime<Utc>,
    /// The name of the producing service, e.g. `appointment`.
    pub producer: String,
    /// The id of the request that caused the event (the gateway's `X-Request-Id`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// The W3C `traceparent` of the producing span, so consumers continue the same trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// The event's data.
    pub payload: T,
}

/// An envelope whose payload has not been decoded yet: what a consumer reads off the wire before
/// it knows whether it can handle the topic and version.
pub type RawEvent = DomainEvent<serde_json::Value>;

impl<T: EventPayload> DomainEvent<T> {
    /// A new event from `producer` (the service name) with a fresh UUIDv7 id, the current time,
    /// and the topic and version of `T`.
    ///
    /// The trace context is filled in when the event is written to the outbox (see the
    /// `event-bus` crate) unless [`DomainEvent::traceparent`] set one.
    #[must_use]
    pub fn new(producer: impl Into<String>, payload: T) -> Self {
        Self {
            id: Uuid::now_v7(),
            topic: T::TOPIC.to_owned(),
            version: T::VERSION,
            timestamp: Utc::now(),
            producer: producer.into(),
            correlation_id: None,
            traceparent: None,
            payload,
        }
    }
}

impl<T> DomainEvent<T> {
    /// Sets the id of the originating request.
    #[must_use]
    pub fn correlation_id(mut self, correlation_id: impl Into<String>) -> Self {
        self.correlation_id = Some(correlation_id.into());
        self
    }

    /// Sets the W3C `traceparent` explicitly (normally captured from the current span).
    #[must_use]
    pub fn traceparent(mut self, traceparent: impl Into<String>) -> Self {
        self.traceparent = Some(traceparent.into());
        self
    }

    /// The same envelope around another payload.
    pub fn map_payload<U>(self, f: impl FnOnce(T) -> U) -> DomainEvent<U> {
        DomainEvent {
            id: self.id,
            topic: self.topic,
            version: self.version,
            timestamp: self.timestamp,
            producer: self.producer,
            correlation_id: self.correlation_id,
            traceparent: self.traceparent,
            payload: f(self.payload),
        }
    }
}

/// Why a [`RawEvent`] could not be decoded into a typed event.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The envelope carries another topic than the payload type expects.
    #[error("expected topic {expected}, found {found}")]
    WrongTopic {
        /// The payload type's topic.
        expected: &'static str,
        /// The envelope's topic.
        found: String,
    },
    /// The consumer cannot read this version of the payload.
    #[error("unsupported version {found} of {topic} (this consumer reads version {supported})")]
    UnsupportedVersion {
        /// The topic.
        topic: String,
        /// The envelope's version.
        found: u16,
        /// The version the payload type reads.
        supported: u16,
    },
    /// The payload does not match the payload type.
    #[error("invalid {topic} payload: {source}")]
    Payload {
        /// The topic.
        topic: String,
        /// The deserialization error.
        source: serde_json::Error,
    },
}

impl RawEvent {
    /// Parses an envelope without decoding its payload.
    ///
    /// # Errors
    /// When `bytes` is not a JSON envelope.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// Decodes the payload as `P` after checking the topic and that `P` accepts the version.
    ///
    /// # Errors
    /// [`DecodeError`] on a topic mismatch, an unsupported version or a payload that does not fit.
    pub fn decode<P: EventPayload>(self) -> Result<DomainEvent<P>, DecodeError> {
        if self.topic != P::TOPIC {
            return Err(DecodeError::WrongTopic {
                expected: P::TOPIC,
                found: self.topic,
            });
        }
        if !P::accepts_version(self.version) {
            return Err(DecodeError::UnsupportedVersion {
                topic: self.topic,
                found: self.version,
                supported: P::VERSION,
            });
        }
        let DomainEvent {
            id,
            topic,
            version,
            timestamp,
            producer,
            correlation_id,
            traceparent,
            payload,
        } = self;
        let payload = serde_json::from_value(payload).map_err(|source| DecodeError::Payload {
            topic: topic.clone(),
            source,
        })?;
        Ok(DomainEvent {
            id,
            topic,
            version,
            timestamp,
            producer,
            correlation_id,
            traceparent,
            payload,
        })
    }
}

/// Implements [`EventPayload`] for a payload type.
macro_rules! event_payload {
    ($ty:ty, $topic:expr, $version:expr) => {
        impl $crate::EventPayload for $ty {
            const TOPIC: &'static str = $topic;
            const VERSION: u16 = $version;
        }
    };
}
pub(crate) use event_payload;
