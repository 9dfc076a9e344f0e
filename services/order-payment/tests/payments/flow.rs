//! Seed 001 flow 4 across services: a real order placed through `POST /v1/orders` (priced and
//! reserved by a real product service), paid through a PaymentIntent at the fake Stripe, the
//! signed `payment_intent.succeeded` webhook confirming it, and product committing the
//! reservation when `payment.succeeded` reaches it over the broker.

use std::time::Duration;

use order_payment_service::OrderPaymentService;
use product_service::ProductService;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use stripe_fake::FakeStripe;
use test_support::{TestApp, unique_suffix};
use uuid::Uuid;

use crate::support::{SECRET, customer};

async fn published_product(catalogue: &PgPool, price: i64, stock: i32) -> Uuid {
    let id = Uuid::now_v7();
    let suffix = unique_suffix().to_ascii_uppercase();
    sqlx::query(
        "INSERT INTO products (id, sku, title, slug, category, price_pence, status, images)
         VALUES ($1, $2, $3, $4, 'KITCHEN', $5, 'PUBLISHED', '[]')",
    )
    .bind(id)
    .bind(format!("SKU-{suffix}"))
    .bind(format!("Handleless kitchen {suffix}"))
    .bind(format!("handleless-{}", suffix.to_ascii_lowercase()))
    .bind(price)
    .execute(catalogue)
    .await
    .expect("insert product");
    sqlx::query("INSERT INTO stock_items (id, product_id, on_hand) VALUES ($1, $2, $3)")
        .bind(Uuid::now_v7())
        .bind(id)
        .bind(stock)
        .execute(catalogue)
        .await
        .expect("insert stock");
    id
}

#[tokio::test]
async fn a_real_order_is_paid_confirmed_invoiced_and_its_stock_committed() {
    let stripe = FakeStripe::start().await.expect("fake Stripe");
    let exchange = format!("test.{}.events", unique_suffix());
    let product =
        TestApp::spawn_with::<ProductService>(&[("EVENT_EXCHANGE", exchange.as_str())]).await;
    let base = stripe.base_url();
    let shop = TestApp::spawn_with::<OrderPaymentService>(&[
        ("PRODUCT_SERVICE_URL", product.base_url.as_str()),
        ("EVENT_EXCHANGE", exchange.as_str()),
        ("STRIPE_API_BASE", base.as_str()),
        ("STRIPE_WEBHOOK_SECRET", SECRET),
    ])
    .await;
    let catalogue = product.pool().await;
    let orders = shop.pool().await;
    let kitchen = published_product(&catalogue, 129_900, 3).await;
    let shopper = customer();

    // The customer places the order: re-priced and reserved at product, PENDING/UNPAID.
    let placed = shop
        .request_as(Method::POST, "/v1/orders", &shopper)
        .header("Idempotency-Key", "order-1")
        .json(&json!({
            "items": [{"productId": kitchen, "quantity": 1}],
            "email": "asha@example.com",
            "shippingAddress": {"fullName": "Asha Patel", "line1": "1 Oak Lane", "city": "Leeds",
                                "postcode": "ls14ap", "country": "GB"},
            "shippingMethod": "STANDARD"
        }))
        .send()
        .await
        .expect("reaches");
    assert_eq!(placed.status(), StatusCode::CREATED);
    let order: Value = placed.json().await.expect("json");
    let order_id = order["id"].as_str().expect("id").to_owned();
    let total = order["total"].as_i64().expect("total");

    // Checkout: a PaymentIntent for the order's total.
    let intent = shop
        .request_as(Method::POST, "/v1/payments/create-intent", &shopper)
        .header("Idempotency-Key", "pay-1")
        .json(&json!({"orderId": order_id}))
        .send()
        .await
        .expect("reaches");
    assert_eq!(intent.status(), StatusCode::CREATED);
    let intent: Value = intent.json().await.expect("json");
    assert_eq!(intent["amount"], total);
    let intent_id = intent["paymentIntentId"].as_str().expect("id");

    // The customer pays; Stripe calls the webhook, signed.
    let paid = stripe.succeed_intent(intent_id).expect("intent");
    let signed = stripe_fake::sign(&stripe.event("payment_intent.succeeded", paid), SECRET);
    let webhook = shop
        .request(Method::POST, "/v1/webhooks/stripe")
        .header("Stripe-Signature", signed.signature)
        .header("content-type", "application/json")
        .body(signed.body)
        .send()
        .await
        .expect("reaches");
    assert_eq!(webhook.status(), StatusCode::OK);

    let seen = shop
        .request_as(Method::GET, &format!("/v1/orders/{order_id}"), &shopper)
        .send()
        .await
        .expect("reaches");
    let seen: Value = seen.json().await.expect("json");
    assert_eq!(seen["status"], "CONFIRMED");
    assert_eq!(seen["paymentStatus"], "PAID");
    let invoice = shop
        .request_as(
            Method::GET,
            &format!("/v1/orders/{order_id}/invoice"),
            &shopper,
        )
        .send()
        .await
        .expect("reaches");
    assert_eq!(invoice.status(), StatusCode::OK);
    let invoice: Value = invoice.json().await.expect("json");
    assert_eq!(invoice["total"], total);
    assert!(
        invoice["lines"][0]["description"]
            .as_str()
            .expect("line")
            .starts_with("Handleless kitchen")
    );
    let announced: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE topic = 'payment.succeeded'")
            .fetch_one(&orders)
            .await
            .expect("outbox");
    assert_eq!(announced, 1);

    // Product hears payment.succeeded and commits the reservation (eventually: over the broker).
    let mut status = None;
    for _ in 0..150 {
        status =
            sqlx::query_scalar::<_, String>("SELECT status FROM reservations WHERE order_id = $1")
                .bind(order_id.parse::<Uuid>().expect("uuid"))
                .fetch_optional(&catalogue)
                .await
                .expect("reservation");
        if status.as_deref() == Some("COMMITTED") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status.as_deref(), Some("COMMITTED"));
}
