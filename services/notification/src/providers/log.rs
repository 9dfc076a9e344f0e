//! The `log` provider: "sends" by storing the rendered message in `dev_outbox`, so local runs
//! (`cargo xtask up`) need no external account and every message stays readable at
//! `GET /v1/notifications/dev/outbox` (when `NOTIFICATION_DEV_OUTBOX=true`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures::future::BoxFuture;
use sqlx::PgPool;

use super::{Email, EmailProvider, ProviderError, Push, PushProvider, Sms, SmsProvider};

/// Stores messages in the database.
pub struct LogProvider {
    db: PgPool,
}

impl LogProvider {
    /// A provider writing to `db`.
    pub fn new(db: PgPool) -> Self {
        Self { db }
    }

    #[allow(clippy::too_many_arguments)] // one column each; a struct would only rename them
    async fn store(
        &self,
        id: uuid::Uuid,
        channel: &str,
        recipient: &str,
        subject: Option<&str>,
        text: &str,
        html: Option<&str>,
        attachments: serde_json::Value,
    ) -> Result<String, ProviderError> {
        let row: (i64,) = sqlx::query_as(
            "INSERT INTO dev_outbox
                 (notification_id, channel, recipient, subject, body_text, body_html, attachments)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             RETURNING id",
        )
        .bind(id)
        .bind(channel)
        .bind(recipient)
        .bind(subject)
        .bind(text)
        .bind(html)
        .bind(attachments)
        .fetch_one(&self.db)
        .await
        .map_err(|e| ProviderError::Transient(format!("dev outbox: {e}")))?;
        Ok(format!("log-{}", row.0))
    }
}

impl EmailProvider for LogProvider {
    fn name(&self) -> &'static str {
        "log"
    }

    fn send<'a>(&'a self, email: &'a Email) -> BoxFuture<'a, Result<String, ProviderError>> {
        Box::pin(async move {
            let attachments: Vec<serde_json::Value> = email
                .attachments
                .iter()
                .map(|a| {
                    serde_json::json!({
                        "filename": a.filename,
                        "contentType": a.content_type,
                        "size": a.data.len(),
                        "data": STANDARD.encode(&a.data),
                    })
                })
                .collect();
            self.store(
                email.id,
                "EMAIL",
                &email.to,
                Some(&email.subject),
                &email.text,
                email.html.as_deref(),
                serde_json::Value::Array(attachments),
            )
            .await
        })
    }
}

impl SmsProvider for LogProvider {
    fn name(&self) -> &'static str {
        "log"
    }

    fn send<'a>(&'a self, sms: &'a Sms) -> BoxFuture<'a, Result<String, ProviderError>> {
        Box::pin(async move {
            self.store(
                sms.id,
                "SMS",
                &sms.to,
                None,
                &sms.body,
                None,
                serde_json::json!([]),
            )
            .await
        })
    }
}

impl PushProvider for LogProvider {
    fn name(&self) -> &'static str {
        "log"
    }

    fn send<'a>(&'a self, push: &'a Push) -> BoxFuture<'a, Result<String, ProviderError>> {
        Box::pin(async move {
            self.store(
                push.id,
                "PUSH",
                &push.token,
                Some(&push.title),
                &push.body,
                None,
                serde_json::json!([]),
            )
            .await
        })
    }
}
