//! `verifiedPurchase` on reviews: asked of a real order-payment service, of a fake one that is
//! down and comes back, and re-checked after the author's payments and refunds.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use order_payment_service::OrderPaymentService;
use serde::Deserialize;
use serde_json::{Value, json};
use service_kit::shared_types::DomainEvent;
use service_kit::shared_types::order_payment::{PaymentSucceeded, RefundIssued};
use test_support::{TestApp, TestUser};
use uuid::Uuid;

use crate::helpers::{Api, customer};

fn review() -> Value {
    json!({"rating": 5, "title": "Solid", "body": "Doors close softly."})
}

/// Writes `user`'s review of `product` (asserting 201) and returns it.
async fn write(api: &Api, user: &TestUser, product: Uuid) -> Value {
    let (status, body) = api
        .post(user, &format!("/v1/products/{product}/reviews"), &review())
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

/// The stored flag and whether a re-check is still due.
async fn stored(api: &Api, review: &Value) -> (bool, bool) {
    sqlx::query_as(
        "SELECT verified_purchase, verify_due_at IS NOT NULL FROM reviews WHERE id = $1::uuid",
    )
    .bind(review["id"].as_str().unwrap())
    .fetch_one(&api.pool)
    .await
    .unwrap()
}

/// Waits until the review's flag is `verified` and no re-check is due (the job runs every
/// 200 ms in these tests).
async fn settles_to(api: &Api, review: &Value, verified: bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if stored(api, review).await == (verified, false) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the review never settled to verified = {verified}: {:?}",
            stored(api, review).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A paid order of `user` for `product` in order-payment's own database, as its checkout and
/// Stripe webhook leave it.
async fn paid_order(orders: &sqlx::PgPool, user: Uuid, product: Uuid, status: &str) {
    let order = Uuid::now_v7();
    let number = format!(
        "ORD-{}-{}",
        Utc::now().format("%Y%m%d"),
        &order.simple().to_string().to_ascii_uppercase()[26..32]
    );
    sqlx::query(
        "INSERT INTO orders (id, order_number, user_id, customer_email, status, payment_status,
                             subtotal_pence, total_pence, vat_rate_bp, prices_include_vat,
                             shipping_method, shipping_address, billing_address, paid_at)
         VALUES ($1, $2, $3, 'jane@example.com', $4, 'PAID', 129900, 129900, 2000, true,
                 'STANDARD', '{}', '{}', now())",
    )
    .bind(order)
    .bind(number)
    .bind(user)
    .bind(status)
    .execute(orders)
    .await
    .expect("insert an order");
    sqlx::query(
        "INSERT INTO order_items (id, order_id, position, product_id, sku, title, unit_price_pence,
                                  quantity, line_total_pence)
         VALUES ($1, $2, 1, $3, 'SKU-OAK', 'Oak larder', 129900, 1, 129900)",
    )
    .bind(Uuid::now_v7())
    .bind(order)
    .bind(product)
    .execute(orders)
    .await
    .expect("insert an order line");
}

