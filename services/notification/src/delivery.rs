//! The delivery log and the sender.
//!
//! **Queueing** ([`Composer::queue`]) happens inside the event consumer's transaction: it decides
//! whether a marketing message may go (preferences, one-click suppressions), renders the template
//! and inserts one `QUEUED` row (or a `SUPPRESSED` one). A partial unique index allows one row per
//! (event, template, channel, recipient), so even a handler that ran twice could not queue twice.
//!
//! **Sending** ([`send_due`], run by [`run_sender`] on every replica, woken at commit by a
//! Postgres `NOTIFY` from the queueing transaction, else every `NOTIFICATION_POLL_MS` for retries
//! falling due): a short transaction claims
//! due rows `FOR UPDATE SKIP LOCKED` and leases them (pushes `next_attempt_at` past the provider
//! timeout), so replicas take different rows and no transaction stays open while a provider
//! answers. Each message then goes to its channel's provider and is settled in its own
//! transaction with its event: `SENT` + `notification.sent`; a transient failure schedules a
//! retry with exponential backoff (`QUEUED`, `notification.failed` with `willRetry`) until
//! `NOTIFICATION_MAX_ATTEMPTS`; a permanent failure is `FAILED` at once. A crash between the
//! provider's answer and the settlement re-sends once the lease ends (at least once towards
//! providers; everything of ours exactly once).
//!
//! Sensitive messages (one-time codes) lose their bodies once settled; the code is never logged,
//! and recipients appear in logs masked ([`mask`]).
//!
//! Metrics: `notifications_delivered_total{channel, outcome=sent|retried|failed}`.
//!
//! Admin routes: `GET /v1/notifications` (filters `recipient`, `status`, `template`; offset
//! pages), `POST /v1/notifications/{id}/resend`; and, only with `NOTIFICATION_DEV_OUTBOX=true`,
//! `GET /v1/notifications/dev/outbox` (what the `log` provider stored).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use service_kit::audit::Entry;
use service_kit::shared_types::notification::{
    NotificationChannel, NotificationFailed, NotificationSent,
};
use service_kit::{AdminCaller, OffsetPage, PageParams, ValidatedQuery};
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;
use validator::Validate;

use crate::config::NotificationSettings;
use crate::error::{NotificationError, NotificationResult};
use crate::preferences;
use crate::providers::{Attachment, Email, ProviderError, Providers, Push, Sms};
use crate::storage::ObjectStore;
use crate::templates::Templates;
use crate::{AppState, event};

/// A delivery channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Channel {
    /// Email.
    Email,
    /// SMS.
    Sms,
    /// Mobile push.
    Push,
}

impl Channel {
    /// Its database and JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "EMAIL",
            Self::Sms => "SMS",
            Self::Push => "PUSH",
        }
    }

    /// From its database spelling.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "EMAIL" => Some(Self::Email),
            "SMS" => Some(Self::Sms),
            "PUSH" => Some(Self::Push),
            _ => None,
        }
    }

    fn event_channel(self) -> NotificationChannel {
        match self {
            Self::Email => NotificationChannel::Email,
            Self::Sms => NotificationChannel::Sms,
            Self::Push => NotificationChannel::Push,
        }
    }
}

/// Whether a message may be turned off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
// Named apart from product's `Category`: the gateway's merged document has one namespace.
#[schema(as = NotificationCategory)]
pub enum Category {
    /// Codes, receipts, booking changes: always sent.
    Transactional,
    /// Promotional: only with consent, never after an opt-out.
    Marketing,
}

impl Category {
    /// Its database and JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transactional => "TRANSACTIONAL",
            Self::Marketing => "MARKETING",
        }
    }
}

/// An attachment as the delivery log keeps it: small ones inline, large ones by storage key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredAttachment {
    /// File name.
    pub filename: String,
    /// Media type.
    pub content_type: String,
    /// The bytes, base64 (e.g. an `.ics`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// Where the bytes are (e.g. a brochure PDF), fetched when sending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_key: Option<String>,
}

