//! Each event produces the right messages for the right recipients, once.

use chrono::{DateTime, Duration, Utc};
use service_kit::shared_types::DomainEvent;
use service_kit::shared_types::appointment::{
    AppointmentType, BookingConfirmed, BookingCreated, BookingReminderDue, BrochureDelivery,
    BrochureRequested, ReminderKind,
};
use service_kit::shared_types::auth::{OtpCode, OtpPurpose, OtpRequested, UserCreated, UserRole};
use service_kit::shared_types::content::{ContactReceived, NewsletterSubscribed};
use service_kit::shared_types::customer::{TicketStatus, TicketUpdated};
use service_kit::shared_types::order_payment::{PaymentFailed, PaymentSucceeded, RefundIssued};
use uuid::Uuid;

use crate::helpers::{Api, attachment};

pub fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

pub fn user_created(user_id: Uuid, email: &str, marketing: bool) -> DomainEvent<UserCreated> {
    DomainEvent::new(
        "auth",
        UserCreated {
            user_id,
            email: email.into(),
            first_name: "Jane".into(),
            last_name: "Doe".into(),
            phone: Some("+447700900123".into()),
            role: UserRole::Customer,
            marketing_opt_in: marketing,
            created_at: Utc::now(),
        },
    )
}

pub fn booking_created(kitchen: bool, bedroom: bool) -> DomainEvent<BookingCreated> {
    DomainEvent::new(
        "appointment",
        BookingCreated {
            booking_id: Uuid::now_v7(),
            reference_code: "BK-20261201-7K3Q".into(),
            appointment_type: AppointmentType::HomeMeasurement,
            for_kitchen: kitchen,
            for_bedroom: bedroom,
            slot_id: Uuid::now_v7(),
            slot_starts_at: at("2026-12-01T10:00:00Z"),
            slot_ends_at: at("2026-12-01T11:00:00Z"),
            showroom_id: None,
            consultant_id: None,
            user_id: None,
            customer_name: "Jane Doe".into(),
            customer_email: "jane@example.com".into(),
            customer_phone: "+447700900123".into(),
            postcode: "SW4 0AB".into(),
            created_at: Utc::now(),
        },
    )
}

#[tokio::test]
async fn a_booking_is_acknowledged_with_a_calendar_file_in_london_time() {
    let api = Api::spawn().await;
    let event = booking_created(true, false);
    api.deliver(&event).await;

    let rows = api.settled(event.id).await;
    assert_eq!(
        rows.len(),
        1,
        "no team alert for a kitchen-only booking: {rows:#?}"
    );
    assert_eq!(rows[0].template, "booking_received");
    assert_eq!(rows[0].status, "SENT");
    let outbox = api.outbox("jane@example.com").await;
    let mail = &outbox[0];
    assert_eq!(mail["subject"], "We have your booking BK-20261201-7K3Q");
    let text = mail["bodyText"].as_str().unwrap();
    assert!(
        text.contains("Tuesday 1 December 2026, 10:00 to 11:00 (UK time)"),
        "{text}"
    );
    assert!(text.contains("kitchen consultation"));
    assert!(text.contains("At your home (SW4 0AB)"));
    let ics = String::from_utf8(attachment(mail, ".ics")).unwrap();
    assert!(ics.starts_with("BEGIN:VCALENDAR\r\n"));
    assert!(ics.contains("DTSTART:20261201T100000Z\r\n"));
    assert!(ics.contains("DTEND:20261201T110000Z\r\n"));
    assert!(ics.contains(&format!(
        "UID:{}@lomashwood.co.uk",
        event.payload.booking_id
    )));
}

