//! Drives the product service as the gateway and peer services would.

use product_service::ProductService;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use service_kit::Role;
use sqlx::PgPool;
pub use test_support::problem::{code as problem_code, fields, status_and_body as body};
use test_support::{INTERNAL_TOKEN_HEADER, TestApp, TestUser, service_token};
use uuid::Uuid;

/// The service under test and its database.
pub struct Api {
    pub app: TestApp,
    pub pool: PgPool,
    pub admin: TestUser,
    pub customer: TestUser,
}

impl Api {
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    pub async fn spawn_with(overrides: &[(&str, &str)]) -> Self {
        let app = TestApp::spawn_with::<ProductService>(overrides).await;
        let pool = app.pool().await;
        Self {
            app,
            pool,
            admin: TestUser::new(Role::Admin),
            customer: TestUser::new(Role::Customer),
        }
    }

    pub fn as_admin(&self, method: Method, path: &str) -> RequestBuilder {
        self.app.request_as(method, path, &self.admin)
    }

    pub fn as_service(&self, method: Method, path: &str) -> RequestBuilder {
        self.app
            .client
            .request(method, self.app.url(path))
            .header(INTERNAL_TOKEN_HEADER, service_token("order-payment"))
    }

    /// `GET` as an anonymous shopper: status and body.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        body(self.app.get(path).await).await
    }

    /// An admin `POST` with a JSON body.
    pub async fn admin_post(&self, path: &str, json: &Value) -> (StatusCode, Value) {
        body(
            self.as_admin(Method::POST, path)
                .json(json)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// An admin merge patch.
    pub async fn admin_patch(&self, path: &str, json: &Value) -> (StatusCode, Value) {
        body(
            self.as_admin(Method::PATCH, path)
                .header("content-type", "application/merge-patch+json")
                .body(json.to_string())
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn admin_delete(&self, path: &str) -> StatusCode {
        self.as_admin(Method::DELETE, path)
            .send()
            .await
            .unwrap()
            .status()
    }

    /// A service `POST` (order-payment calling an internal route).
    pub async fn service_post(&self, path: &str, json: &Value) -> (StatusCode, Value) {
        body(
            self.as_service(Method::POST, path)
                .json(json)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Creates a taxonomy entry and returns its id.
    pub async fn term(&self, collection: &str, json: Value) -> Uuid {
        let (status, body) = self.admin_post(&format!("/v1/{collection}"), &json).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().parse().unwrap()
    }

    pub async fn colour(&self, name: &str, hex: &str) -> Uuid {
        self.term("colours", json!({"name": name, "hexCode": hex}))
            .await
    }

    pub async fn style(&self, code: &str, name: &str) -> Uuid {
        self.term("styles", json!({"code": code, "name": name}))
            .await
    }

    pub async fn finish(&self, code: &str, name: &str) -> Uuid {
        self.term("finishes", json!({"code": code, "name": name}))
            .await
    }

    pub async fn range(&self, name: &str) -> Uuid {
        self.term("ranges", json!({"name": name})).await
    }

    /// Creates a product (published unless the body says otherwise) and returns its document.
    pub async fn product(&self, mut json: Value) -> Value {
        if json.get("status").is_none() {
            json["status"] = json!("PUBLISHED");
        }
        if json.get("category").is_none() {
            json["category"] = json!("KITCHEN");
        }
        let (status, body) = self.admin_post("/v1/products", &json).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// Ids of a list response's `data`.
    pub fn ids(body: &Value) -> Vec<String> {
        body["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Titles of a list response's `data`.
    pub fn titles(body: &Value) -> Vec<String> {
        body["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|p| p["title"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Envelopes in the outbox with `topic`, oldest first.
    pub async fn events(&self, topic: &str) -> Vec<Value> {
        sqlx::query_scalar::<_, Value>("SELECT envelope FROM outbox WHERE topic = $1 ORDER BY seq")
            .bind(topic)
            .fetch_all(&self.pool)
            .await
            .expect("query the outbox")
    }

    pub async fn scalar(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.pool).await.unwrap()
    }
}