impl StoredAttachment {
    /// An attachment kept in the row.
    pub fn inline(filename: &str, content_type: &str, data: &[u8]) -> Self {
        Self {
            filename: filename.to_owned(),
            content_type: content_type.to_owned(),
            data: Some(STANDARD.encode(data)),
            storage_key: None,
        }
    }

    /// An attachment read from object storage when sending.
    pub fn stored(filename: &str, content_type: &str, key: &str) -> Self {
        Self {
            filename: filename.to_owned(),
            content_type: content_type.to_owned(),
            data: None,
            storage_key: Some(key.to_owned()),
        }
    }
}

/// One message to queue.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Template name.
    pub template: &'static str,
    /// Email address, E.164 number or device token.
    pub recipient: String,
    /// The recipient's account, if any.
    pub user_id: Option<Uuid>,
    /// The event that caused it.
    pub source_event_id: Option<Uuid>,
    /// The template's variables (a JSON object).
    pub context: Value,
    /// Attachments.
    pub attachments: Vec<StoredAttachment>,
}

/// What a queued message became.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queued {
    /// Waiting for the sender.
    Queued(Uuid),
    /// Not sent: the recipient opted out of marketing.
    Suppressed(Uuid),
    /// Already queued for this event (a redelivery).
    Duplicate,
}

/// Renders and queues messages (the event handlers' tool).
#[derive(Clone)]
pub struct Composer {
    /// The templates.
    pub templates: Arc<Templates>,
    /// The service's settings.
    pub settings: Arc<NotificationSettings>,
}

impl Composer {
    /// Queues `message` through `conn` (the caller's transaction).
    pub async fn queue(
        &self,
        conn: &mut PgConnection,
        message: NewMessage,
    ) -> Result<Queued, NotificationError> {
        let spec = Templates::spec(message.template).ok_or_else(|| {
            NotificationError::Internal(anyhow::anyhow!("no template {}", message.template))
        })?;
        let id = Uuid::now_v7();
        let allowed = spec.category == Category::Transactional
            || preferences::marketing_allowed(
                conn,
                message.user_id,
                spec.channel,
                &message.recipient,
            )
            .await?;
        let mut context = message.context;
        if spec.category == Category::Marketing
            && spec.channel == Channel::Email
            && let Value::Object(map) = &mut context
        {
            map.insert(
                "unsubscribe_url".into(),
                Value::String(preferences::unsubscribe_url(
                    &self.settings,
                    spec.channel,
                    &message.recipient,
                )),
            );
        }
        let (status, rendered) = if allowed {
            ("QUEUED", Some(self.templates.render(spec.name, &context)?))
        } else {
            ("SUPPRESSED", None)
        };
        let attachments =
            serde_json::to_value(&message.attachments).map_err(anyhow::Error::from)?;
        let inserted = sqlx::query!(
            "INSERT INTO notifications
                 (id, channel, template, category, recipient, user_id, source_event_id, status,
                  subject, body_text, body_html, attachments, sensitive)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (source_event_id, template, channel, recipient)
                 WHERE source_event_id IS NOT NULL DO NOTHING",
            id,
            spec.channel.as_str(),
            spec.name,
            spec.category.as_str(),
            message.recipient,
            message.user_id,
            message.source_event_id,
            status,
            rendered.as_ref().and_then(|r| r.subject.clone()),
            rendered.as_ref().map(|r| r.text.clone()),
            rendered.as_ref().and_then(|r| r.html.clone()),
            attachments,
            spec.sensitive,
        )
        .execute(&mut *conn)
        .await?;
        if inserted.rows_affected() == 0 {
            return Ok(Queued::Duplicate);
        }
        if allowed {
            wake_senders(conn).await?;
        }
        tracing::info!(
            notification_id = %id,
            template = spec.name,
            channel = spec.channel.as_str(),
            recipient = %mask(&message.recipient),
            status,
            "notification queued"
        );
        Ok(if allowed {
            Queued::Queued(id)
        } else {
            Queued::Suppressed(id)
        })
    }
}

