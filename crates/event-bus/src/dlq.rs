//! Dead-letter queue operations, for `cargo xtask events dlq list|replay <service>`.
//!
//! A message lands in `<service>.dlq` (`<service>-dlq` on SQS) when its handler failed
//! `delivery_limit` times, refused it for good, or it could not be decoded (malformed envelope,
//! unknown version). Fix the cause, then replay: the events go back to that service's queue
//! only (not to every subscriber of the topic), and since consumers are idempotent, replaying an
//! event that was in fact applied changes nothing.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Bus, BusError};

/// A message in a dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The envelope's event id, when the body is an envelope.
    pub event_id: Option<Uuid>,
    /// The envelope's topic, when the body is an envelope.
    pub topic: Option<String>,
    /// Why it was dead-lettered: the consumer's reason, or the broker's (`delivery_limit`,
    /// `rejected`, ...).
    pub reason: String,
    /// How many times it was delivered (or dead-lettered) before landing here, as far as known.
    pub death_count: u32,
    /// When it was dead-lettered, as far as known.
    pub dead_lettered_at: Option<DateTime<Utc>>,
    /// The raw body (usually the JSON envelope), lossily decoded as UTF-8.
    pub body: String,
}

impl DeadLetter {
    /// Builds a dead letter from a raw body, reading the event id and topic from the envelope.
    pub(crate) fn from_body(body: &[u8], reason: String, death_count: u32) -> Self {
        #[derive(serde::Deserialize)]
        struct Head {
            id: Option<Uuid>,
            topic: Option<String>,
        }
        let head = serde_json::from_slice::<Head>(body).ok();
        Self {
            event_id: head.as_ref().and_then(|h| h.id),
            topic: head.and_then(|h| h.topic),
            reason,
            death_count,
            dead_lettered_at: None,
            body: String::from_utf8_lossy(body).into_owned(),
        }
    }

    /// Whether `selection` picks this message.
    #[must_use]
    pub fn is_selected(&self, selection: Replay) -> bool {
        match selection {
            Replay::All => true,
            Replay::Event(id) => self.event_id == Some(id),
        }
    }
}

/// Which dead letters to replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// Every message in the dead-letter queue.
    All,
    /// Only the message(s) with this event id.
    Event(Uuid),
}

/// Lists the messages in `service`'s dead-letter queue without removing them.
///
/// # Errors
/// When the broker cannot be reached.
pub async fn list(bus: &dyn Bus, service: &str) -> Result<Vec<DeadLetter>, BusError> {
    bus.dead_letters(service).await
}

/// Sends the selected dead letters of `service` back to its queue and removes them from the
/// dead-letter queue; returns how many were replayed.
///
/// # Errors
/// When the broker cannot be reached; messages replayed before the failure stay replayed.
pub async fn replay(bus: &dyn Bus, service: &str, selection: Replay) -> Result<usize, BusError> {
    bus.replay_dead_letters(service, selection).await
}
