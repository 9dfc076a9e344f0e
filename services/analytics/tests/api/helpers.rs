//! Drives the analytics service as the gateway would.

use std::time::{Duration, Instant};

use analytics_service::AnalyticsService;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;
use test_support::TestApp;
pub use test_support::problem::{fields, status_and_body as body_of};

/// Fast flushing for tests.
pub const FAST: &[(&str, &str)] = &[
    ("ANALYTICS_FLUSH_INTERVAL_MS", "50"),
    ("ANALYTICS_FLUSH_POLL_MS", "20"),
    // No content service unless a test brings one (port 9 refuses), so a stale sitemap stays
    // stale whatever runs on this machine.
    ("CONTENT_SERVICE_URL", "http://127.0.0.1:9"),
];

pub struct Api {
    pub app: TestApp,
    pub pool: PgPool,
}

impl Api {
    pub async fn spawn_with(overrides: &[(&str, &str)]) -> Self {
        let mut all: Vec<(&str, &str)> = FAST.to_vec();
        all.extend_from_slice(overrides);
        let app = TestApp::spawn_with::<AnalyticsService>(&all).await;
        let pool = app.pool().await;
        Self { app, pool }
    }

    pub async fn track(&self, body: &Value) -> (StatusCode, Value) {
        let response = self
            .app
            .request(reqwest::Method::POST, "/v1/analytics/track")
            .header("user-agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")
            .header("x-forwarded-for", "203.0.113.7")
            .json(body)
            .send()
            .await
            .unwrap();
        body_of(response).await
    }

    pub async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.pool).await.unwrap()
    }

    /// Waits until `sql` counts `expected` (flushing is asynchronous).
    pub async fn wait_for(&self, sql: &'static str, expected: i64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let n = self.count(sql).await;
            if n == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "`{sql}` stayed at {n}, expected {expected}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

pub fn event(name: &str) -> Value {
    serde_json::json!({
        "event": name,
        "properties": {"productId": "p-1"},
        "sessionId": "s-1",
        "anonymousId": "a-1",
        "pageUrl": "https://www.lomashwood.co.uk/kitchens/oak?x=1",
        "referrer": "https://www.google.com/search?q=kitchens",
    })
}