/// A recipient as logs may show it: `j***@example.com`, `+44******123`, `tok…`.
pub fn mask(recipient: &str) -> String {
    if let Some((local, domain)) = recipient.split_once('@') {
        let first: String = local.chars().take(1).collect();
        return format!("{first}***@{domain}");
    }
    let chars: Vec<char> = recipient.chars().collect();
    if recipient.starts_with('+') && chars.len() > 6 {
        let head: String = chars[..3].iter().collect();
        let tail: String = chars[chars.len() - 3..].iter().collect();
        return format!("{head}{}{tail}", "*".repeat(chars.len() - 6));
    }
    let head: String = chars.iter().take(4).collect();
    format!("{head}…")
}

/// What the sender needs.
#[derive(Clone)]
pub struct Sender {
    /// The database.
    pub db: PgPool,
    /// The providers.
    pub providers: Providers,
    /// Where stored attachments are.
    pub storage: Arc<dyn ObjectStore>,
    /// The service's settings.
    pub settings: Arc<NotificationSettings>,
}

struct Claimed {
    id: Uuid,
    channel: String,
    template: String,
    category: String,
    recipient: String,
    user_id: Option<Uuid>,
    source_event_id: Option<Uuid>,
    subject: Option<String>,
    body_text: Option<String>,
    body_html: Option<String>,
    attachments: Value,
    attempts: i32,
}

/// Sends every message due now; returns how many were settled.
pub async fn send_due(sender: &Sender) -> anyhow::Result<usize> {
    let lease = sender.settings.sender.provider_timeout * 3 + Duration::from_secs(30);
    let claimed = sqlx::query_as!(
        Claimed,
        "UPDATE notifications SET next_attempt_at = now() + make_interval(secs => $1)
         WHERE id IN (SELECT id FROM notifications
                      WHERE status = 'QUEUED' AND next_attempt_at <= now()
                      ORDER BY next_attempt_at
                      LIMIT $2
                      FOR UPDATE SKIP LOCKED)
         RETURNING id, channel, template, category, recipient, user_id, source_event_id,
                   subject, body_text, body_html, attachments, attempts",
        lease.as_secs_f64(),
        sender.settings.sender.batch_size
    )
    .fetch_all(&sender.db)
    .await?;
    let count = claimed.len();
    for message in claimed {
        let outcome = deliver(sender, &message).await;
        settle(sender, &message, outcome).await?;
    }
    Ok(count)
}

async fn deliver(
    sender: &Sender,
    message: &Claimed,
) -> (&'static str, Result<String, ProviderError>) {
    let Some(channel) = Channel::parse(&message.channel) else {
        return (
            "none",
            Err(ProviderError::Permanent("unknown channel".into())),
        );
    };
    let Some(text) = message.body_text.clone() else {
        return (
            "none",
            Err(ProviderError::Permanent(
                "the message has no content".into(),
            )),
        );
    };
    match channel {
        Channel::Email => {
            let provider = &sender.providers.email;
            let attachments = match load_attachments(sender, &message.attachments).await {
                Ok(attachments) => attachments,
                Err(error) => return (provider.name(), Err(error)),
            };
            let marketing = message.category == Category::Marketing.as_str();
            let email = Email {
                id: message.id,
                from: sender.settings.email_from.clone(),
                to: message.recipient.clone(),
                subject: message.subject.clone().unwrap_or_default(),
                text,
                html: message.body_html.clone(),
                attachments,
                unsubscribe_url: marketing.then(|| {
                    preferences::unsubscribe_url(&sender.settings, channel, &message.recipient)
                }),
            };
            (provider.name(), provider.send(&email).await)
        }
        Channel::Sms => {
            let provider = &sender.providers.sms;
            let sms = Sms {
                id: message.id,
                to: message.recipient.clone(),
                body: text,
            };
            (provider.name(), provider.send(&sms).await)
        }
        Channel::Push => {
            let provider = &sender.providers.push;
            let push = Push {
                id: message.id,
                token: message.recipient.clone(),
                title: message.subject.clone().unwrap_or_default(),
                body: text,
            };
            (provider.name(), provider.send(&push).await)
        }
    }
}

