//! Delivery providers: one small trait per channel, `Arc<dyn ...>` at this edge (the one we fake
//! in tests), chosen per channel by configuration.
//!
//! | channel | real provider | module |
//! |---|---|---|
//! | email | Amazon SES v2, raw MIME (attachments) | [`ses`] |
//! | SMS | Twilio REST (`Messages.json`, form POST, basic auth) | [`twilio`] |
//! | push | FCM HTTP v1 (service-account JWT → OAuth2 token → `messages:send`) | [`fcm`] |
//! | any | `log`: stored in `dev_outbox`, readable at `/v1/notifications/dev/outbox` | [`log`] |
//!
//! A provider answers with its message id, or a [`ProviderError`] saying whether trying again
//! could help: the sender retries [`ProviderError::Transient`] with backoff and gives up on
//! [`ProviderError::Permanent`] at once.

pub mod fcm;
pub mod log;
pub mod ses;
pub mod twilio;

use std::sync::Arc;

use futures::future::BoxFuture;
use reqwest::StatusCode;
use uuid::Uuid;

use crate::config::{NotificationSettings, ProviderKind};

/// Why a provider did not take a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// Worth another attempt later: timeouts, connection failures, 429 and 5xx answers.
    #[error("transient: {0}")]
    Transient(String),
    /// Never going to work: a refused recipient, a 4xx, a malformed message.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl ProviderError {
    /// Classifies an HTTP answer that was not a success.
    pub fn from_status(status: StatusCode, body: &str) -> Self {
        // Provider error bodies name the problem (e.g. Twilio's code 21211 "invalid To"); they
        // hold no secrets of ours, but they may echo the recipient, so keep them short.
        let detail = format!("HTTP {status}: {}", truncate(body, 300));
        if status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT
            || status.is_server_error()
        {
            Self::Transient(detail)
        } else {
            Self::Permanent(detail)
        }
    }

    /// Classifies a transport failure (always transient: the message may be fine).
    pub fn from_transport(error: &reqwest::Error) -> Self {
        Self::Transient(format!("transport: {error}"))
    }
}

/// An `application/x-www-form-urlencoded` body.
pub(crate) fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((index, _)) => &text[..index],
        None => text,
    }
}

/// A file attached to an email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// File name shown to the recipient.
    pub filename: String,
    /// Its media type, e.g. `application/pdf`.
    pub content_type: String,
    /// Its bytes.
    pub data: Vec<u8>,
}

/// An email ready to send.
#[derive(Debug, Clone)]
pub struct Email {
    /// The delivery-log entry (the log provider's key; never shown to the recipient).
    pub id: Uuid,
    /// The `From`, e.g. `Lomash Wood <hello@lomashwood.co.uk>`.
    pub from: String,
    /// The recipient's address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: Option<String>,
    /// Attachments.
    pub attachments: Vec<Attachment>,
    /// One-click unsubscribe URL (RFC 8058 `List-Unsubscribe`), for marketing mail.
    pub unsubscribe_url: Option<String>,
}

/// An SMS ready to send.
#[derive(Debug, Clone)]
pub struct Sms {
    /// The delivery-log entry.
    pub id: Uuid,
    /// The recipient's E.164 number.
    pub to: String,
    /// The text.
    pub body: String,
}

/// A push notification ready to send.
#[derive(Debug, Clone)]
pub struct Push {
    /// The delivery-log entry.
    pub id: Uuid,
    /// The device's FCM registration token.
    pub token: String,
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
}

/// Sends email.
pub trait EmailProvider: Send + Sync {
    /// Short name recorded in the delivery log, e.g. `ses`.
    fn name(&self) -> &'static str;
    /// Sends `email`; answers the provider's message id.
    fn send<'a>(&'a self, email: &'a Email) -> BoxFuture<'a, Result<String, ProviderError>>;
}

/// Sends SMS.
pub trait SmsProvider: Send + Sync {
    /// Short name recorded in the delivery log, e.g. `twilio`.
    fn name(&self) -> &'static str;
    /// Sends `sms`; answers the provider's message id.
    fn send<'a>(&'a self, sms: &'a Sms) -> BoxFuture<'a, Result<String, ProviderError>>;
}

/// Sends push notifications.
pub trait PushProvider: Send + Sync {
    /// Short name recorded in the delivery log, e.g. `fcm`.
    fn name(&self) -> &'static str;
    /// Sends `push`; answers the provider's message id.
    fn send<'a>(&'a self, push: &'a Push) -> BoxFuture<'a, Result<String, ProviderError>>;
}

/// The provider of each channel.
#[derive(Clone)]
pub struct Providers {
    /// Email.
    pub email: Arc<dyn EmailProvider>,
    /// SMS.
    pub sms: Arc<dyn SmsProvider>,
    /// Push.
    pub push: Arc<dyn PushProvider>,
}

impl Providers {
    /// The providers `settings` choose.
    pub async fn from_settings(
        settings: &NotificationSettings,
        db: &sqlx::PgPool,
        aws: &event_bus::aws::AwsSettings,
    ) -> anyhow::Result<Self> {
        let log = Arc::new(log::LogProvider::new(db.clone()));
        let http = reqwest::Client::builder()
            .timeout(settings.sender.provider_timeout)
            .build()?;
        let email: Arc<dyn EmailProvider> = match settings.email_provider {
            ProviderKind::Ses => Arc::new(ses::SesProvider::new(aws).await),
            _ => log.clone(),
        };
        let sms: Arc<dyn SmsProvider> = match settings.sms_provider {
            ProviderKind::Twilio => Arc::new(twilio::TwilioProvider::new(
                http.clone(),
                settings.twilio.clone(),
            )?),
            _ => log.clone(),
        };
        let push: Arc<dyn PushProvider> = match settings.push_provider {
            ProviderKind::Fcm => Arc::new(fcm::FcmProvider::new(http, settings.fcm.clone())?),
            _ => log,
        };
        Ok(Self { email, sms, push })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_and_server_errors_are_transient_other_refusals_permanent() {
        for status in [429, 500, 502, 503, 504, 408] {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            assert!(matches!(
                ProviderError::from_status(status, ""),
                ProviderError::Transient(_)
            ));
        }
        for status in [400, 401, 403, 404, 422] {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            assert!(matches!(
                ProviderError::from_status(status, ""),
                ProviderError::Permanent(_)
            ));
        }
    }
}
