#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use chrono::{TimeZone, Utc};
use serde_json::json;
use shared_types::{
    DecodeError, DomainEvent, EventPayload, RawEvent,
    appointment::{AppointmentType, BookingCreated},
    auth::{OtpCode, OtpPurpose, OtpRequested},
    order_payment::PaymentSucceeded,
    topics,
};
use uuid::Uuid;

fn payment() -> PaymentSucceeded {
    PaymentSucceeded {
        order_id: Uuid::now_v7(),
        payment_id: Uuid::now_v7(),
        user_id: Some(Uuid::now_v7()),
        amount: 129_900,
        currency: "GBP".into(),
        invoice_number: Some("INV-2026-0001".into()),
        provider_payment_id: "pi_3Nabc".into(),
        customer_email: None,
        paid_at: Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap(),
    }
}

#[test]
fn envelope_round_trips_with_camel_case_names() {
    let event = DomainEvent::new("order-payment", payment())
        .correlation_id("req-42")
        .traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");

    let json = serde_json::to_value(&event).unwrap();

    for key in [
        "id",
        "topic",
        "version",
        "timestamp",
        "producer",
        "correlationId",
        "traceparent",
        "payload",
    ] {
        assert!(json.get(key).is_some(), "missing {key} in {json}");
    }
    assert_eq!(json["topic"], "payment.succeeded");
    assert_eq!(json["version"], 1);
    assert_eq!(json["payload"]["orderId"], json!(event.payload.order_id));
    assert_eq!(json["payload"]["amount"], 129_900);
    assert_eq!(json["payload"]["invoiceNumber"], "INV-2026-0001");
    assert_eq!(json["payload"]["paidAt"], "2026-11-23T10:00:00Z");
    let back: DomainEvent<PaymentSucceeded> = serde_json::from_value(json).unwrap();
    assert_eq!(back, event);
}

#[test]
fn new_events_get_a_v7_id_and_the_payload_topic_and_version() {
    let event = DomainEvent::new("order-payment", payment());

    assert_eq!(event.id.get_version_num(), 7);
    assert_eq!(event.topic, PaymentSucceeded::TOPIC);
    assert_eq!(event.version, PaymentSucceeded::VERSION);
    assert_eq!(event.producer, "order-payment");
    assert_eq!(event.correlation_id, None);
}

#[test]
fn absent_optional_envelope_fields_are_omitted_and_read_back_as_none() {
    let event = DomainEvent::new("order-payment", payment());

    let json = serde_json::to_value(&event).unwrap();

    assert!(json.get("correlationId").is_none());
    assert!(json.get("traceparent").is_none());
    let back: DomainEvent<PaymentSucceeded> = serde_json::from_value(json).unwrap();
    assert_eq!(back.correlation_id, None);
}

#[test]
fn unknown_fields_in_envelope_and_payload_are_ignored() {
    let mut json = serde_json::to_value(DomainEvent::new("order-payment", payment())).unwrap();
    json["addedInFuture"] = json!({"anything": [1, 2, 3]});
    json["payload"]["loyaltyPoints"] = json!(1299);

    let event: DomainEvent<PaymentSucceeded> = serde_json::from_value(json.clone()).unwrap();
    let raw: RawEvent = serde_json::from_value(json).unwrap();

    assert_eq!(event.payload.amount, 129_900);
    assert_eq!(raw.decode::<PaymentSucceeded>().unwrap(), event);
}

