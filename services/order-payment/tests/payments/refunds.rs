//! Refunds: full and partial, bounded by what was captured, settled by Stripe's webhooks.

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use stripe_fake::{Failure, Operation};
use test_support::TestUser;
use uuid::Uuid;

use crate::support::{PayApp, admin, customer};

async fn refund(pay: &PayApp, user: &TestUser, key: &str, body: Value) -> Response {
    pay.app
        .request_as(Method::POST, "/v1/refunds", user)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .expect("reaches")
}

async fn settle(pay: &PayApp, stripe_refund_id: &str, status: &str) -> String {
    let object = pay
        .stripe
        .settle_refund(stripe_refund_id, status)
        .expect("refund");
    pay.deliver(&pay.stripe.event("refund.updated", object))
        .await
}

#[tokio::test]
async fn a_partial_then_a_full_refund_settle_by_webhook_and_announce_themselves() {
    let pay = PayApp::spawn().await;
    let shopper = customer();
    let boss = admin();
    let (order, payment, _) = pay.paid_order(&shopper, 10_000).await;

    let response = refund(
        &pay,
        &boss,
        "r1",
        json!({"paymentId": payment, "amount": 2_500, "reason": "damaged door"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let partial: Value = response.json().await.expect("json");
    assert_eq!(partial["status"], "PENDING");
    assert_eq!(partial["amount"], 2_500);
    let stripe_id = partial["stripeRefundId"]
        .as_str()
        .expect("stripe id")
        .to_owned();
    assert_eq!(
        pay.outbox_count("refund.issued").await,
        0,
        "nothing is announced before Stripe settles"
    );

    assert_eq!(settle(&pay, &stripe_id, "succeeded").await, "APPLIED");
    assert_eq!(pay.order_state(order).await.1, "PARTIALLY_REFUNDED");
    let issued = pay.outbox_payloads("refund.issued").await;
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0]["amount"], 2_500);
    assert_eq!(issued[0]["reason"], "damaged door");

    let rest = refund(
        &pay,
        &boss,
        "r2",
        json!({"paymentId": payment, "reason": "order cancelled"}),
    )
    .await;
    assert_eq!(rest.status(), StatusCode::CREATED);
    let rest: Value = rest.json().await.expect("json");
    assert_eq!(rest["amount"], 7_500, "without an amount, what is left");
    assert_eq!(
        settle(
            &pay,
            rest["stripeRefundId"].as_str().expect("id"),
            "succeeded"
        )
        .await,
        "APPLIED"
    );

    assert_eq!(pay.order_state(order).await.1, "REFUNDED");
    assert_eq!(pay.outbox_count("refund.issued").await, 2);
    let (status, listed) = pay
        .get_as(&shopper, &format!("/v1/orders/{order}/refunds"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed.as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn refunding_more_than_was_captured_is_422_and_nothing_is_asked_of_stripe() {
    let pay = PayApp::spawn().await;
    let shopper = customer();
    let boss = admin();
    let (_, payment, _) = pay.paid_order(&shopper, 10_000).await;
    let first = refund(
        &pay,
        &boss,
        "a",
        json!({"paymentId": payment, "amount": 6_000, "reason": "x"}),
    )
    .await;
    assert_eq!(first.status(), StatusCode::CREATED);

    // 6,000 is pending: only 4,000 is left, even before Stripe settles the first.
    let over = refund(
        &pay,
        &boss,
        "b",
        json!({"paymentId": payment, "amount": 4_001, "reason": "x"}),
    )
    .await;

    assert_eq!(over.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = over.json().await.expect("json");
    assert_eq!(problem["errors"][0]["field"], "amount");
    assert_eq!(pay.stripe.count("POST", "/v1/refunds"), 1);
    assert_eq!(pay.count("refunds").await, 1);
}

#[tokio::test]
async fn concurrent_refunds_never_exceed_the_captured_amount() {
    let pay = PayApp::spawn().await;
    let shopper = customer();
    let boss = admin();
    let (_, payment, _) = pay.paid_order(&shopper, 10_000).await;

    let keys: Vec<String> = (0..5).map(|i| format!("c{i}")).collect();
    let responses = futures::future::join_all(keys.iter().map(|key| {
        refund(
            &pay,
            &boss,
            key,
            json!({"paymentId": payment, "amount": 3_000, "reason": "x"}),
        )
    }))
    .await;

    let created = responses
        .iter()
        .filter(|r| r.status() == StatusCode::CREATED)
        .count();
    let refused = responses
        .iter()
        .filter(|r| r.status() == StatusCode::UNPROCESSABLE_ENTITY)
        .count();
    assert_eq!((created, refused), (3, 2));
    let reserved: i64 = sqlx::query_scalar(
        "SELECT sum(amount_pence)::BIGINT FROM refunds WHERE status = 'PENDING'",
    )
    .fetch_one(&pay.db)
    .await
    .expect("sum");
    assert_eq!(reserved, 9_000);
}

#[tokio::test]
async fn only_admins_refund_and_only_succeeded_payments() {
    let pay = PayApp::spawn().await;
    let shopper = customer();
    let order = pay.order(&shopper, 5_000).await;
    let (pending, _) = pay.intent(&shopper, order).await;

    let by_customer = refund(
        &pay,
        &shopper,
        "k",
        json!({"paymentId": pending, "reason": "x"}),
    )
    .await;
    let unpaid = refund(
        &pay,
        &admin(),
        "k",
        json!({"paymentId": pending, "reason": "x"}),
    )
    .await;
    let unknown = refund(
        &pay,
        &admin(),
        "k",
        json!({"paymentId": Uuid::now_v7(), "reason": "x"}),
    )
    .await;
    let no_reason = refund(
        &pay,
        &admin(),
        "k",
        json!({"paymentId": pending, "reason": ""}),
    )
    .await;

    assert_eq!(by_customer.status(), StatusCode::FORBIDDEN);
    assert_eq!(unpaid.status(), StatusCode::CONFLICT);
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(no_reason.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(pay.stripe.count("POST", "/v1/refunds"), 0);
}

#[tokio::test]
async fn a_refund_request_replays_under_its_key() {
    let pay = PayApp::spawn().await;
    let boss = admin();
    let (_, payment, _) = pay.paid_order(&customer(), 10_000).await;
    let body = json!({"paymentId": payment, "amount": 1_000, "reason": "goodwill"});

    let first = refund(&pay, &boss, "same", body.clone())
        .await
        .bytes()
        .await
        .expect("body");
    let again = refund(&pay, &boss, "same", body)
        .await
        .bytes()
        .await
        .expect("body");
    let other = refund(
        &pay,
        &boss,
        "same",
        json!({"paymentId": payment, "amount": 2_000, "reason": "goodwill"}),
    )
    .await;

    assert_eq!(first, again);
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(pay.count("refunds").await, 1);
    assert_eq!(pay.stripe.count("POST", "/v1/refunds"), 1);
}

#[tokio::test]
async fn a_refund_stripe_fails_or_refuses_releases_its_amount() {
    let pay = PayApp::spawn().await;
    let boss = admin();
    let (order, payment, _) = pay.paid_order(&customer(), 10_000).await;
    pay.stripe
        .fail_next(Operation::CreateRefund, Failure::api_error());

    let down = refund(
        &pay,
        &boss,
        "d1",
        json!({"paymentId": payment, "reason": "x"}),
    )
    .await;
    assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);

    let later = refund(
        &pay,
        &boss,
        "d2",
        json!({"paymentId": payment, "reason": "x"}),
    )
    .await;
    assert_eq!(later.status(), StatusCode::CREATED);
    let later: Value = later.json().await.expect("json");
    assert_eq!(
        later["amount"], 10_000,
        "the failed attempt reserved nothing"
    );
    assert_eq!(
        settle(
            &pay,
            later["stripeRefundId"].as_str().expect("id"),
            "failed"
        )
        .await,
        "APPLIED"
    );

    let statuses: Vec<String> =
        sqlx::query_scalar("SELECT status FROM refunds ORDER BY created_at")
            .fetch_all(&pay.db)
            .await
            .expect("refunds");
    assert_eq!(statuses, ["FAILED", "FAILED"]);
    assert_eq!(pay.order_state(order).await.1, "PAID");
    assert_eq!(pay.outbox_count("refund.issued").await, 0);
}

#[tokio::test]
async fn a_duplicate_settlement_and_a_charge_refunded_after_it_change_nothing() {
    let pay = PayApp::spawn().await;
    let shopper = customer();
    let (_, payment, intent) = pay.paid_order(&shopper, 10_000).await;
    let created = refund(
        &pay,
        &admin(),
        "x",
        json!({"paymentId": payment, "reason": "x"}),
    )
    .await;
    let created: Value = created.json().await.expect("json");
    let stripe_id = created["stripeRefundId"].as_str().expect("id").to_owned();
    let object = pay
        .stripe
        .settle_refund(&stripe_id, "succeeded")
        .expect("refund");
    let event = pay.stripe.event("refund.updated", object);

    assert_eq!(pay.deliver(&event).await, "APPLIED");
    assert_eq!(pay.deliver(&event).await, "DUPLICATE");
    let charge = pay.stripe.charge_of(&intent).expect("charge");
    assert_eq!(
        pay.deliver(&pay.stripe.event("charge.refunded", charge))
            .await,
        "STALE"
    );

    assert_eq!(pay.outbox_count("refund.issued").await, 1);
    let refunded: i64 =
        sqlx::query_scalar("SELECT amount_refunded_pence FROM payments WHERE id = $1")
            .bind(payment)
            .fetch_one(&pay.db)
            .await
            .expect("payment");
    assert_eq!(refunded, 10_000);
    let (status, seen) = pay
        .get_as(
            &shopper,
            &format!("/v1/refunds/{}", created["id"].as_str().expect("id")),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen["status"], "SUCCEEDED");
    let (theirs, _) = pay
        .get_as(
            &customer(),
            &format!("/v1/refunds/{}", created["id"].as_str().expect("id")),
        )
        .await;
    assert_eq!(theirs, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn charge_refunded_listing_the_refund_settles_it() {
    let pay = PayApp::spawn().await;
    let (order, payment, intent) = pay.paid_order(&customer(), 4_000).await;
    let created = refund(
        &pay,
        &admin(),
        "y",
        json!({"paymentId": payment, "reason": "x"}),
    )
    .await;
    let created: Value = created.json().await.expect("json");
    pay.stripe
        .settle_refund(created["stripeRefundId"].as_str().expect("id"), "succeeded")
        .expect("refund");
    let charge = pay.stripe.charge_of(&intent).expect("charge");

    assert_eq!(
        pay.deliver(&pay.stripe.event("charge.refunded", charge))
            .await,
        "APPLIED"
    );

    assert_eq!(pay.order_state(order).await.1, "REFUNDED");
    assert_eq!(pay.outbox_count("refund.issued").await, 1);
}
