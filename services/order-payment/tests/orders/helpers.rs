//! The order-payment service wired to a real product service (both on fresh databases and one
//! shared event exchange), and helpers that read as a shopper's and an admin's steps.

use order_payment_service::OrderPaymentService;
use product_service::ProductService;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use service_kit::Role;
use service_kit::shared_types::{DomainEvent, EventPayload};
use sqlx::PgPool;
pub use test_support::problem::fields;
use test_support::{TestApp, TestUser, unique_suffix};
use uuid::Uuid;

/// Both services and their databases.
pub struct Shop {
    pub app: TestApp,
    /// Kept alive for the test's duration.
    pub _product: TestApp,
    pub db: PgPool,
    pub catalogue: PgPool,
}

/// A customer.
pub fn customer() -> TestUser {
    TestUser::new(Role::Customer)
}

/// An admin.
pub fn admin() -> TestUser {
    TestUser::new(Role::Admin)
}

/// The problem type's machine code.
pub fn code(body: &Value) -> &str {
    body["type"]
        .as_str()
        .and_then(|t| t.rsplit('/').next())
        .unwrap_or_default()
}

/// A valid UK address.
pub fn address() -> Value {
    json!({
        "fullName": "Ada Lovelace",
        "line1": "12 Kitchen Lane",
        "city": "London",
        "postcode": "sw1a1aa",
        "country": "GB"
    })
}

/// An order body for `items`.
pub fn order_body(items: Value) -> Value {
    json!({
        "items": items,
        "email": "ada@example.com",
        "shippingAddress": address(),
        "shippingMethod": "STANDARD"
    })
}

/// What a request answered.
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub body: Value,
}

pub async fn answer(request: RequestBuilder) -> Answer {
    let response = request.send().await.expect("request reaches the service");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        text,
        body,
    }
}

impl Shop {
    /// Product and order-payment, sharing one exchange so product consumes `order.cancelled`.
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    pub async fn spawn_with(extra: &[(&str, &str)]) -> Self {
        let exchange = format!("test.{}.events", unique_suffix());
        let product = TestApp::spawn_with::<ProductService>(&[
            ("EVENT_EXCHANGE", exchange.as_str()),
            ("RESERVATION_SWEEP_MS", "3600000"),
        ])
        .await;
        let mut env: Vec<(&str, &str)> = vec![
            ("PRODUCT_SERVICE_URL", product.base_url.as_str()),
            ("EVENT_EXCHANGE", exchange.as_str()),
            ("ORDER_EXPIRY_SWEEP_SECS", "3600"),
        ];
        env.extend_from_slice(extra);
        let app = TestApp::spawn_with::<OrderPaymentService>(&env).await;
        let db = app.pool().await;
        let catalogue = product.pool().await;
        Self {
            app,
            _product: product,
            db,
            catalogue,
        }
    }

    /// A published product at `price` pence; with `stock`, a tracked stock level of that many.
    pub async fn product(&self, price: i64, stock: Option<i32>) -> Uuid {
        let id = Uuid::now_v7();
        let suffix = unique_suffix().to_ascii_uppercase();
        sqlx::query(
            "INSERT INTO products (id, sku, title, slug, category, price_pence, status, images)
             VALUES ($1, $2, $3, $4, 'KITCHEN', $5, 'PUBLISHED', $6)",
        )
        .bind(id)
        .bind(format!("SKU-{suffix}"))
        .bind(format!("Shaker unit {suffix}"))
        .bind(format!("shaker-{}", suffix.to_ascii_lowercase()))
        .bind(price)
        .bind(json!([{ "url": format!("https://cdn.example/{suffix}.jpg") }]))
        .execute(&self.catalogue)
        .await
        .expect("insert product");
        if let Some(on_hand) = stock {
            sqlx::query("INSERT INTO stock_items (id, product_id, on_hand) VALUES ($1, $2, $3)")
                .bind(Uuid::now_v7())
                .bind(id)
                .bind(on_hand)
                .execute(&self.catalogue)
                .await
                .expect("insert stock");
        }
        id
    }

    /// Changes a product's price at the catalogue.
    pub async fn reprice(&self, product: Uuid, price: i64) {
        sqlx::query("UPDATE products SET price_pence = $2 WHERE id = $1")
            .bind(product)
            .bind(price)
            .execute(&self.catalogue)
            .await
            .expect("reprice");
    }

    /// Units reserved of `product` at the catalogue.
    pub async fn reserved(&self, product: Uuid) -> i64 {
        sqlx::query_scalar(
            "SELECT COALESCE(sum(reserved), 0)::bigint FROM stock_items WHERE product_id = $1",
        )
        .bind(product)
        .fetch_one(&self.catalogue)
        .await
        .expect("reserved")
    }

    /// Reservations held at the catalogue for `order`.
    pub async fn reservation_status(&self, order: Uuid) -> Option<String> {
        sqlx::query_scalar("SELECT status FROM reservations WHERE order_id = $1")
            .bind(order)
            .fetch_optional(&self.catalogue)
            .await
            .expect("reservation")
    }

    /// A request as `user` (None: anonymous).
    pub fn request(&self, user: Option<&TestUser>, method: Method, path: &str) -> RequestBuilder {
        match user {
            Some(user) => self.app.request_as(method, path, user),
            None => self.app.request(method, path),
        }
    }

    pub async fn get(&self, user: Option<&TestUser>, path: &str) -> Answer {
        answer(self.request(user, Method::GET, path)).await
    }

    pub async fn post(&self, user: Option<&TestUser>, path: &str, body: &Value) -> Answer {
        answer(self.request(user, Method::POST, path).json(body)).await
    }

    pub async fn patch(&self, user: Option<&TestUser>, path: &str, body: &Value) -> Answer {
        answer(
            self.request(user, Method::PATCH, path)
                .header("content-type", "application/merge-patch+json")
                .body(body.to_string()),
        )
        .await
    }

    /// `POST /v1/orders` with `key`.
    pub async fn place(&self, user: &TestUser, key: &str, body: &Value) -> Answer {
        answer(
            self.request(Some(user), Method::POST, "/v1/orders")
                .header("idempotency-key", key)
                .json(body),
        )
        .await
    }

    /// Places an order of `items` and returns it (asserting 201).
    pub async fn placed(&self, user: &TestUser, items: Value) -> Value {
        let answer = self
            .place(user, &Uuid::now_v7().to_string(), &order_body(items))
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
        answer.body
    }

    /// Rows in `table`.
    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&self.db)
            .await
            .expect("count")
    }

    /// Envelopes in the outbox with `topic`, oldest first.
    pub async fn events(&self, topic: &str) -> Vec<Value> {
        sqlx::query_scalar("SELECT envelope FROM outbox WHERE topic = $1 ORDER BY seq")
            .bind(topic)
            .fetch_all(&self.db)
            .await
            .expect("outbox")
    }

    /// Publishes `event` to the shared exchange until order-payment's consumer has recorded it
    /// (its queue may not be declared yet when the first copy is sent).
    pub async fn deliver<P: EventPayload>(&self, event: &DomainEvent<P>) {
        self.app.deliver(event).await;
    }
}
