//! The fake answers async-stripe (the client order-payment uses) the way Stripe does: its
//! objects parse, its errors parse, idempotency replays, and its signed events pass
//! async-stripe's own webhook verification.

use std::collections::HashMap;

use stripe::{Client, ClientBuilder, RequestStrategy, StripeError, StripeRequest};
use stripe_core::PaymentIntentStatus;
use stripe_core::payment_intent::{
    CancelPaymentIntent, CreatePaymentIntent, RetrievePaymentIntent,
};
use stripe_core::refund::{CreateRefund, RetrieveRefund};
use stripe_fake::{Failure, FakeStripe, Operation, webhook};
use stripe_webhook::{EventObject, Webhook};

fn client(fake: &FakeStripe) -> Client {
    ClientBuilder::new("sk_test_fake")
        .url(fake.base_url())
        .build()
        .expect("client")
}

fn create(amount: i64, order: &str) -> CreatePaymentIntent {
    CreatePaymentIntent::new(amount, stripe_types::Currency::GBP)
        .metadata(HashMap::from([("orderId".to_owned(), order.to_owned())]))
}

#[tokio::test]
async fn a_created_intent_parses_and_can_be_retrieved() {
    let fake = FakeStripe::start().await.expect("fake");
    let client = client(&fake);

    let intent = create(129_900, "o-1").send(&client).await.expect("create");
    assert_eq!(intent.amount, 129_900);
    assert_eq!(intent.status, PaymentIntentStatus::RequiresPaymentMethod);
    assert_eq!(
        intent.metadata.get("orderId").map(String::as_str),
        Some("o-1")
    );
    assert!(
        intent
            .client_secret
            .as_deref()
            .is_some_and(|s| s.starts_with(intent.id.as_str()))
    );

    let again = RetrievePaymentIntent::new(intent.id.clone())
        .send(&client)
        .await
        .expect("retrieve");
    assert_eq!(again.id, intent.id);
    assert_eq!(fake.count("POST", "/v1/payment_intents"), 1);
}