#[test]
fn decoding_refuses_an_unsupported_version() {
    let mut json = serde_json::to_value(DomainEvent::new("order-payment", payment())).unwrap();
    json["version"] = json!(2);
    let raw = RawEvent::from_slice(json.to_string().as_bytes()).unwrap();

    let err = raw.decode::<PaymentSucceeded>().unwrap_err();

    assert!(
        matches!(
            err,
            DecodeError::UnsupportedVersion {
                found: 2,
                supported: 1,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn decoding_refuses_another_topic_and_a_payload_that_does_not_fit() {
    let raw: RawEvent =
        serde_json::from_value(serde_json::to_value(DomainEvent::new("x", payment())).unwrap())
            .unwrap();
    let err = raw.clone().decode::<BookingCreated>().unwrap_err();
    assert!(matches!(err, DecodeError::WrongTopic { .. }), "{err}");

    let mut broken = raw;
    broken.payload["amount"] = json!("a lot");
    let err = broken.decode::<PaymentSucceeded>().unwrap_err();
    assert!(matches!(err, DecodeError::Payload { .. }), "{err}");
}

#[test]
fn enum_values_are_screaming_snake_case_and_fields_camel_case() {
    let booking = BookingCreated {
        booking_id: Uuid::now_v7(),
        reference_code: "LW-7K3Q9".into(),
        appointment_type: AppointmentType::HomeMeasurement,
        for_kitchen: true,
        for_bedroom: false,
        slot_id: Uuid::now_v7(),
        slot_starts_at: Utc::now(),
        slot_ends_at: Utc::now(),
        showroom_id: None,
        consultant_id: None,
        user_id: None,
        customer_name: "Ada Lovelace".into(),
        customer_email: "ada@example.com".into(),
        customer_phone: "+447700900123".into(),
        postcode: "SW1A 1AA".into(),
        created_at: Utc::now(),
    };

    let json = serde_json::to_value(&booking).unwrap();

    assert_eq!(json["appointmentType"], "HOME_MEASUREMENT");
    assert_eq!(json["forKitchen"], true);
    assert_eq!(json["forBedroom"], false);
    assert_eq!(json["referenceCode"], "LW-7K3Q9");
    assert!(json.get("slotStartsAt").is_some());
    assert!(json.get("slotEndsAt").is_some());
    assert_eq!(
        serde_json::to_value(OtpPurpose::TwoFactorAuth).unwrap(),
        "TWO_FACTOR_AUTH"
    );
}

#[test]
fn otp_code_is_plain_on_the_wire_and_redacted_in_debug() {
    let otp = OtpRequested {
        user_id: None,
        email: "ada@example.com".into(),
        purpose: OtpPurpose::PasswordReset,
        code: OtpCode::new("493817"),
        expires_at: Utc::now(),
    };

    let json = serde_json::to_value(&otp).unwrap();

    assert_eq!(json["code"], "493817");
    assert_eq!(json["purpose"], "PASSWORD_RESET");
    assert!(!format!("{otp:?}").contains("493817"));
    assert_eq!(otp.code.expose(), "493817");
}

macro_rules! payload_topics {
    ($($ty:ty),* $(,)?) => {
        vec![$((<$ty as EventPayload>::TOPIC, <$ty as EventPayload>::VERSION)),*]
    };
}

#[test]
fn every_topic_has_exactly_one_payload_type() {
    use shared_types::{appointment::*, auth::*, content::*, customer::*, notification::*};
    use shared_types::{order_payment::*, product::*};

    let payloads = payload_topics![
        UserCreated,
        UserEmailVerified,
        OtpRequested,
        UserErasureRequested,
        ProductCreated,
        ProductUpdated,
        ProductDeleted,
        PriceChanged,
        InventoryUpdated,
        OrderCreated,
        OrderCancelled,
        PaymentSucceeded,
        PaymentFailed,
        RefundIssued,
        BookingCreated,
        BookingConfirmed,
        BookingRescheduled,
        BookingCancelled,
        BookingReminderDue,
        BrochureRequested,
        BlogPublished,
        PagePublished,
        MediaUploaded,
        ContactReceived,
        BusinessEnquiryReceived,
        NewsletterSubscribed,
        ReviewCreated,
        TicketCreated,
        TicketUpdated,
        NotificationSent,
        NotificationFailed,
    ];

    let all: HashSet<&str> = topics::ALL.iter().copied().collect();
    assert_eq!(all.len(), topics::ALL.len(), "duplicate topic in ALL");
    let covered: HashSet<&str> = payloads.iter().map(|(topic, _)| *topic).collect();
    assert_eq!(covered.len(), payloads.len(), "two payloads share a topic");
    assert_eq!(covered, all);
    assert_eq!(topics::ALL.len(), 31);
    assert!(payloads.iter().all(|(_, version)| *version >= 1));
    assert_eq!(PaymentSucceeded::TOPIC, topics::PAYMENT_SUCCEEDED);
    assert_eq!(OtpRequested::TOPIC, "auth.otp_requested");
    assert_eq!(BusinessEnquiryReceived::TOPIC, "business_enquiry.received");
}

#[test]
fn topics_are_lowercase_entity_dot_verb() {
    for topic in topics::ALL {
        let (entity, verb) = topic.split_once('.').unwrap();
        assert!(!entity.is_empty() && !verb.is_empty(), "{topic}");
        assert!(
            topic
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_'),
            "{topic}"
        );
    }
}