async fn load_attachments(
    sender: &Sender,
    stored: &Value,
) -> Result<Vec<Attachment>, ProviderError> {
    let stored: Vec<StoredAttachment> = serde_json::from_value(stored.clone())
        .map_err(|e| ProviderError::Permanent(format!("attachments: {e}")))?;
    let mut attachments = Vec::with_capacity(stored.len());
    for attachment in stored {
        let data = match (&attachment.data, &attachment.storage_key) {
            (Some(data), _) => STANDARD
                .decode(data)
                .map_err(|e| ProviderError::Permanent(format!("attachment: {e}")))?,
            (None, Some(key)) => sender.storage.get(key).await?,
            (None, None) => {
                return Err(ProviderError::Permanent(
                    "an attachment has no bytes".into(),
                ));
            }
        };
        attachments.push(Attachment {
            filename: attachment.filename,
            content_type: attachment.content_type,
            data,
        });
    }
    Ok(attachments)
}

/// The delay before attempt `attempts + 1`: base × 2^(attempts − 1), capped, ±20 % jitter.
pub fn backoff(base: Duration, max: Duration, attempts: i32) -> Duration {
    let exponent = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    let delay = base.saturating_mul(2u32.saturating_pow(exponent)).min(max);
    let jitter = rand::random_range(0.8..1.2);
    delay.mul_f64(jitter).min(max)
}

async fn settle(
    sender: &Sender,
    message: &Claimed,
    (provider, outcome): (&'static str, Result<String, ProviderError>),
) -> anyhow::Result<()> {
    let attempts = message.attempts + 1;
    let channel = Channel::parse(&message.channel)
        .unwrap_or(Channel::Email)
        .event_channel();
    let mut tx = sender.db.begin().await?;
    match outcome {
        Ok(provider_message_id) => {
            sqlx::query!(
                "UPDATE notifications SET status = 'SENT', attempts = $2, provider = $3,
                        provider_message_id = $4, sent_at = now(), last_error = NULL,
                        body_text = CASE WHEN sensitive THEN NULL ELSE body_text END,
                        body_html = CASE WHEN sensitive THEN NULL ELSE body_html END
                 WHERE id = $1",
                message.id,
                attempts,
                provider,
                provider_message_id
            )
            .execute(&mut *tx)
            .await?;
            let payload = NotificationSent {
                notification_id: message.id,
                channel,
                template: message.template.clone(),
                recipient_user_id: message.user_id,
                source_event_id: message.source_event_id,
                provider_message_id: Some(provider_message_id),
                sent_at: Utc::now(),
            };
            event_bus::outbox::publish(&mut tx, &event(payload)).await?;
            metrics::counter!(
                "notifications_delivered_total",
                "channel" => message.channel.clone(),
                "outcome" => "sent"
            )
            .increment(1);
            tracing::info!(
                notification_id = %message.id,
                template = %message.template,
                recipient = %mask(&message.recipient),
                provider,
                attempts,
                "notification sent"
            );
        }
        Err(error) => {
            let retry = matches!(error, ProviderError::Transient(_))
                && attempts < sender.settings.sender.max_attempts;
            // Providers echo the recipient in their errors ("The 'To' number +44… is not
            // valid"): the log entry, the event and the logs get it masked.
            let detail = error
                .to_string()
                .replace(&message.recipient, &mask(&message.recipient));
            if retry {
                let delay = backoff(
                    sender.settings.sender.retry_base,
                    sender.settings.sender.retry_max,
                    attempts,
                );
                sqlx::query!(
                    "UPDATE notifications SET attempts = $2, provider = $3, last_error = $4,
                            next_attempt_at = now() + make_interval(secs => $5)
                     WHERE id = $1",
                    message.id,
                    attempts,
                    provider,
                    detail,
                    delay.as_secs_f64()
                )
                .execute(&mut *tx)
                .await?;
            } else {
                sqlx::query!(
                    "UPDATE notifications SET status = 'FAILED', attempts = $2, provider = $3,
                            last_error = $4,
                            body_text = CASE WHEN sensitive THEN NULL ELSE body_text END,
                            body_html = CASE WHEN sensitive THEN NULL ELSE body_html END
                     WHERE id = $1",
                    message.id,
                    attempts,
                    provider,
                    detail
                )
                .execute(&mut *tx)
                .await?;
            }
            let payload = NotificationFailed {
                notification_id: message.id,
                channel,
                template: message.template.clone(),
                recipient_user_id: message.user_id,
                source_event_id: message.source_event_id,
                error: detail.clone(),
                attempts: u32::try_from(attempts).unwrap_or(0),
                will_retry: retry,
                failed_at: Utc::now(),
            };
            event_bus::outbox::publish(&mut tx, &event(payload)).await?;
            metrics::counter!(
                "notifications_delivered_total",
                "channel" => message.channel.clone(),
                "outcome" => if retry { "retried" } else { "failed" }
            )
            .increment(1);
            tracing::warn!(
                notification_id = %message.id,
                template = %message.template,
                recipient = %mask(&message.recipient),
                provider,
                attempts,
                will_retry = retry,
                error = %detail,
                "notification not delivered"
            );
        }
    }
    tx.commit().await?;
    Ok(())
}

/// The Postgres channel that tells senders new messages are queued.
const WAKE_CHANNEL: &str = "notifications_queued";

/// Tells every replica's sender that a message is due, once the caller's transaction commits
/// (Postgres delivers notifications at commit and drops them on rollback).
async fn wake_senders(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query!("SELECT pg_notify($1, '')", WAKE_CHANNEL)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Listens for [`wake_senders`]; `None` when listening is not possible (polling still works).
async fn listener(db: &PgPool) -> Option<PgListener> {
    let mut listener = match PgListener::connect_with(db).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::warn!(%error, "notification sender cannot listen; polling only");
            return None;
        }
    };
    match listener.listen(WAKE_CHANNEL).await {
        Ok(()) => Some(listener),
        Err(error) => {
            tracing::warn!(%error, "notification sender cannot listen; polling only");
            None
        }
    }
}

