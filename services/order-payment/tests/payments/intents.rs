//! `POST /v1/payments/create-intent` and reading payments.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use stripe_fake::{Failure, Operation};
use uuid::Uuid;

use crate::support::{PayApp, admin, customer};

#[tokio::test]
async fn creating_an_intent_for_an_unpaid_order_returns_its_client_secret_and_records_a_pending_payment()
 {
    let pay = PayApp::spawn().await;
    let shopper = customer();
    let order = pay.order(&shopper, 129_900).await;

    let response = pay.create_intent(&shopper, order, "attempt-1").await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["amount"], 129_900);
    assert_eq!(body["currency"], "GBP");
    let intent_id = body["paymentIntentId"].as_str().expect("intent id");
    assert!(
        body["clientSecret"]
            .as_str()
            .expect("secret")
            .starts_with(intent_id)
    );
    let intent = pay
        .stripe
        .payment_intent(intent_id)
        .expect("the fake has it");
    assert_eq!(intent["amount"], 129_900);
    assert_eq!(intent["currency"], "gbp");
    assert_eq!(intent["metadata"]["orderId"], order.to_string());
    assert_eq!(intent["metadata"]["userId"], shopper.id.to_string());
    let call = &pay.stripe.calls()[0];
    assert!(
        call.idempotency_key
            .as_deref()
            .is_some_and(|k| k.starts_with("lomash-intent-"))
    );
    let payment: Uuid = body["paymentId"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("id");
    assert_eq!(pay.payment_status(payment).await, "PENDING");
    assert_eq!(
        pay.order_state(order).await,
        ("PENDING".into(), "UNPAID".into())
    );
}

#[tokio::test]
async fn another_customers_order_and_an_unknown_order_are_404_without_calling_stripe() {
    let pay = PayApp::spawn().await;
    let owner = customer();
    let order = pay.order(&owner, 5_000).await;

    let theirs = pay.create_intent(&customer(), order, "k1").await;
    let unknown = pay.create_intent(&owner, Uuid::now_v7(), "k2").await;

    assert_eq!(theirs.status(), StatusCode::NOT_FOUND);
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(pay.stripe.calls().len(), 0);
    assert_eq!(pay.count("payments").await, 0);
}

#[tokio::test]
async fn a_paid_order_cannot_be_paid_again() {
    let pay = PayApp::spawn().await;
    let shopper = customer();
    let (order, _, _) = pay.paid_order(&shopper, 5_000).await;

    let response = pay.create_intent(&shopper, order, "again").await;

    assert_eq!(response.status(), StatusCode::CONFLICT);
    let problem: Value = response.json().await.expect("json");
    assert!(
        problem["type"]
            .as_str()
            .unwrap_or_default()
            .ends_with("order-already-paid")
    );
    assert_eq!(pay.stripe.count("POST", "/v1/payment_intents"), 1);
}

#[tokio::test]
async fn an_intent_needs_an_idempotency_key_and_a_valid_body() {
    let pay = PayApp::spawn().await;
    let shopper = customer();
    let order = pay.order(&shopper, 5_000).await;

    let no_key = pay
        .app
        .request_as(Method::POST, "/v1/payments/create-intent", &shopper)
        .json(&json!({ "orderId": order }))
        .send()
        .await
        .expect("reaches");
    let bad_body = pay
        .app
        .request_as(Method::POST, "/v1/payments/create-intent", &shopper)
        .header("Idempotency-Key", "k")
        .json(&json!({ "orderId": "not-a-uuid" }))
        .send()
        .await
        .expect("reaches");
    let anonymous = pay
        .app
        .request(Method::POST, "/v1/payments/create-intent")
        .header("Idempotency-Key", "k")
        .json(&json!({ "orderId": order }))
        .send()
        .await
        .expect("reaches");

    assert_eq!(no_key.status(), StatusCode::BAD_REQUEST);
    assert!(bad_body.status().is_client_error());
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(pay.stripe.calls().len(), 0);
}