#[tokio::test]
async fn a_kitchen_and_bedroom_booking_alerts_both_teams_and_a_summer_time_is_shown_in_bst() {
    let api = Api::spawn().await;
    let mut event = booking_created(true, true);
    event.payload.slot_starts_at = at("2026-07-01T09:00:00Z");
    event.payload.slot_ends_at = at("2026-07-01T10:00:00Z");
    api.deliver(&event).await;

    let rows = api.settled(event.id).await;
    let sent: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.template.as_str(), r.recipient.as_str()))
        .collect();
    assert_eq!(
        sent,
        vec![
            ("booking_received", "jane@example.com"),
            ("booking_team_alert", "bedrooms@lomash.test"),
            ("booking_team_alert", "kitchens@lomash.test"),
        ]
    );
    let alert = &api.outbox("kitchens@lomash.test").await[0];
    assert_eq!(
        alert["subject"],
        "Kitchen and bedroom booking BK-20261201-7K3Q"
    );
    let text = alert["bodyText"].as_str().unwrap();
    assert!(
        text.contains("Wednesday 1 July 2026, 10:00 to 11:00"),
        "{text}"
    );
    assert!(text.contains("jane@example.com"));
}

#[tokio::test]
async fn a_redelivered_event_sends_nothing_twice() {
    let api = Api::spawn().await;
    let event = booking_created(true, true);
    api.deliver(&event).await;
    api.settled(event.id).await;
    // The same event again, as a broker redelivery would bring it.
    api.deliver(&event).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    assert_eq!(api.rows_of(event.id).await.len(), 3);
    assert_eq!(api.outbox("jane@example.com").await.len(), 1);
    assert_eq!(api.outbox("kitchens@lomash.test").await.len(), 1);
}

#[tokio::test]
async fn a_one_time_code_goes_in_its_purpose_s_email_and_is_erased_from_the_log_once_sent() {
    let api = Api::spawn().await;
    let event = DomainEvent::new(
        "auth",
        OtpRequested {
            user_id: None,
            email: "jane@example.com".into(),
            purpose: OtpPurpose::PasswordReset,
            code: OtpCode::new("482913"),
            expires_at: Utc::now() + Duration::minutes(10),
        },
    );
    api.deliver(&event).await;

    let rows = api.settled(event.id).await;
    assert_eq!(rows[0].template, "otp_password_reset");
    assert_eq!(rows[0].status, "SENT");
    assert_eq!(
        rows[0].body_text, None,
        "the code must not stay in the delivery log"
    );
    let mail = &api.outbox("jane@example.com").await[0];
    assert_eq!(mail["subject"], "Reset your Lomash Wood password");
    assert!(
        mail["bodyText"]
            .as_str()
            .unwrap()
            .contains("Your code: 482913")
    );
}

#[tokio::test]
async fn a_confirmed_booking_is_emailed_texted_to_the_booking_phone_and_pushed_to_devices() {
    let api = Api::spawn().await;
    let jane = Api::customer();
    let (status, _) = api
        .send(
            reqwest::Method::POST,
            "/v1/notifications/devices",
            Some(&jane),
            Some(&serde_json::json!({"token": "fcm-device-token-0001", "platform": "ANDROID"})),
        )
        .await;
    assert_eq!(status, 201);
    let created = booking_created(true, false);
    api.deliver(&created).await;
    let event = DomainEvent::new(
        "appointment",
        BookingConfirmed {
            booking_id: created.payload.booking_id,
            reference_code: created.payload.reference_code.clone(),
            appointment_type: AppointmentType::HomeMeasurement,
            slot_starts_at: created.payload.slot_starts_at,
            slot_ends_at: created.payload.slot_ends_at,
            showroom_id: None,
            consultant_id: None,
            user_id: Some(jane.id),
            customer_name: "Jane Doe".into(),
            customer_email: "jane@example.com".into(),
            confirmed_at: Utc::now(),
        },
    );
    api.deliver(&event).await;

    let rows = api.settled(event.id).await;
    let sent: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| (r.template.as_str(), r.channel.as_str(), r.status.as_str()))
        .collect();
    assert_eq!(
        sent,
        vec![
            ("booking_confirmed", "EMAIL", "SENT"),
            ("booking_confirmed_push", "PUSH", "SENT"),
            ("booking_confirmed_sms", "SMS", "SENT"),
        ]
    );
    let sms = &api.outbox("+447700900123").await[0];
    assert_eq!(
        sms["bodyText"],
        "Lomash Wood: your home measurement BK-20261201-7K3Q is confirmed for Tuesday 1 December \
         2026, 10:00 (UK time). At your home"
    );
    let push = &api.outbox("fcm-device-token-0001").await[0];
    assert_eq!(push["subject"], "Appointment confirmed");
}