/// The sender loop: drains due messages, then waits for a wake-up from a queueing transaction
/// (so a code email leaves at once) or the poll interval (retries falling due, missed
/// wake-ups), whichever comes first.
pub async fn run_sender(sender: Sender, token: CancellationToken) {
    let every = sender.settings.sender.poll_interval;
    let mut wake = listener(&sender.db).await;
    loop {
        loop {
            match send_due(&sender).await {
                Ok(0) => break,
                Ok(_) => {
                    if token.is_cancelled() {
                        return;
                    }
                }
                Err(error) => {
                    tracing::error!(error = %format!("{error:#}"), "notification sender round failed");
                    break;
                }
            }
        }
        let woken = async {
            match wake.as_mut() {
                Some(listener) => listener.recv().await.map(|_| ()),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = token.cancelled() => return,
            () = tokio::time::sleep(every) => {}
            result = woken => {
                if let Err(error) = result {
                    // The listener reconnects on its next use; until then, poll.
                    tracing::warn!(%error, "notification sender lost its listener; polling");
                    wake = None;
                }
            }
        }
        if wake.is_none() {
            wake = listener(&sender.db).await;
        }
    }
}

/// A delivery-log entry, as admins see it.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// The entry.
    pub id: Uuid,
    /// EMAIL, SMS or PUSH.
    pub channel: String,
    /// Template name.
    pub template: String,
    /// TRANSACTIONAL or MARKETING.
    pub category: String,
    /// Address, number or device token.
    pub recipient: String,
    /// The recipient's account.
    pub user_id: Option<Uuid>,
    /// The event that caused it.
    pub source_event_id: Option<Uuid>,
    /// QUEUED, SENT, FAILED or SUPPRESSED.
    pub status: String,
    /// Subject or push title.
    pub subject: Option<String>,
    /// Provider that handled the last attempt.
    pub provider: Option<String>,
    /// The provider's message id.
    pub provider_message_id: Option<String>,
    /// Attempts made.
    pub attempts: i32,
    /// The last attempt's error.
    pub last_error: Option<String>,
    /// When the next attempt is due (QUEUED).
    pub next_attempt_at: DateTime<Utc>,
    /// When the provider accepted it.
    pub sent_at: Option<DateTime<Utc>>,
    /// The entry this one re-sends.
    pub resent_from: Option<Uuid>,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, channel, template, category, recipient, user_id, source_event_id, \
    status, subject, provider, provider_message_id, attempts, last_error, next_attempt_at, \
    sent_at, resent_from, created_at";

/// Status filter values.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Waiting to be (re)tried.
    Queued,
    /// Accepted by the provider.
    Sent,
    /// Given up.
    Failed,
    /// Not sent: opted out.
    Suppressed,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::Sent => "SENT",
            Self::Failed => "FAILED",
            Self::Suppressed => "SUPPRESSED",
        }
    }
}