#[tokio::test]
async fn the_same_key_replays_the_same_bytes_and_another_body_is_422() {
    let pay = PayApp::spawn().await;
    let shopper = customer();
    let order = pay.order(&shopper, 5_000).await;
    let other_order = pay.order(&shopper, 7_000).await;

    let first = pay.create_intent(&shopper, order, "same-key").await;
    let first_status = first.status();
    let first_bytes = first.bytes().await.expect("body");
    let replay = pay.create_intent(&shopper, order, "same-key").await;
    let replay_replayed = replay.headers().get("idempotent-replayed").cloned();
    let replay_status = replay.status();
    let replay_bytes = replay.bytes().await.expect("body");
    let reused = pay.create_intent(&shopper, other_order, "same-key").await;

    assert_eq!(first_status, StatusCode::CREATED);
    assert_eq!(replay_status, StatusCode::CREATED);
    assert_eq!(first_bytes, replay_bytes, "byte-identical replay");
    assert_eq!(
        replay_replayed.as_ref().and_then(|v| v.to_str().ok()),
        Some("true")
    );
    assert_eq!(reused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(pay.stripe.count("POST", "/v1/payment_intents"), 1);
    assert_eq!(pay.count("payments").await, 1);
}

#[tokio::test]
async fn twenty_concurrent_identical_requests_create_one_payment_intent() {
    let pay = PayApp::spawn().await;
    let shopper = customer();
    let order = pay.order(&shopper, 5_000).await;

    let responses = futures::future::join_all(
        (0..20).map(|_| pay.create_intent(&shopper, order, "concurrent-key")),
    )
    .await;

    let mut bodies = Vec::new();
    for response in responses {
        let status = response.status();
        assert!(
            status == StatusCode::CREATED || status == StatusCode::CONFLICT,
            "unexpected {status}"
        );
        if status == StatusCode::CREATED {
            bodies.push(response.bytes().await.expect("body"));
        }
    }
    assert!(!bodies.is_empty());
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "every success is the same answer"
    );
    assert_eq!(pay.stripe.count("POST", "/v1/payment_intents"), 1);
    assert_eq!(pay.stripe.payment_intents().len(), 1);
    assert_eq!(pay.count("payments").await, 1);
}

#[tokio::test]
async fn stripe_being_down_is_503_and_records_nothing() {
    let pay = PayApp::spawn().await;
    let shopper = customer();
    let order = pay.order(&shopper, 5_000).await;
    pay.stripe
        .fail_next(Operation::CreatePaymentIntent, Failure::api_error());

    let response = pay.create_intent(&shopper, order, "down").await;

    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(pay.count("payments").await, 0);
    // The key was released: a new attempt with a new key goes through.
    let retry = pay.create_intent(&shopper, order, "down-retry").await;
    assert_eq!(retry.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_payment_is_visible_to_its_owner_and_admins_only() {
    let pay = PayApp::spawn().await;
    let shopper = customer();
    let order = pay.order(&shopper, 5_000).await;
    let (payment, intent) = pay.intent(&shopper, order).await;

    let (mine, body) = pay
        .get_as(&shopper, &format!("/v1/payments/{payment}"))
        .await;
    let (theirs, _) = pay
        .get_as(&customer(), &format!("/v1/payments/{payment}"))
        .await;
    let (as_admin, _) = pay
        .get_as(&admin(), &format!("/v1/payments/{payment}"))
        .await;
    let (list, listed) = pay
        .get_as(&shopper, &format!("/v1/orders/{order}/payments"))
        .await;
    let (other_list, _) = pay
        .get_as(&customer(), &format!("/v1/orders/{order}/payments"))
        .await;

    assert_eq!(mine, StatusCode::OK);
    assert_eq!(body["paymentIntentId"], intent);
    assert_eq!(body["status"], "PENDING");
    assert!(
        body.get("clientSecret").is_none(),
        "the client secret is not served again"
    );
    assert_eq!(theirs, StatusCode::NOT_FOUND);
    assert_eq!(as_admin, StatusCode::OK);
    assert_eq!(list, StatusCode::OK);
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert_eq!(other_list, StatusCode::NOT_FOUND);
}

/// The payment, webhook, invoice and refund routes this part serves; a change here is an API
/// change (and the gateway's table must follow).
#[test]
fn the_openapi_document_lists_every_payment_route() {
    let routes = service_kit::service::route_list::<order_payment_service::OrderPaymentService>();
    for route in [
        "POST /v1/payments/create-intent",
        "GET /v1/payments/{id}",
        "GET /v1/orders/{id}/payments",
        "POST /v1/webhooks/stripe",
        "GET /v1/invoices/{id}",
        "GET /v1/orders/{id}/invoice",
        "POST /v1/admin/invoices/{id}/void",
        "POST /v1/refunds",
        "GET /v1/refunds/{id}",
        "GET /v1/orders/{id}/refunds",
    ] {
        assert!(
            routes.iter().any(|r| r == route),
            "{route} is not in the OpenAPI document"
        );
    }
}