#[tokio::test]
async fn a_review_by_a_customer_who_paid_for_the_product_is_a_verified_purchase() {
    let orders = TestApp::spawn::<OrderPaymentService>().await;
    let orders_db = orders.pool().await;
    let api = Api::spawn_with(&[("ORDER_PAYMENT_SERVICE_URL", &orders.base_url)]).await;
    let (oak, walnut) = (Uuid::now_v7(), Uuid::now_v7());
    let (jane, tom) = (customer(), customer());
    paid_order(&orders_db, jane.id, oak, "DELIVERED").await;

    let verified = write(&api, &jane, oak).await;
    assert_eq!(verified["verifiedPurchase"], true, "{verified}");
    assert_eq!(stored(&api, &verified).await, (true, false));
    // Someone else's order, and a product Jane did not buy: not verified, nothing left due.
    let other = write(&api, &tom, oak).await;
    assert_eq!(other["verifiedPurchase"], false, "{other}");
    assert_eq!(stored(&api, &other).await, (false, false));
    let unbought = write(&api, &jane, walnut).await;
    assert_eq!(unbought["verifiedPurchase"], false);
    // Paid for but not delivered yet: not verified, and due for a later re-check.
    let cherry = Uuid::now_v7();
    paid_order(&orders_db, jane.id, cherry, "SHIPPED").await;
    let awaiting = write(&api, &jane, cherry).await;
    assert_eq!(awaiting["verifiedPurchase"], false, "{awaiting}");
    assert_eq!(stored(&api, &awaiting).await, (false, true));

    // The event and, once approved, the public list carry the badge.
    let events = api.events("review.created").await;
    let created = events
        .iter()
        .find(|e| e["payload"]["reviewId"] == verified["id"])
        .expect("review.created of Jane's review");
    assert_eq!(created["payload"]["verifiedPurchase"], true);
    let id = verified["id"].as_str().unwrap();
    let (status, _) = api
        .post(
            &api.admin,
            &format!("/v1/admin/reviews/{id}/moderation"),
            &json!({"status": "APPROVED"}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, list) = api.public_get(&format!("/v1/products/{oak}/reviews")).await;
    assert_eq!(list["data"][0]["verifiedPurchase"], true, "{list}");

    // The OpenAPI document declares the field.
    let (_, spec) = api.public_get("/openapi.json").await;
    let review = &spec["components"]["schemas"]["Review"];
    assert_eq!(
        review["properties"]["verifiedPurchase"]["type"], "boolean",
        "{review}"
    );
    assert!(
        review["required"]
            .as_array()
            .unwrap()
            .contains(&json!("verifiedPurchase"))
    );
}

/// A stand-in for order-payment's `/internal/purchases`: answers from `bought` (delivered
/// unless also in `undelivered`), or 503 while `down`; counts the calls that carried a token
/// naming the customer service.
#[derive(Default)]
struct FakeOrders {
    bought: Mutex<HashSet<(Uuid, Uuid)>>,
    undelivered: Mutex<HashSet<(Uuid, Uuid)>>,
    /// Calls still to be answered 503 (`usize::MAX`: until told otherwise).
    failures_left: AtomicUsize,
    calls: AtomicUsize,
    from_customer: AtomicUsize,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Asked {
    user_id: Uuid,
    product_id: Uuid,
}

async fn purchases(
    State(fake): State<Arc<FakeOrders>>,
    headers: HeaderMap,
    Query(asked): Query<Asked>,
) -> Response {
    fake.calls.fetch_add(1, Ordering::SeqCst);
    let caller = headers
        .get("x-internal-token")
        .and_then(|v| v.to_str().ok())
        .and_then(|token| service_kit::InternalKeys::development().verify(token).ok())
        .and_then(|claims| claims.service_name().map(str::to_owned));
    if caller.as_deref() == Some("customer") {
        fake.from_customer.fetch_add(1, Ordering::SeqCst);
    }
    let failing = fake
        .failures_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| match left {
            0 => None,
            usize::MAX => Some(usize::MAX),
            n => Some(n - 1),
        })
        .is_ok();
    if failing {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let purchased = fake
        .bought
        .lock()
        .unwrap()
        .contains(&(asked.user_id, asked.product_id));
    let delivered = purchased
        && !fake
            .undelivered
            .lock()
            .unwrap()
            .contains(&(asked.user_id, asked.product_id));
    Json(json!({
        "userId": asked.user_id, "productId": asked.product_id, "purchased": purchased,
        "firstPaidAt": null, "delivered": delivered, "orders": i64::from(purchased)
    }))
    .into_response()
}

/// The customer service against a fake order-payment, re-checking every 200 ms.
async fn with_fake_orders() -> (Api, Arc<FakeOrders>) {
    let fake = Arc::new(FakeOrders::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = axum::Router::new()
        .route("/internal/purchases", get(purchases))
        .with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let api = Api::spawn_with(&[
        ("ORDER_PAYMENT_SERVICE_URL", &url),
        ("REVIEW_VERIFY_SWEEP_MS", "200"),
    ])
    .await;
    (api, fake)
}

#[tokio::test]
async fn a_review_written_while_order_payment_is_down_is_created_unverified_and_verified_later() {
    let (api, fake) = with_fake_orders().await;
    let (jane, oak) = (customer(), Uuid::now_v7());
    fake.bought.lock().unwrap().insert((jane.id, oak));
    fake.failures_left.store(usize::MAX, Ordering::SeqCst);

    let review = write(&api, &jane, oak).await;
    assert_eq!(review["verifiedPurchase"], false, "{review}");
    assert_eq!(review["status"], "PENDING");
    assert_eq!(
        stored(&api, &review).await,
        (false, true),
        "due for a re-check"
    );
    assert!(
        fake.calls.load(Ordering::SeqCst) >= 1,
        "order-payment was asked"
    );

    // Order-payment comes back: the job verifies the review without anyone asking.
    fake.failures_left.store(0, Ordering::SeqCst);
    settles_to(&api, &review, true).await;
    let (status, mine) = api
        .get(&api.admin, "/v1/admin/reviews?status=PENDING")
        .await;
    assert_eq!(status, 200);
    let listed = mine["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == review["id"])
        .expect("the review in the moderation queue");
    assert_eq!(listed["verifiedPurchase"], true);
    assert_eq!(
        fake.from_customer.load(Ordering::SeqCst),
        fake.calls.load(Ordering::SeqCst),
        "every call carried a token naming the customer service"
    );
}

#[tokio::test]
async fn one_503_from_order_payment_is_retried_within_the_same_request() {
    let (api, fake) = with_fake_orders().await;
    let (jane, oak) = (customer(), Uuid::now_v7());
    fake.bought.lock().unwrap().insert((jane.id, oak));
    fake.failures_left.store(1, Ordering::SeqCst);

    let review = write(&api, &jane, oak).await;
    assert_eq!(review["verifiedPurchase"], true, "{review}");
    assert_eq!(
        stored(&api, &review).await,
        (true, false),
        "nothing left due"
    );
    assert_eq!(
        fake.calls.load(Ordering::SeqCst),
        2,
        "a 503, then the answer"
    );
}

#[tokio::test]
async fn a_payment_verifies_the_authors_reviews_and_a_full_refund_unverifies_them() {
    let (api, fake) = with_fake_orders().await;
    let (jane, tom, oak) = (customer(), customer(), Uuid::now_v7());
    let review = write(&api, &jane, oak).await;
    assert_eq!(review["verifiedPurchase"], false);
    let toms = write(&api, &tom, oak).await;

    // Jane pays for an oak larder after writing her review.
    fake.bought.lock().unwrap().insert((jane.id, oak));
    let (order_id, payment_id) = (Uuid::now_v7(), Uuid::now_v7());
    api.deliver(&DomainEvent::new(
        "order-payment",
        PaymentSucceeded {
            order_id,
            payment_id,
            user_id: Some(jane.id),
            amount: 129_900,
            currency: "GBP".into(),
            invoice_number: None,
            provider_payment_id: "pi_test".into(),
            customer_email: None,
            paid_at: Utc::now(),
        },
    ))
    .await;
    settles_to(&api, &review, true).await;
    assert_eq!(
        stored(&api, &toms).await,
        (false, false),
        "another customer's payment changes nothing of Tom's"
    );

    // She sends it back and is refunded in full: the badge goes.
    fake.bought.lock().unwrap().clear();
    api.deliver(&DomainEvent::new(
        "order-payment",
        RefundIssued {
            refund_id: Uuid::now_v7(),
            order_id,
            payment_id,
            user_id: Some(jane.id),
            amount: 129_900,
            currency: "GBP".into(),
            reason: Some("returned".into()),
            customer_email: None,
            issued_at: Utc::now(),
        },
    ))
    .await;
    settles_to(&api, &review, false).await;
    let (_, queue) = api.get(&api.admin, "/v1/admin/reviews").await;
    let listed = queue["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == review["id"])
        .expect("Jane's review in the queue");
    assert_eq!(listed["verifiedPurchase"], false);
}

#[tokio::test]
async fn a_purchase_awaiting_delivery_is_verified_once_the_re_check_finds_it_delivered() {
    let (api, fake) = with_fake_orders().await;
    let (jane, oak) = (customer(), Uuid::now_v7());
    fake.bought.lock().unwrap().insert((jane.id, oak));
    fake.undelivered.lock().unwrap().insert((jane.id, oak));

    let review = write(&api, &jane, oak).await;
    assert_eq!(review["verifiedPurchase"], false, "{review}");
    let hours_until_due: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM verify_due_at - now())::float8 / 3600 FROM reviews
         WHERE id = $1::uuid",
    )
    .bind(review["id"].as_str().unwrap())
    .fetch_one(&api.pool)
    .await
    .unwrap();
    assert!(
        (5.9..=6.0).contains(&hours_until_due),
        "re-checked in six hours, not at once: {hours_until_due}"
    );
    let calls = fake.calls.load(Ordering::SeqCst);

    // Delivered; the re-check comes due (time moved on) and finds it.
    fake.undelivered.lock().unwrap().clear();
    sqlx::query("UPDATE reviews SET verify_due_at = now() WHERE id = $1::uuid")
        .bind(review["id"].as_str().unwrap())
        .execute(&api.pool)
        .await
        .unwrap();
    settles_to(&api, &review, true).await;
    assert!(fake.calls.load(Ordering::SeqCst) > calls, "asked again");
}