/// Filters of the delivery log.
#[derive(Debug, Clone, Default, Deserialize, Validate, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct LogParams {
    /// Exact recipient (case-insensitive).
    #[validate(length(min = 1, max = 320))]
    #[param(min_length = 1, max_length = 320)]
    pub recipient: Option<String>,
    /// Status.
    #[param(value_type = Option<String>, pattern = "^(QUEUED|SENT|FAILED|SUPPRESSED)$")]
    pub status: Option<Status>,
    /// Template name.
    #[validate(length(min = 1, max = 100))]
    #[param(min_length = 1, max_length = 100)]
    pub template: Option<String>,
    /// Page number from 1.
    #[validate(range(min = 1, max = 100000))]
    #[param(minimum = 1, maximum = 100000)]
    pub page: Option<u32>,
    /// Rows a page, 1–100 (default 20).
    #[validate(range(min = 1, max = 100))]
    #[param(minimum = 1, maximum = 100)]
    pub page_size: Option<u32>,
}

/// The delivery log, newest first.
#[utoipa::path(
    get,
    path = "/v1/notifications",
    tag = "notifications",
    params(LogParams),
    responses(
        (status = 200, description = "A page of the delivery log", body = OffsetPage<Notification>),
        (status = 403, description = "Not an admin"),
        (status = 422, description = "Unknown filter or bad value"),
    )
)]
async fn list(
    _admin: AdminCaller,
    State(state): State<AppState>,
    ValidatedQuery(params): ValidatedQuery<LogParams>,
) -> NotificationResult<Json<OffsetPage<Notification>>> {
    let paging = PageParams {
        page: params.page,
        page_size: params.page_size,
    };
    let filter = "($1::text IS NULL OR lower(recipient) = lower($1)) \
         AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR template = $3)";
    let status = params.status.map(Status::as_str);
    let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM notifications WHERE {filter}"
    )))
    .bind(&params.recipient)
    .bind(status)
    .bind(&params.template)
    .fetch_one(&state.db)
    .await?;
    let data: Vec<Notification> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM notifications WHERE {filter}
         ORDER BY created_at DESC, id DESC LIMIT $4 OFFSET $5"
    )))
    .bind(&params.recipient)
    .bind(status)
    .bind(&params.template)
    .bind(i64::from(paging.page_size()))
    .bind(paging.offset())
    .fetch_all(&state.db)
    .await?;
    Ok(Json(OffsetPage {
        data,
        page: paging.page(),
        page_size: paging.page_size(),
        total,
    }))
}

