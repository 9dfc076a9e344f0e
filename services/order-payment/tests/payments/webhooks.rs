//! `POST /v1/webhooks/stripe`: signatures, exactly-once effects, forward-only state, and the
//! reconciliation job for missed webhooks.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{OLD_SECRET, PayApp, SECRET, customer};

#[tokio::test]
async fn seed_001_flow_4_order_intent_signed_success_confirms_invoices_and_announces() {
    let pay = PayApp::spawn().await;
    let shopper = customer();
    let order = pay.order(&shopper, 129_900).await;
    let (payment, intent) = pay.intent(&shopper, order).await;

    let outcome = pay.succeed(&intent).await;

    assert_eq!(outcome, "APPLIED");
    assert_eq!(
        pay.order_state(order).await,
        ("CONFIRMED".into(), "PAID".into())
    );
    assert_eq!(pay.payment_status(payment).await, "SUCCEEDED");
    let history: Vec<(String, String)> = sqlx::query_as(
        "SELECT to_status, actor_role FROM order_status_history WHERE order_id = $1",
    )
    .bind(order)
    .fetch_all(&pay.db)
    .await
    .expect("history");
    assert_eq!(history, vec![("CONFIRMED".to_owned(), "SYSTEM".to_owned())]);
    let (status, invoice) = pay
        .get_as(&shopper, &format!("/v1/orders/{order}/invoice"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(invoice["total"], 129_900);
    let number = invoice["invoiceNumber"]
        .as_str()
        .expect("number")
        .to_owned();
    let succeeded = pay.outbox_payloads("payment.succeeded").await;
    assert_eq!(succeeded.len(), 1);
    assert_eq!(succeeded[0]["orderId"], order.to_string());
    assert_eq!(succeeded[0]["paymentId"], payment.to_string());
    assert_eq!(succeeded[0]["amount"], 129_900);
    assert_eq!(succeeded[0]["providerPaymentId"], intent);
    assert_eq!(succeeded[0]["invoiceNumber"], number);
}

#[tokio::test]
async fn a_declined_card_then_a_retry_that_succeeds_leaves_two_payments_and_a_paid_order() {
    let pay = PayApp::spawn().await;
    let shopper = customer();
    let order = pay.order(&shopper, 25_000).await;
    let (first, first_intent) = pay.intent(&shopper, order).await;

    assert_eq!(pay.decline(&first_intent).await, "APPLIED");

    assert_eq!(pay.payment_status(first).await, "FAILED");
    let (code, message): (Option<String>, Option<String>) =
        sqlx::query_as("SELECT failure_code, failure_message FROM payments WHERE id = $1")
            .bind(first)
            .fetch_one(&pay.db)
            .await
            .expect("payment");
    assert_eq!(code.as_deref(), Some("generic_decline"));
    assert_eq!(message.as_deref(), Some("Your card was declined."));
    assert_eq!(
        pay.order_state(order).await,
        ("PENDING".into(), "UNPAID".into())
    );
    let failed = pay.outbox_payloads("payment.failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["paymentId"], first.to_string());

    let (second, second_intent) = pay.intent(&shopper, order).await;
    assert_eq!(pay.succeed(&second_intent).await, "APPLIED");

    assert_ne!(first, second);
    assert_eq!(pay.payment_status(first).await, "FAILED");
    assert_eq!(pay.payment_status(second).await, "SUCCEEDED");
    assert_eq!(
        pay.order_state(order).await,
        ("CONFIRMED".into(), "PAID".into())
    );
    assert_eq!(pay.outbox_count("payment.succeeded").await, 1);
}

#[tokio::test]
async fn a_redelivered_event_changes_nothing() {
    let pay = PayApp::spawn().await;
    let shopper = customer();
    let order = pay.order(&shopper, 10_000).await;
    let (_, intent) = pay.intent(&shopper, order).await;
    let object = pay.stripe.succeed_intent(&intent).expect("intent");
    let event = pay.stripe.event("payment_intent.succeeded", object);

    let first = pay.deliver(&event).await;
    let again = pay.deliver(&event).await;

    assert_eq!((first.as_str(), again.as_str()), ("APPLIED", "DUPLICATE"));
    assert_eq!(pay.count("invoices").await, 1);
    assert_eq!(pay.count("stripe_events").await, 1);
    assert_eq!(pay.outbox_count("payment.succeeded").await, 1);
}

#[tokio::test]
async fn a_late_failure_after_success_never_downgrades_the_payment() {
    let pay = PayApp::spawn().await;
    let shopper = customer();
    let order = pay.order(&shopper, 10_000).await;
    let (payment, intent) = pay.intent(&shopper, order).await;
    // Stripe sent the failure of the first attempt before the success, but it arrives after.
    let failed_object = pay
        .stripe
        .fail_intent(&intent, "card_declined", "Your card was declined.")
        .expect("intent");
    let late_failure = pay
        .stripe
        .event("payment_intent.payment_failed", failed_object);
    assert_eq!(pay.succeed(&intent).await, "APPLIED");

    let outcome = pay.deliver(&late_failure).await;

    assert_eq!(outcome, "STALE");
    assert_eq!(pay.payment_status(payment).await, "SUCCEEDED");
    assert_eq!(
        pay.order_state(order).await,
        ("CONFIRMED".into(), "PAID".into())
    );
    assert_eq!(pay.outbox_count("payment.failed").await, 0);
    // A late cancellation cannot undo a success either.
    let intent_now = pay.stripe.payment_intent(&intent).expect("intent");
    assert_eq!(
        pay.deliver(&pay.stripe.event("payment_intent.canceled", intent_now))
            .await,
        "STALE"
    );
    assert_eq!(pay.payment_status(payment).await, "SUCCEEDED");
}

#[tokio::test]
async fn missing_malformed_wrong_and_expired_signatures_are_400_and_change_nothing() {
    let pay = PayApp::spawn().await;
    let shopper = customer();
    let order = pay.order(&shopper, 10_000).await;
    let (payment, intent) = pay.intent(&shopper, order).await;
    let object = pay.stripe.succeed_intent(&intent).expect("intent");
    let event = pay.stripe.event("payment_intent.succeeded", object);
    let good = stripe_fake::sign(&event, SECRET);
    let now = chrono::Utc::now().timestamp();

    let cases: Vec<(&str, String, Option<String>)> = vec![
        ("missing", good.body.clone(), None),
        ("malformed", good.body.clone(), Some("nonsense".to_owned())),
        (
            "wrong secret",
            good.body.clone(),
            Some(stripe_fake::sign(&event, "whsec_attacker").signature),
        ),
        (
            "tampered body",
            good.body.replace("10000", "1"),
            Some(good.signature.clone()),
        ),
        (
            "expired",
            good.body.clone(),
            Some(stripe_fake::sign_at(&event, SECRET, now - 301).signature),
        ),
        (
            "from the future",
            good.body.clone(),
            Some(stripe_fake::sign_at(&event, SECRET, now + 600).signature),
        ),
    ];
    for (case, body, signature) in cases {
        let response = pay.post_webhook(&body, signature.as_deref()).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{case}");
        assert_eq!(
            response.headers()["content-type"]
                .to_str()
                .unwrap_or_default(),
            "application/problem+json",
            "{case}"
        );
    }

    assert_eq!(pay.count("stripe_events").await, 0);
    assert_eq!(pay.payment_status(payment).await, "PENDING");
    assert_eq!(
        pay.order_state(order).await,
        ("PENDING".into(), "UNPAID".into())
    );
    assert_eq!(pay.outbox_count("payment.succeeded").await, 0);
}

#[tokio::test]
async fn an_event_signed_with_the_secret_being_rotated_out_is_accepted() {
    let pay = PayApp::spawn().await;
    let shopper = customer();
    let order = pay.order(&shopper, 10_000).await;
    let (_, intent) = pay.intent(&shopper, order).await;
    let object = pay.stripe.succeed_intent(&intent).expect("intent");
    let event = pay.stripe.event("payment_intent.succeeded", object);
    let body = event.to_string();
    let both = stripe_fake::signature_header(
        &["whsec_unknown", OLD_SECRET],
        chrono::Utc::now().timestamp(),
        &body,
    );

    let response = pay.post_webhook(&body, Some(&both)).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        pay.order_state(order).await,
        ("CONFIRMED".into(), "PAID".into())
    );
}

#[tokio::test]
async fn unknown_event_types_and_unknown_intents_are_acknowledged_and_ignored() {
    let pay = PayApp::spawn().await;
    let plan = json!({"id": "price_1", "object": "plan"});

    let unknown_type = pay
        .deliver(&pay.stripe.event("customer.subscription.paused", plan))
        .await;
    let foreign = stripe_fake::objects::payment_intent(500, "gbp", json!({}), None, None);
    let unknown_intent = pay
        .deliver(&pay.stripe.event("payment_intent.succeeded", foreign))
        .await;

    assert_eq!(unknown_type, "IGNORED");
    assert_eq!(unknown_intent, "IGNORED");
    assert_eq!(pay.count("stripe_events").await, 2);
}

#[tokio::test]
async fn a_dispute_flags_the_order() {
    let pay = PayApp::spawn().await;
    let shopper = customer();
    let (order, _, intent) = pay.paid_order(&shopper, 10_000).await;
    let dispute = pay.stripe.dispute(&intent).expect("dispute");
    let dispute_id = dispute["id"].as_str().expect("id").to_owned();

    let outcome = pay
        .deliver(&pay.stripe.event("charge.dispute.created", dispute))
        .await;

    assert_eq!(outcome, "APPLIED");
    let (flagged, reason): (Option<String>, Option<String>) =
        sqlx::query_as("SELECT dispute_id, dispute_reason FROM orders WHERE id = $1")
            .bind(order)
            .fetch_one(&pay.db)
            .await
            .expect("order");
    assert_eq!(flagged, Some(dispute_id));
    assert_eq!(reason.as_deref(), Some("fraudulent"));
}

#[tokio::test]
async fn a_payment_for_an_order_cancelled_meanwhile_is_refunded_in_full() {
    let pay = PayApp::spawn().await;
    let shopper = customer();
    let order = pay.order(&shopper, 8_000).await;
    let (payment, intent) = pay.intent(&shopper, order).await;
    sqlx::query("UPDATE orders SET status = 'CANCELLED', cancelled_at = now() WHERE id = $1")
        .bind(order)
        .execute(&pay.db)
        .await
        .expect("cancel");

    assert_eq!(pay.succeed(&intent).await, "APPLIED");

    assert_eq!(pay.payment_status(payment).await, "SUCCEEDED");
    assert_eq!(
        pay.order_state(order).await,
        ("CANCELLED".into(), "UNPAID".into())
    );
    assert_eq!(pay.count("invoices").await, 0);
    // The refund is asked for in the background, after the webhook was answered.
    let mut refunded = None;
    for _ in 0..100 {
        refunded = sqlx::query_scalar::<_, i64>(
            "SELECT amount_pence FROM refunds WHERE payment_id = $1 AND stripe_refund_id IS NOT NULL",
        )
        .bind(payment)
        .fetch_optional(&pay.db)
        .await
        .expect("refunds");
        if refunded.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(refunded, Some(8_000));
    assert_eq!(pay.stripe.count("POST", "/v1/refunds"), 1);
}

#[tokio::test]
async fn the_reconciliation_job_applies_a_success_whose_webhook_never_came() {
    let pay = PayApp::spawn_with(&[("PAYMENT_RECONCILE_INTERVAL_SECS", "1")]).await;
    let shopper = customer();
    let order = pay.order(&shopper, 10_000).await;
    let (payment, intent) = pay.intent(&shopper, order).await;
    let (fresh, fresh_intent) = {
        let other = pay.order(&shopper, 3_000).await;
        pay.intent(&shopper, other).await
    };
    pay.stripe.succeed_intent(&intent).expect("intent");
    pay.stripe.succeed_intent(&fresh_intent).expect("intent");
    // Only the first began over an hour ago.
    sqlx::query("UPDATE payments SET created_at = now() - interval '2 hours' WHERE id = $1")
        .bind(payment)
        .execute(&pay.db)
        .await
        .expect("age the payment");

    let mut status = String::new();
    for _ in 0..100 {
        status = pay.payment_status(payment).await;
        if status == "SUCCEEDED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    assert_eq!(status, "SUCCEEDED");
    assert_eq!(
        pay.order_state(order).await,
        ("CONFIRMED".into(), "PAID".into())
    );
    assert_eq!(pay.outbox_count("payment.succeeded").await, 1);
    assert_eq!(
        pay.payment_status(fresh).await,
        "PENDING",
        "recent payments wait for their webhook"
    );
    let retrieved: Vec<Value> = pay
        .stripe
        .calls()
        .into_iter()
        .filter(|c| c.method == "GET")
        .map(|c| json!(c.path))
        .collect();
    assert!(retrieved.contains(&json!(format!("/v1/payment_intents/{intent}"))));
    assert!(!retrieved.contains(&json!(format!("/v1/payment_intents/{fresh_intent}"))));
}
