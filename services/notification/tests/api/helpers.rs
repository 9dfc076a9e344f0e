//! The test harness: a notification service with fast sender settings, events delivered through
//! the test's own exchange, and readers of the delivery log and the dev outbox.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use notification_service::NotificationService;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use service_kit::Role;
use service_kit::shared_types::{DomainEvent, EventPayload};
use sqlx::PgPool;
use test_support::{TestApp, TestUser};
use tokio::time::Instant;
use uuid::Uuid;

/// A running service and its database.
pub struct Api {
    pub app: TestApp,
    pub pool: PgPool,
}

/// One delivery-log row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Row {
    pub id: Uuid,
    pub channel: String,
    pub template: String,
    pub recipient: String,
    pub status: String,
    pub subject: Option<String>,
    pub body_text: Option<String>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub provider: Option<String>,
    pub provider_message_id: Option<String>,
}

pub fn brochure_dir() -> String {
    format!("{}/assets", env!("CARGO_MANIFEST_DIR"))
}

impl Api {
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    pub async fn spawn_with(overrides: &[(&str, &str)]) -> Self {
        let dir = brochure_dir();
        let mut env: Vec<(&str, &str)> = vec![
            ("NOTIFICATION_POLL_MS", "50"),
            ("NOTIFICATION_RETRY_BASE_MS", "50"),
            ("NOTIFICATION_RETRY_MAX_MS", "200"),
            ("NOTIFICATION_DEV_OUTBOX", "true"),
            ("BROCHURE_DIR", dir.as_str()),
            ("KITCHEN_TEAM_EMAIL", "kitchens@lomash.test"),
            ("BEDROOM_TEAM_EMAIL", "bedrooms@lomash.test"),
            ("PUBLIC_API_URL", "https://api.lomash.test"),
            ("WEB_BASE_URL", "https://lomash.test"),
        ];
        env.extend_from_slice(overrides);
        let app = TestApp::spawn_with::<NotificationService>(&env).await;
        let pool = app.pool().await;
        Self { app, pool }
    }

    pub fn admin() -> TestUser {
        TestUser::new(Role::Admin)
    }

    pub fn customer() -> TestUser {
        TestUser::new(Role::Customer)
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        user: Option<&TestUser>,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut request = match user {
            Some(user) => self.app.request_as(method, path, user),
            None => self.app.request(method, path),
        };
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("request reaches the service");
        let status = response.status();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Publishes `event` to the test's exchange until the consumer has recorded it.
    pub async fn deliver<P: EventPayload>(&self, event: &DomainEvent<P>) {
        self.app.deliver(event).await;
    }

    /// The delivery-log rows caused by event `id`, by template then recipient.
    pub async fn rows_of(&self, event_id: Uuid) -> Vec<Row> {
        sqlx::query_as(
            "SELECT id, channel, template, recipient, status, subject, body_text, attempts,
                    last_error, provider, provider_message_id
             FROM notifications WHERE source_event_id = $1 ORDER BY template, recipient",
        )
        .bind(event_id)
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }

    /// Waits until no row of event `id` is QUEUED, then returns them.
    pub async fn settled(&self, event_id: Uuid) -> Vec<Row> {
        self.settled_where(event_id, |_| true).await
    }

    /// Waits until every row of event `id` is settled and `done` holds for them.
    pub async fn settled_where(&self, event_id: Uuid, done: impl Fn(&[Row]) -> bool) -> Vec<Row> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let rows = self.rows_of(event_id).await;
            if !rows.is_empty() && rows.iter().all(|r| r.status != "QUEUED") && done(&rows) {
                return rows;
            }
            assert!(
                Instant::now() < deadline,
                "messages never settled: {rows:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What the log provider stored for `recipient`, newest first.
    pub async fn outbox(&self, recipient: &str) -> Vec<Value> {
        let admin = Self::admin();
        let (status, body) = self
            .send(
                Method::GET,
                &format!(
                    "/v1/notifications/dev/outbox?recipient={}",
                    url::form_urlencoded::byte_serialize(recipient.as_bytes()).collect::<String>()
                ),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body.as_array().unwrap().clone()
    }
}

/// The bytes of attachment `filename` of a dev-outbox message.
pub fn attachment(message: &Value, filename_suffix: &str) -> Vec<u8> {
    let found = message["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["filename"].as_str().unwrap().ends_with(filename_suffix))
        .unwrap_or_else(|| panic!("no {filename_suffix} attachment in {message}"));
    STANDARD.decode(found["data"].as_str().unwrap()).unwrap()
}