#[tokio::test]
async fn the_same_idempotency_key_returns_the_same_intent_and_other_parameters_are_refused() {
    let fake = FakeStripe::start().await.expect("fake");
    let client = client(&fake);
    let key = || RequestStrategy::Idempotent(stripe::IdempotencyKey::new("key-1").expect("key"));

    let first = create(5000, "o-1")
        .customize()
        .request_strategy(key())
        .send(&client)
        .await
        .expect("first");
    let second = create(5000, "o-1")
        .customize()
        .request_strategy(key())
        .send(&client)
        .await
        .expect("second");
    assert_eq!(first.id, second.id);
    assert_eq!(fake.payment_intents().len(), 1);

    let other = create(6000, "o-1")
        .customize()
        .request_strategy(key())
        .send(&client)
        .await;
    match other {
        Err(StripeError::Stripe(error, 400)) => {
            assert_eq!(error.type_.as_str(), "idempotency_error")
        }
        other => panic!("expected an idempotency error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_scripted_card_error_reaches_the_client_as_a_stripe_error() {
    let fake = FakeStripe::start().await.expect("fake");
    let client = client(&fake);
    fake.fail_next(Operation::CreatePaymentIntent, Failure::card_declined());

    match create(5000, "o-1").send(&client).await {
        Err(StripeError::Stripe(error, 402)) => {
            assert_eq!(error.type_.as_str(), "card_error");
            assert_eq!(
                error.code.map(|c| c.as_str().to_owned()).as_deref(),
                Some("card_declined")
            );
        }
        other => panic!("expected a card error, got {other:?}"),
    }
    // The failure was for one call only.
    create(5000, "o-1")
        .send(&client)
        .await
        .expect("the next call succeeds");
}

#[tokio::test]
async fn intents_move_to_succeeded_and_refunds_are_bounded_by_the_charge() {
    let fake = FakeStripe::start().await.expect("fake");
    let client = client(&fake);
    let intent = create(10_000, "o-1").send(&client).await.expect("create");
    fake.succeed_intent(intent.id.as_str())
        .expect("known intent");

    let paid = RetrievePaymentIntent::new(intent.id.clone())
        .send(&client)
        .await
        .expect("retrieve");
    assert_eq!(paid.status, PaymentIntentStatus::Succeeded);
    assert_eq!(paid.amount_received, 10_000);

    let refund = CreateRefund::new()
        .payment_intent(intent.id.as_str())
        .amount(4000)
        .send(&client)
        .await
        .expect("refund");
    assert_eq!(refund.amount, 4000);
    assert_eq!(refund.status.as_deref(), Some("pending"));
    let too_much = CreateRefund::new()
        .payment_intent(intent.id.as_str())
        .amount(6001)
        .send(&client)
        .await;
    assert!(
        matches!(too_much, Err(StripeError::Stripe(_, 400))),
        "{too_much:?}"
    );

    fake.settle_refund(refund.id.as_str(), "succeeded")
        .expect("known refund");
    let settled = RetrieveRefund::new(refund.id.clone())
        .send(&client)
        .await
        .expect("retrieve");
    assert_eq!(settled.status.as_deref(), Some("succeeded"));

    let cancel = CancelPaymentIntent::new(intent.id.clone())
        .send(&client)
        .await;
    assert!(
        matches!(cancel, Err(StripeError::Stripe(_, 400))),
        "a succeeded intent cannot be cancelled"
    );
}

#[tokio::test]
async fn signed_events_pass_async_stripes_own_verification() {
    let fake = FakeStripe::start().await.expect("fake");
    let client = client(&fake);
    let intent = create(2500, "o-1").send(&client).await.expect("create");
    let succeeded = fake.succeed_intent(intent.id.as_str()).expect("intent");
    let failed_intent = create(2500, "o-2").send(&client).await.expect("create");
    let failed = fake
        .fail_intent(
            failed_intent.id.as_str(),
            "card_declined",
            "Your card was declined.",
        )
        .expect("intent");
    let refund = CreateRefund::new()
        .payment_intent(intent.id.as_str())
        .send(&client)
        .await
        .expect("refund");
    let settled = fake
        .settle_refund(refund.id.as_str(), "succeeded")
        .expect("refund");
    let charge = fake.charge_of(intent.id.as_str()).expect("charge");
    let dispute = fake.dispute(intent.id.as_str()).expect("dispute");

    let cases = [
        ("payment_intent.succeeded", succeeded),
        ("payment_intent.payment_failed", failed),
        ("refund.updated", settled),
        ("charge.refunded", charge),
        ("charge.dispute.created", dispute),
    ];
    for (event_type, object) in cases {
        let event = fake.event(event_type, object);
        let signed = webhook::sign(&event, "whsec_test");
        let parsed = Webhook::construct_event(&signed.body, &signed.signature, "whsec_test")
            .unwrap_or_else(|e| panic!("{event_type}: {e:?}"));
        let known = match (event_type, &parsed.data.object) {
            ("payment_intent.succeeded", EventObject::PaymentIntentSucceeded(pi)) => {
                pi.status == PaymentIntentStatus::Succeeded
            }
            ("payment_intent.payment_failed", EventObject::PaymentIntentPaymentFailed(pi)) => {
                pi.last_payment_error.is_some()
            }
            ("refund.updated", EventObject::RefundUpdated(r)) => {
                r.status.as_deref() == Some("succeeded")
            }
            ("charge.refunded", EventObject::ChargeRefunded(c)) => c.amount_refunded == 2500,
            ("charge.dispute.created", EventObject::ChargeDisputeCreated(d)) => d.amount == 2500,
            _ => false,
        };
        assert!(known, "{event_type} parsed as {:?}", parsed.type_);
        assert!(Webhook::construct_event(&signed.body, &signed.signature, "whsec_other").is_err());
    }
}
