//! Events naming an account by user id only, handled before (or without) the `user.created`
//! that supplies its address: the consumer runs several events at once, so that order is not
//! guaranteed.

use chrono::{Duration, Utc};
use event_bus::OutgoingMessage;
use reqwest::Method;
use service_kit::event_bus;
use service_kit::shared_types::DomainEvent;
use service_kit::shared_types::order_payment::PaymentSucceeded;
use uuid::Uuid;

use crate::events::{at, user_created};
use crate::helpers::Api;

fn payment_of(user_id: Uuid) -> DomainEvent<PaymentSucceeded> {
    DomainEvent::new(
        "order-payment",
        PaymentSucceeded {
            order_id: Uuid::now_v7(),
            payment_id: Uuid::now_v7(),
            user_id: Some(user_id),
            amount: 45_000,
            currency: "GBP".into(),
            invoice_number: Some("INV-2026-000777".into()),
            provider_payment_id: "pi_race".into(),
            customer_email: None,
            paid_at: at("2026-12-01T10:00:00Z"),
        },
    )
}

/// Waits until `/metrics` shows a retried `topic` event.
async fn retried_once(api: &Api, topic: &str) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, body) = api.send(Method::GET, "/metrics", None, None).await;
        let text = body.as_str().unwrap_or_default().to_owned();
        let retried = text.lines().any(|line| {
            line.starts_with("events_consumed_total")
                && line.contains(&format!("topic=\"{topic}\""))
                && line.contains("outcome=\"retried\"")
        });
        if retried {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the {topic} event was never retried"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn recipients_a_receipt_handled_before_user_created_waits_for_the_address() {
    let api = Api::spawn().await;
    let ann = Uuid::now_v7();
    let paid = payment_of(ann);

    // The receipt arrives first: its handler finds no address and asks to be retried.
    let bus = event_bus::connect(api.app.bus_config.clone())
        .await
        .unwrap();
    let outcome = bus
        .publish_batch(&[OutgoingMessage {
            event_id: paid.id,
            topic: paid.topic.clone(),
            body: serde_json::to_vec(&paid).unwrap(),
        }])
        .await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    retried_once(&api, "payment.succeeded").await;
    assert!(api.rows_of(paid.id).await.is_empty(), "nothing sent yet");

    // Then the account: the retried receipt now goes to its address, once.
    api.deliver(&user_created(ann, "ann.race@example.com", false))
        .await;
    let rows = api.settled(paid.id).await;
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0].template, "payment_receipt");
    assert_eq!(rows[0].recipient, "ann.race@example.com");
    assert_eq!(rows[0].status, "SENT");
}

#[tokio::test]
async fn recipients_an_old_event_for_an_unknown_account_is_skipped_not_retried() {
    let api = Api::spawn().await;
    let mut paid = payment_of(Uuid::now_v7());
    paid.timestamp = Utc::now() - Duration::hours(2);
    api.deliver(&paid).await;
    assert!(
        api.rows_of(paid.id).await.is_empty(),
        "no address is ever guessed"
    );
}