/// Queues a copy of a message for sending again (a new entry pointing at the old one).
#[utoipa::path(
    post,
    path = "/v1/notifications/{id}/resend",
    tag = "notifications",
    params(("id" = Uuid, Path, description = "Delivery-log entry")),
    responses(
        (status = 202, description = "The new entry, queued", body = Notification),
        (status = 403, description = "Not an admin"),
        (status = 404, description = "No such entry"),
        (status = 409, description = "It cannot be resent (a one-time code, or opted out)"),
    )
)]
async fn resend(
    AdminCaller(admin): AdminCaller,
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> NotificationResult<(StatusCode, Json<Notification>)> {
    let mut tx = state.db.begin().await?;
    let original: Option<(String, bool, Option<String>)> =
        sqlx::query_as("SELECT status, sensitive, body_text FROM notifications WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((status, sensitive, body)) = original else {
        return Err(NotificationError::NotFound("notification"));
    };
    if sensitive || body.is_none() {
        return Err(NotificationError::Conflict(
            "not-resendable",
            "This message held a one-time code; the user must request a new one.".into(),
        ));
    }
    if status == "SUPPRESSED" {
        return Err(NotificationError::Conflict(
            "recipient-opted-out",
            "The recipient opted out of this kind of message.".into(),
        ));
    }
    let copy: Notification = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO notifications
             (id, channel, template, category, recipient, user_id, status, subject, body_text,
              body_html, attachments, sensitive, resent_from)
         SELECT $2, channel, template, category, recipient, user_id, 'QUEUED', subject,
                body_text, body_html, attachments, sensitive, id
         FROM notifications WHERE id = $1
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(Uuid::now_v7())
    .fetch_one(&mut *tx)
    .await?;
    // Ids only: the message's recipient and text are personal.
    Entry::new(&admin, "notification", id, "resend")
        .after(&serde_json::json!({"resentAs": copy.id}))
        .record(&mut tx)
        .await?;
    wake_senders(&mut tx).await?;
    tx.commit().await?;
    Ok((StatusCode::ACCEPTED, Json(copy)))
}

/// A message the `log` provider stored.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct OutboxMessage {
    /// Its position.
    pub id: i64,
    /// The delivery-log entry.
    pub notification_id: Uuid,
    /// EMAIL, SMS or PUSH.
    pub channel: String,
    /// Address, number or device token.
    pub recipient: String,
    /// Subject or title.
    pub subject: Option<String>,
    /// Text body.
    pub body_text: String,
    /// HTML body.
    pub body_html: Option<String>,
    /// `[{filename, contentType, size, data}]`.
    #[schema(value_type = Vec<Object>)]
    pub attachments: Value,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
}

/// Filter of the dev outbox.
#[derive(Debug, Clone, Default, Deserialize, Validate, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct OutboxParams {
    /// Exact recipient (case-insensitive).
    #[validate(length(min = 1, max = 320))]
    #[param(min_length = 1, max_length = 320)]
    pub recipient: Option<String>,
}

/// The 50 latest messages the `log` provider stored (local development only: 404 unless
/// `NOTIFICATION_DEV_OUTBOX=true`).
#[utoipa::path(
    get,
    path = "/v1/notifications/dev/outbox",
    tag = "notifications",
    params(OutboxParams),
    responses(
        (status = 200, description = "Stored messages, newest first", body = [OutboxMessage]),
        (status = 404, description = "Not enabled"),
    )
)]
async fn dev_outbox(
    State(state): State<AppState>,
    ValidatedQuery(params): ValidatedQuery<OutboxParams>,
) -> NotificationResult<Json<Vec<OutboxMessage>>> {
    if !state.settings.dev_outbox_enabled {
        return Err(NotificationError::NotFound("route"));
    }
    let rows: Vec<OutboxMessage> = sqlx::query_as(
        "SELECT id, notification_id, channel, recipient, subject, body_text, body_html,
                attachments, created_at
         FROM dev_outbox WHERE ($1::text IS NULL OR lower(recipient) = lower($1))
         ORDER BY id DESC LIMIT 50",
    )
    .bind(&params.recipient)
    .fetch_all(&state.db)
    .await?;
    Ok(Json(rows))
}

/// The delivery-log routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(resend))
        .routes(routes!(dev_outbox))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_see_masked_recipients() {
        assert_eq!(mask("jane.doe@example.com"), "j***@example.com");
        assert_eq!(mask("+447700900123"), "+44*******123");
        assert_eq!(mask("fcm-token-abcdef"), "fcm-…");
    }

    #[test]
    fn backoff_doubles_per_attempt_within_jitter_and_is_capped() {
        let base = Duration::from_secs(10);
        let max = Duration::from_secs(60);
        let first = backoff(base, max, 1);
        assert!(first >= Duration::from_secs(8) && first <= Duration::from_secs(12));
        let third = backoff(base, max, 3);
        assert!(third >= Duration::from_secs(32) && third <= Duration::from_secs(48));
        assert!(backoff(base, max, 30) <= max);
    }
}
