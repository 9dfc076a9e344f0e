//! Drives the customer service as the gateway and the event bus would.

use customer_service::CustomerService;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use service_kit::Role;
use service_kit::shared_types::{DomainEvent, EventPayload};
use sqlx::PgPool;
pub use test_support::problem::{code as problem_code, fields, status_and_body as body};
use test_support::{TestApp, TestUser};

/// The service under test and its database.
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
        let app = TestApp::spawn_with::<CustomerService>(overrides).await;
        let pool = app.pool().await;
        Self {
            app,
            pool,
            admin: TestUser::new(Role::Admin),
        }
    }

    pub async fn send(
        &self,
        user: &TestUser,
        method: Method,
        path: &str,
        json: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.app.request_as(method.clone(), path, user);
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

    pub async fn get(&self, user: &TestUser, path: &str) -> (StatusCode, Value) {
        self.send(user, Method::GET, path, None).await
    }

    pub async fn post(&self, user: &TestUser, path: &str, json: &Value) -> (StatusCode, Value) {
        self.send(user, Method::POST, path, Some(json)).await
    }

    pub async fn patch(&self, user: &TestUser, path: &str, json: &Value) -> (StatusCode, Value) {
        self.send(user, Method::PATCH, path, Some(json)).await
    }

    pub async fn delete(&self, user: &TestUser, path: &str) -> StatusCode {
        self.send(user, Method::DELETE, path, None).await.0
    }

    /// `GET` as an anonymous shopper.
    pub async fn public_get(&self, path: &str) -> (StatusCode, Value) {
        body(self.app.get(path).await).await
    }

    /// Envelopes in the outbox with `topic`, oldest first.
    pub async fn events(&self, topic: &str) -> Vec<Value> {
        sqlx::query_scalar::<_, Value>("SELECT envelope FROM outbox WHERE topic = $1 ORDER BY seq")
            .bind(topic)
            .fetch_all(&self.pool)
            .await
            .expect("query the outbox")
    }

    /// Publishes `event` to the test's exchange until the consumer has recorded it (the consumer
    /// declares its queue when it starts, so the first publish may find no queue yet).
    pub async fn deliver<P: EventPayload>(&self, event: &DomainEvent<P>) {
        self.app.deliver(event).await;
    }
}
