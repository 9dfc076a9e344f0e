//! Drives the content service as the gateway would (shared by the publishing tests).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use content_service::ContentService;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use service_kit::Role;
use sqlx::PgPool;
use test_support::{TestApp, TestUser};
// Each test binary uses its own share of these.
#[allow(unused_imports)]
pub use test_support::problem::{code as problem_code, fields, status_and_body as body};

/// The service under test, its database and an administrator.
pub struct Api {
    pub app: TestApp,
    pub pool: PgPool,
    pub admin: TestUser,
}

pub fn customer() -> TestUser {
    TestUser::new(Role::Customer)
}

impl Api {
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    pub async fn spawn_with(overrides: &[(&str, &str)]) -> Self {
        let mut env: Vec<(&str, &str)> = vec![("BLOG_SCHEDULE_INTERVAL_SECS", "0")];
        env.extend_from_slice(overrides);
        let app = TestApp::spawn_with::<ContentService>(&env).await;
        let pool = app.pool().await;
        Self {
            app,
            pool,
            admin: TestUser::new(Role::Admin),
        }
    }

    pub async fn send(
        &self,
        user: Option<&TestUser>,
        method: Method,
        path: &str,
        json: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut request = match user {
            Some(user) => self.app.request_as(method.clone(), path, user),
            None => self.app.request(method.clone(), path),
        };
        if let Some(json) = json {
            request = if method == Method::PATCH {
                request
                    .header("content-type", "application/merge-patch+json")
                    .body(json.to_string())
            } else {
                request.json(json)
            };
        }
        body(request.send().await.expect("request reaches the service")).await
    }

    pub async fn admin_post(&self, path: &str, json: &Value) -> (StatusCode, Value) {
        self.send(Some(&self.admin), Method::POST, path, Some(json))
            .await
    }

    pub async fn admin_put(&self, path: &str, json: &Value) -> (StatusCode, Value) {
        self.send(Some(&self.admin), Method::PUT, path, Some(json))
            .await
    }

    pub async fn admin_patch(&self, path: &str, json: &Value) -> (StatusCode, Value) {
        self.send(Some(&self.admin), Method::PATCH, path, Some(json))
            .await
    }

    pub async fn admin_get(&self, path: &str) -> (StatusCode, Value) {
        self.send(Some(&self.admin), Method::GET, path, None).await
    }

    pub async fn admin_delete(&self, path: &str) -> StatusCode {
        self.send(Some(&self.admin), Method::DELETE, path, None)
            .await
            .0
    }

    /// `GET` as an anonymous visitor.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        body(self.app.get(path).await).await
    }

    /// `POST` as an anonymous visitor.
    pub async fn post(&self, path: &str, json: &Value) -> (StatusCode, Value) {
        body(self.app.post_json(path, json).await).await
    }

    /// Envelopes in the outbox with `topic`, oldest first.
    pub async fn events(&self, topic: &str) -> Vec<Value> {
        sqlx::query_scalar::<_, Value>("SELECT envelope FROM outbox WHERE topic = $1 ORDER BY seq")
            .bind(topic)
            .fetch_all(&self.pool)
            .await
            .expect("query the outbox")
    }

    /// A count from the database.
    pub async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.pool).await.unwrap()
    }
}

/// The `slug`s of a list's `data`.
pub fn slugs(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|p| p["slug"].as_str().unwrap().to_owned())
        .collect()
}