#[tokio::test]
async fn reminders_go_by_email_the_day_before_and_by_sms_on_the_day() {
    let api = Api::spawn().await;
    let reminder = |kind| {
        DomainEvent::new(
            "appointment",
            BookingReminderDue {
                booking_id: Uuid::now_v7(),
                reference_code: "BK-20261201-7K3Q".into(),
                reminder: kind,
                appointment_type: AppointmentType::ShowroomVisit,
                slot_starts_at: at("2026-12-01T10:00:00Z"),
                slot_ends_at: at("2026-12-01T11:00:00Z"),
                showroom_id: Some(Uuid::now_v7()),
                user_id: None,
                customer_name: "Jane Doe".into(),
                customer_email: "jane@example.com".into(),
                customer_phone: Some("+447700900999".into()),
            },
        )
    };
    let day_before = reminder(ReminderKind::DayBefore);
    let same_day = reminder(ReminderKind::SameDay);
    api.deliver(&day_before).await;
    api.deliver(&same_day).await;

    let email = api.settled(day_before.id).await;
    assert_eq!((email.len(), email[0].channel.as_str()), (1, "EMAIL"));
    assert_eq!(
        email[0].subject.as_deref(),
        Some("Reminder: your appointment BK-20261201-7K3Q is tomorrow")
    );
    let sms = api.settled(same_day.id).await;
    assert_eq!((sms.len(), sms[0].recipient.as_str()), (1, "+447700900999"));
    assert!(
        sms[0]
            .body_text
            .as_deref()
            .unwrap()
            .contains("starts at 10:00 today")
    );
}

