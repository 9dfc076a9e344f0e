//! A running order-payment service wired to an in-process fake Stripe, and helpers that read as
//! the steps of a payment.

use chrono::Utc;
use order_payment_service::OrderPaymentService;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use stripe_fake::FakeStripe;
use test_support::{TestApp, TestUser};
use uuid::Uuid;

/// The webhook secret the service verifies with (the current one of a rotation).
pub const SECRET: &str = "whsec_test_current";
/// The secret being rotated out, still accepted.
pub const OLD_SECRET: &str = "whsec_test_previous";

pub struct PayApp {
    pub app: TestApp,
    pub stripe: FakeStripe,
    pub db: PgPool,
}

/// A customer.
pub fn customer() -> TestUser {
    TestUser::new(service_kit::Role::Customer)
}

/// An admin.
pub fn admin() -> TestUser {
    TestUser::new(service_kit::Role::Admin)
}

impl PayApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    pub async fn spawn_with(extra: &[(&str, &str)]) -> Self {
        let stripe = FakeStripe::start().await.expect("fake Stripe starts");
        let base = stripe.base_url();
        let secrets = format!("{SECRET},{OLD_SECRET}");
        let mut env: Vec<(&str, &str)> = vec![
            ("STRIPE_API_BASE", base.as_str()),
            ("STRIPE_SECRET_KEY", "sk_test_order_payment"),
            ("STRIPE_WEBHOOK_SECRET", secrets.as_str()),
        ];
        env.extend_from_slice(extra);
        let app = TestApp::spawn_with::<OrderPaymentService>(&env).await;
        let db = app.pool().await;
        Self { app, stripe, db }
    }

    /// A PENDING, UNPAID order of `user` for `total` pence (VAT-inclusive at 20%), inserted
    /// directly: two lines, free delivery, UK addresses.
    pub async fn order(&self, user: &TestUser, total: i64) -> Uuid {
        let id = Uuid::now_v7();
        let number = format!(
            "ORD-{}-{}",
            Utc::now().format("%Y%m%d"),
            &id.simple().to_string().to_uppercase()[26..32]
        );
        let address = json!({
            "fullName": "Asha Patel", "line1": "1 Oak Lane", "city": "Leeds",
            "postcode": "LS1 4AP", "country": "GB"
        });
        let first = total / 2;
        let second = total - first;
        sqlx::query(
            "INSERT INTO orders (id, order_number, user_id, customer_email, subtotal_pence,
                 tax_pence, total_pence, vat_rate_bp, prices_include_vat, shipping_method,
                 shipping_address, billing_address, reservation_expires_at)
             VALUES ($1, $2, $3, 'asha@example.com', $4, $5, $4, 2000, true, 'STANDARD', $6, $6,
                     now() + interval '30 minutes')",
        )
        .bind(id)
        .bind(&number)
        .bind(user.id)
        .bind(total)
        .bind(total / 6)
        .bind(&address)
        .execute(&self.db)
        .await
        .expect("insert order");
        for (position, (title, price)) in [("Shaker wall unit", first), ("Oak worktop", second)]
            .into_iter()
            .enumerate()
        {
            sqlx::query(
                "INSERT INTO order_items (id, order_id, position, product_id, sku, title,
                     unit_price_pence, quantity, line_total_pence)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $7)",
            )
            .bind(Uuid::now_v7())
            .bind(id)
            .bind(position as i32)
            .bind(Uuid::now_v7())
            .bind(format!("SKU-{position}"))
            .bind(title)
            .bind(price)
            .execute(&self.db)
            .await
            .expect("insert order item");
        }
        id
    }

    /// `POST /v1/payments/create-intent` as `user` with `key`.
    pub async fn create_intent(&self, user: &TestUser, order_id: Uuid, key: &str) -> Response {
        self.app
            .request_as(Method::POST, "/v1/payments/create-intent", user)
            .header("Idempotency-Key", key)
            .json(&json!({ "orderId": order_id }))
            .send()
            .await
            .expect("reaches the service")
    }

    /// Creates an intent and returns `(paymentId, paymentIntentId)`.
    pub async fn intent(&self, user: &TestUser, order_id: Uuid) -> (Uuid, String) {
        let response = self
            .create_intent(user, order_id, &Uuid::now_v7().to_string())
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.expect("json");
        (
            body["paymentId"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .expect("payment id"),
            body["paymentIntentId"]
                .as_str()
                .expect("intent id")
                .to_owned(),
        )
    }

    /// Posts `body` with `signature` (or none) to the webhook.
    pub async fn post_webhook(&self, body: &str, signature: Option<&str>) -> Response {
        let mut request = self
            .app
            .request(Method::POST, "/v1/webhooks/stripe")
            .header("content-type", "application/json; charset=utf-8")
            .body(body.to_owned());
        if let Some(signature) = signature {
            request = request.header("Stripe-Signature", signature);
        }
        request.send().await.expect("reaches the service")
    }

    /// Delivers `event` signed with the current secret, like Stripe; returns the outcome.
    pub async fn deliver(&self, event: &Value) -> String {
        let signed = stripe_fake::sign(event, SECRET);
        let response = self
            .post_webhook(&signed.body, Some(&signed.signature))
            .await;
        assert_eq!(response.status(), StatusCode::OK, "webhook answered");
        let body: Value = response.json().await.expect("json");
        body["outcome"].as_str().unwrap_or_default().to_owned()
    }

    /// The customer pays: the fake's intent succeeds and Stripe sends `payment_intent.succeeded`.
    pub async fn succeed(&self, intent_id: &str) -> String {
        let intent = self.stripe.succeed_intent(intent_id).expect("known intent");
        self.deliver(&self.stripe.event("payment_intent.succeeded", intent))
            .await
    }

    /// The card is declined: `payment_intent.payment_failed`.
    pub async fn decline(&self, intent_id: &str) -> String {
        let intent = self
            .stripe
            .fail_intent(intent_id, "card_declined", "Your card was declined.")
            .expect("known intent");
        self.deliver(&self.stripe.event("payment_intent.payment_failed", intent))
            .await
    }

    /// `(status, payment_status)` of an order.
    pub async fn order_state(&self, order_id: Uuid) -> (String, String) {
        sqlx::query_as("SELECT status, payment_status FROM orders WHERE id = $1")
            .bind(order_id)
            .fetch_one(&self.db)
            .await
            .expect("order")
    }

    /// A payment's status.
    pub async fn payment_status(&self, payment_id: Uuid) -> String {
        sqlx::query_scalar("SELECT status FROM payments WHERE id = $1")
            .bind(payment_id)
            .fetch_one(&self.db)
            .await
            .expect("payment")
    }

    /// How many outbox rows have `topic`.
    pub async fn outbox_count(&self, topic: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE topic = $1")
            .bind(topic)
            .fetch_one(&self.db)
            .await
            .expect("outbox")
    }

    /// The payloads of the outbox rows with `topic`.
    pub async fn outbox_payloads(&self, topic: &str) -> Vec<Value> {
        sqlx::query_scalar("SELECT envelope->'payload' FROM outbox WHERE topic = $1 ORDER BY seq")
            .bind(topic)
            .fetch_all(&self.db)
            .await
            .expect("outbox")
    }

    /// `count(*)` of a table.
    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&self.db)
            .await
            .expect("count")
    }

    /// `GET path` as `user`, with its JSON.
    pub async fn get_as(&self, user: &TestUser, path: &str) -> (StatusCode, Value) {
        let response = self
            .app
            .request_as(Method::GET, path, user)
            .send()
            .await
            .expect("reaches the service");
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// An order paid end to end; returns `(orderId, paymentId, paymentIntentId)`.
    pub async fn paid_order(&self, user: &TestUser, total: i64) -> (Uuid, Uuid, String) {
        let order = self.order(user, total).await;
        let (payment, intent) = self.intent(user, order).await;
        assert_eq!(self.succeed(&intent).await, "APPLIED");
        (order, payment, intent)
    }
}
