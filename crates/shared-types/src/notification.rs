//! Events published by the notification service.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{envelope::event_payload, topics};

/// How a notification is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NotificationChannel {
    /// Email.
    Email,
    /// SMS.
    Sms,
    /// Mobile push.
    Push,
    /// A live WebSocket message in the web app.
    InApp,
}

/// `notification.sent`: a notification was handed to its provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationSent {
    /// The delivery-log entry.
    pub notification_id: Uuid,
    /// How it was sent.
    pub channel: NotificationChannel,
    /// The template used, e.g. `booking_confirmation`.
    pub template: String,
    /// The recipient's account, if any.
    #[serde(default)]
    pub recipient_user_id: Option<Uuid>,
    /// The event that caused it, if any.
    #[serde(default)]
    pub source_event_id: Option<Uuid>,
    /// The provider's message id.
    #[serde(default)]
    pub provider_message_id: Option<String>,
    /// When the provider accepted it.
    pub sent_at: DateTime<Utc>,
}
event_payload!(NotificationSent, topics::NOTIFICATION_SENT, 1);

/// `notification.failed`: a notification could not be delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationFailed {
    /// The delivery-log entry.
    pub notification_id: Uuid,
    /// How it was to be sent.
    pub channel: NotificationChannel,
    /// The template used.
    pub template: String,
    /// The recipient's account, if any.
    #[serde(default)]
    pub recipient_user_id: Option<Uuid>,
    /// The event that caused it, if any.
    #[serde(default)]
    pub source_event_id: Option<Uuid>,
    /// The provider's error, without personal data.
    pub error: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// Whether another attempt is scheduled.
    pub will_retry: bool,
    /// When it failed.
    pub failed_at: DateTime<Utc>,
}
event_payload!(NotificationFailed, topics::NOTIFICATION_FAILED, 1);