#[tokio::test]
async fn payments_refunds_ticket_replies_contact_and_newsletter_each_get_their_email() {
    let api = Api::spawn().await;
    let jane = Uuid::now_v7();
    let created = user_created(jane, "jane@example.com", false);
    api.deliver(&created).await;

    let paid = DomainEvent::new(
        "order-payment",
        PaymentSucceeded {
            order_id: Uuid::now_v7(),
            payment_id: Uuid::now_v7(),
            user_id: Some(jane),
            amount: 129_900,
            currency: "GBP".into(),
            invoice_number: Some("INV-2026-000123".into()),
            provider_payment_id: "pi_3Mtw".into(),
            customer_email: None,
            paid_at: at("2026-12-01T10:00:00Z"),
        },
    );
    let refund = DomainEvent::new(
        "order-payment",
        RefundIssued {
            refund_id: Uuid::now_v7(),
            order_id: paid.payload.order_id,
            payment_id: paid.payload.payment_id,
            user_id: Some(jane),
            amount: 12_000,
            currency: "GBP".into(),
            reason: Some("Damaged door".into()),
            customer_email: Some("jane@example.com".into()),
            issued_at: Utc::now(),
        },
    );
    let declined = DomainEvent::new(
        "order-payment",
        PaymentFailed {
            order_id: paid.payload.order_id,
            payment_id: Uuid::now_v7(),
            user_id: Some(jane),
            amount: 129_900,
            currency: "GBP".into(),
            failure_code: Some("card_declined".into()),
            failure_message: Some("Your card was declined.".into()),
            customer_email: None,
            failed_at: Utc::now(),
        },
    );
    let ticket = |staff_replied| {
        DomainEvent::new(
            "customer",
            TicketUpdated {
                ticket_id: Uuid::now_v7(),
                ticket_number: "T-000123".into(),
                user_id: jane,
                status: TicketStatus::InProgress,
                previous_status: Some(TicketStatus::Open),
                staff_replied,
                updated_by: None,
                updated_at: Utc::now(),
            },
        )
    };
    let replied = ticket(true);
    let status_only = ticket(false);
    let contact = DomainEvent::new(
        "content",
        ContactReceived {
            submission_id: Uuid::now_v7(),
            name: "Sam Smith".into(),
            email: "sam@example.com".into(),
            phone: None,
            subject: Some("Worktops".into()),
            message: "Do you do oak?".into(),
            received_at: Utc::now(),
        },
    );
    let newsletter = DomainEvent::new(
        "content",
        NewsletterSubscribed {
            subscription_id: Uuid::now_v7(),
            email: "news@example.com".into(),
            source: Some("footer".into()),
            subscribed_at: Utc::now(),
            confirmation_token: Some("nl-token-123".into()),
        },
    );
    api.deliver(&paid).await;
    api.deliver(&refund).await;
    api.deliver(&declined).await;
    api.deliver(&replied).await;
    api.deliver(&status_only).await;
    api.deliver(&contact).await;
    api.deliver(&newsletter).await;

    let receipt = &api.settled(paid.id).await[0];
    assert_eq!(
        receipt.recipient, "jane@example.com",
        "address from user.created"
    );
    assert_eq!(
        receipt.subject.as_deref(),
        Some("Your Lomash Wood receipt INV-2026-000123")
    );
    let text = receipt.body_text.as_deref().unwrap();
    assert!(text.contains("We received £1,299.00 on Tuesday 1 December 2026, 10:00."));
    assert!(
        text.contains("http://127.0.0.1:3000/v1/invoices/INV-2026-000123"),
        "{text}"
    );

    let failed = &api.settled(declined.id).await[0];
    assert_eq!(failed.recipient, "jane@example.com");
    assert_eq!(
        failed.subject.as_deref(),
        Some("Your payment of £1,299.00 did not go through")
    );
    let text = failed.body_text.as_deref().unwrap();
    assert!(
        text.contains("£1,299.00: Your card was declined."),
        "{text}"
    );
    assert!(
        !text.contains("card_declined"),
        "the provider's code stays internal"
    );
    assert!(text.contains(&format!(
        "https://lomash.test/account/orders/{}",
        paid.payload.order_id
    )));

    let refunded = &api.settled(refund.id).await[0];
    assert_eq!(refunded.subject.as_deref(), Some("Your refund of £120.00"));
    assert!(
        refunded
            .body_text
            .as_deref()
            .unwrap()
            .contains("(Damaged door)")
    );

    let reply = &api.settled(replied.id).await[0];
    assert_eq!(reply.template, "ticket_reply");
    assert_eq!(reply.recipient, "jane@example.com");
    assert!(
        reply
            .body_text
            .as_deref()
            .unwrap()
            .contains("Hello Jane, our support team replied")
    );
    assert!(
        api.rows_of(status_only.id).await.is_empty(),
        "no reply, no email"
    );

    let ack = &api.settled(contact.id).await[0];
    assert_eq!(
        (ack.template.as_str(), ack.recipient.as_str()),
        ("contact_ack", "sam@example.com")
    );
    assert!(
        ack.body_text
            .as_deref()
            .unwrap()
            .contains("about \"Worktops\"")
    );

    let confirm = &api.settled(newsletter.id).await[0];
    assert_eq!(
        confirm.subject.as_deref(),
        Some("Please confirm your subscription")
    );
    assert!(
        confirm
            .body_text
            .as_deref()
            .unwrap()
            .contains("https://lomash.test/newsletter/confirm?token=nl-token-123")
    );
}

pub fn brochure_requested(kitchen: bool, bedroom: bool) -> DomainEvent<BrochureRequested> {
    DomainEvent::new(
        "appointment",
        BrochureRequested {
            request_id: Uuid::now_v7(),
            user_id: None,
            name: "Jane Doe".into(),
            email: "jane@example.com".into(),
            phone: None,
            for_kitchen: kitchen,
            for_bedroom: bedroom,
            delivery: BrochureDelivery::Email,
            address: None,
            postcode: None,
            marketing_consent: false,
            requested_at: Utc::now(),
        },
    )
}

#[tokio::test]
async fn a_brochure_request_by_email_attaches_the_pdf_from_storage() {
    let api = Api::spawn().await;
    let event = brochure_requested(false, true);
    api.deliver(&event).await;

    let rows = api.settled(event.id).await;
    assert_eq!(rows[0].status, "SENT");
    let mail = &api.outbox("jane@example.com").await[0];
    assert_eq!(mail["subject"], "Your Lomash Wood bedroom brochure");
    assert_eq!(mail["attachments"].as_array().unwrap().len(), 1);
    let pdf = attachment(mail, "Bedrooms.pdf");
    let expected = std::fs::read(format!(
        "{}/brochures/lomash-wood-bedrooms.pdf",
        crate::helpers::brochure_dir()
    ))
    .unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    assert_eq!(pdf, expected);
}

#[tokio::test]
async fn a_move_or_a_cancellation_updates_the_calendar_entry_it_first_sent() {
    use service_kit::shared_types::appointment::{
        BookingCancelled, BookingRescheduled, CancelledBy,
    };

    let api = Api::spawn().await;
    let created = booking_created(true, false);
    let booking_id = created.payload.booking_id;
    let moved = DomainEvent::new(
        "appointment",
        BookingRescheduled {
            booking_id,
            reference_code: "BK-20261201-7K3Q".into(),
            appointment_type: AppointmentType::HomeMeasurement,
            previous_slot_starts_at: at("2026-12-01T10:00:00Z"),
            previous_slot_ends_at: at("2026-12-01T11:00:00Z"),
            slot_id: Uuid::now_v7(),
            slot_starts_at: at("2026-12-03T14:00:00Z"),
            slot_ends_at: at("2026-12-03T15:00:00Z"),
            user_id: None,
            customer_name: "Jane Doe".into(),
            customer_email: "jane@example.com".into(),
            rescheduled_at: at("2026-11-20T09:00:00Z"),
        },
    );
    let cancelled = DomainEvent::new(
        "appointment",
        BookingCancelled {
            booking_id,
            reference_code: "BK-20261201-7K3Q".into(),
            cancelled_by: CancelledBy::Customer,
            reason: Some("Change of plans".into()),
            slot_starts_at: at("2026-12-03T14:00:00Z"),
            user_id: None,
            customer_name: "Jane Doe".into(),
            customer_email: "jane@example.com".into(),
            cancelled_at: at("2026-11-21T09:00:00Z"),
        },
    );
    api.deliver(&created).await;
    api.deliver(&moved).await;
    api.deliver(&cancelled).await;
    api.settled(cancelled.id).await;
    api.settled(moved.id).await;

    let outbox = api.outbox("jane@example.com").await;
    let by_subject = |subject: &str| {
        outbox
            .iter()
            .find(|m| m["subject"] == subject)
            .unwrap_or_else(|| panic!("no {subject} in {outbox:#?}"))
            .clone()
    };
    let moved_mail = by_subject("Your appointment BK-20261201-7K3Q has moved");
    assert!(moved_mail["bodyText"].as_str().unwrap().contains(
        "was on Tuesday 1 December 2026, 10:00 is now on Thursday 3 December 2026, 14:00 to 15:00"
    ));
    let update = String::from_utf8(attachment(&moved_mail, ".ics")).unwrap();
    let uid = format!("UID:{booking_id}@lomashwood.co.uk\r\n");
    assert!(update.contains(&uid));
    assert!(update.contains("DTSTART:20261203T140000Z\r\n"));
    assert!(update.contains(&format!(
        "SEQUENCE:{}\r\n",
        at("2026-11-20T09:00:00Z").timestamp()
    )));
    let cancel_mail = by_subject("Your appointment BK-20261201-7K3Q is cancelled");
    assert!(
        cancel_mail["bodyText"]
            .as_str()
            .unwrap()
            .contains("has been cancelled: Change of plans.")
    );
    let cancel = String::from_utf8(attachment(&cancel_mail, ".ics")).unwrap();
    assert!(cancel.contains("METHOD:CANCEL\r\n"));
    assert!(cancel.contains("STATUS:CANCELLED\r\n"));
    assert!(cancel.contains(&uid));
}
