//! Events → messages. Each handler runs in the consumer's transaction (with the
//! `processed_events` record) and only *queues* messages ([`Composer::queue`]); the sender
//! delivers them. A redelivered event is skipped by the consumer, and the delivery log's unique
//! index would refuse a second copy anyway.
//!
//! | event | messages |
//! |---|---|
//! | `user.created` | records the recipient and their email marketing choice; `welcome` (marketing) |
//! | `auth.otp_requested` | `otp_<purpose>` email (the code is rendered, never logged) |
//! | `booking.created` | `booking_received` with an `.ics`; `booking_team_alert` to both teams when kitchen **and** bedroom |
//! | `booking.confirmed` | `booking_confirmed` email + `booking_confirmed_sms` + push to the account's devices |
//! | `booking.rescheduled` / `booking.cancelled` | `booking_rescheduled` / `booking_cancelled` |
//! | `booking.reminder_due` | DAY_BEFORE: `booking_reminder` email; SAME_DAY: `booking_reminder_sms` |
//! | `payment.succeeded` | `payment_receipt` with the invoice link |
//! | `payment.failed` | `payment_failed` (the provider's customer-safe message, a retry link) |
//! | `refund.issued` | `refund_confirmation` |
//! | `brochure.requested` (by email) | `brochure` with the PDF(s) attached |
//! | `ticket.updated` with a staff reply | `ticket_reply` (address from `recipients`) |
//! | `contact.received` | `contact_ack` |
//! | `newsletter.subscribed` | `newsletter_confirm` (double opt-in) |
//! | `user.erasure_requested` | no message: the user's addresses, preferences, devices and message contents are erased |
//!
//! Times are shown in Europe/London. An event that names an account by user id only needs the
//! address `user.created` recorded; the consumer handles several events at once and producers
//! are independent, so that event may not have been applied yet (a backlog draining, its handler
//! retrying). Such an event is retried with the consumer's backoff while it is younger than
//! [`RECIPIENT_WAIT`], so it goes out once the address arrives, and is dead-lettered if the
//! delivery limit runs out first (replay it later). An older one names an account we never heard
//! of (or one erased since) and is skipped with a warning: we never guess addresses.
//! Rendering failures (a template and its context out of step) reject the event to the DLQ.

use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc, Weekday};
use event_bus::{Consumer, HandlerError};
use serde_json::json;
use service_kit::Infra;
use service_kit::shared_types::DomainEvent;
use service_kit::shared_types::appointment::{
    AppointmentType, BookingCancelled, BookingConfirmed, BookingCreated, BookingReminderDue,
    BookingRescheduled, BrochureDelivery, BrochureRequested, ReminderKind,
};
use service_kit::shared_types::auth::{
    OtpPurpose, OtpRequested, UserCreated, UserErasureRequested,
};
use service_kit::shared_types::content::{ContactReceived, NewsletterSubscribed};
use service_kit::shared_types::customer::TicketUpdated;
use service_kit::shared_types::order_payment::{PaymentFailed, PaymentSucceeded, RefundIssued};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::delivery::{Channel, Composer, NewMessage, StoredAttachment};
use crate::error::NotificationError;
use crate::live::{LiveEvent, LiveHub};
use crate::{devices, preferences};

impl From<NotificationError> for HandlerError {
    fn from(error: NotificationError) -> Self {
        match error {
            // The template and the code feeding it disagree: retrying cannot help.
            NotificationError::Template(error) => HandlerError::reject(error),
            NotificationError::Database(error) => HandlerError::retry(error),
            other => HandlerError::retry(anyhow::Error::from(other)),
        }
    }
}

/// The consumer of this service's queue.
///
/// `booking.confirmed`, `payment.succeeded` and `ticket.updated` also go to the user's live
/// sockets through `live`, once their handler has queued its messages. That is still inside the
/// consumer's transaction (the consumer has no after-commit hook): a commit that then fails makes
/// the event come again and the live message go out twice, which the live channel allows (it is
/// best-effort, and its messages carry the event id for clients to drop repeats; see
/// [`crate::live`]). A duplicate delivery never gets that far, so it publishes nothing.
pub fn consumer(infra: &Infra, composer: Composer, live: LiveHub) -> anyhow::Result<Consumer> {
    let c = Arc::new(composer);
    macro_rules! on {
        ($consumer:expr, $payload:ty, $handler:path) => {{
            let c = Arc::clone(&c);
            $consumer.on::<$payload, _>(move |event, conn| {
                let c = Arc::clone(&c);
                Box::pin(async move { $handler(&c, event, conn).await })
            })
        }};
        ($consumer:expr, $payload:ty, $handler:path, live: $to_live:path) => {{
            let c = Arc::clone(&c);
            let live = live.clone();
            $consumer.on::<$payload, _>(move |event, conn| {
                let c = Arc::clone(&c);
                let live = live.clone();
                Box::pin(async move {
                    let message = $to_live(&event);
                    $handler(&c, event, conn).await?;
                    live.push(message).await;
                    Ok(())
                })
            })
        }};
    }
    let consumer = infra.consumer()?;
    let consumer = on!(consumer, UserCreated, on_user_created);
    let consumer = on!(consumer, OtpRequested, on_otp_requested);
    let consumer = on!(consumer, BookingCreated, on_booking_created);
    let consumer =
        on!(consumer, BookingConfirmed, on_booking_confirmed, live: LiveEvent::booking_confirmed);
    let consumer = on!(consumer, BookingRescheduled, on_booking_rescheduled);
    let consumer = on!(consumer, BookingCancelled, on_booking_cancelled);
    let consumer = on!(consumer, BookingReminderDue, on_reminder_due);
    let consumer =
        on!(consumer, PaymentSucceeded, on_payment_succeeded, live: LiveEvent::order_paid);
    let consumer = on!(consumer, PaymentFailed, on_payment_failed);
    let consumer = on!(consumer, RefundIssued, on_refund_issued);
    let consumer = on!(consumer, BrochureRequested, on_brochure_requested);
    let consumer = on!(consumer, TicketUpdated, on_ticket_updated, live: LiveEvent::ticket_updated);
    let consumer = on!(consumer, ContactReceived, on_contact_received);
    let consumer = on!(consumer, NewsletterSubscribed, on_newsletter_subscribed);
    let consumer = consumer
        .on::<UserErasureRequested, _>(|event, conn| Box::pin(on_erasure_requested(event, conn)));
    Ok(consumer)
}

type Handled = Result<(), HandlerError>;

fn message(
    template: &'static str,
    recipient: &str,
    user_id: Option<Uuid>,
    event_id: Uuid,
    context: serde_json::Value,
) -> NewMessage {
    NewMessage {
        template,
        recipient: recipient.trim().to_owned(),
        user_id,
        source_event_id: Some(event_id),
        context,
        attachments: Vec::new(),
    }
}

/// How long an event may wait for the `user.created` of the account it names before its
/// message is given up (see the module documentation).
pub const RECIPIENT_WAIT: Duration = Duration::minutes(15);

/// The email address and first name of the account `user_id` for an event published at
/// `published`: `Ok(None)` when it is unknown for good, a retry while `user.created` may still
/// be on its way.
async fn recipient_of(
    conn: &mut PgConnection,
    user_id: Uuid,
    published: DateTime<Utc>,
) -> Result<Option<(String, String)>, HandlerError> {
    if let Some(known) = email_of(conn, user_id).await? {
        return Ok(Some(known));
    }
    if Utc::now() - published < RECIPIENT_WAIT {
        return Err(HandlerError::retry(format!(
            "no address known yet for user {user_id}; waiting for its user.created"
        )));
    }
    Ok(None)
}

/// The known email address of an account.
async fn email_of(
    conn: &mut PgConnection,
    user_id: Uuid,
) -> Result<Option<(String, String)>, sqlx::Error> {
    let row = sqlx::query!(
        "SELECT email, first_name FROM recipients WHERE user_id = $1",
        user_id
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|r| (r.email, r.first_name)))
}

/// `user.created`.
pub async fn on_user_created(
    c: &Composer,
    event: DomainEvent<UserCreated>,
    conn: &mut PgConnection,
) -> Handled {
    let user = &event.payload;
    sqlx::query!(
        "INSERT INTO recipients (user_id, email, phone, first_name, last_name)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (user_id) DO UPDATE SET email = EXCLUDED.email,
             phone = coalesce(EXCLUDED.phone, recipients.phone),
             first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name",
        user.user_id,
        user.email.trim(),
        user.phone,
        user.first_name,
        user.last_name
    )
    .execute(&mut *conn)
    .await?;
    preferences::set_marketing(conn, user.user_id, Channel::Email, user.marketing_opt_in).await?;
    c.queue(
        conn,
        message(
            "welcome",
            &user.email,
            Some(user.user_id),
            event.id,
            json!({ "first_name": user.first_name }),
        ),
    )
    .await?;
    Ok(())
}

/// `auth.otp_requested`.
pub async fn on_otp_requested(
    c: &Composer,
    event: DomainEvent<OtpRequested>,
    conn: &mut PgConnection,
) -> Handled {
    let otp = &event.payload;
    let template = match otp.purpose {
        OtpPurpose::EmailVerification => "otp_email_verification",
        OtpPurpose::PasswordReset => "otp_password_reset",
        OtpPurpose::TwoFactorAuth => "otp_two_factor",
        OtpPurpose::Login => "otp_login",
    };
    let minutes = (otp.expires_at - event.timestamp).num_minutes().max(1);
    c.queue(
        conn,
        message(
            template,
            &otp.email,
            otp.user_id,
            event.id,
            json!({
                "code": otp.code.expose(),
                "expires_at": london(otp.expires_at).format("%H:%M").to_string(),
                "valid_minutes": minutes,
            }),
        ),
    )
    .await?;
    Ok(())
}

/// The variables every appointment template shares.
fn appointment_context(
    reference: &str,
    kind: AppointmentType,
    starts: DateTime<Utc>,
    ends: DateTime<Utc>,
    customer_name: &str,
    postcode: Option<&str>,
) -> serde_json::Value {
    json!({
        "reference": reference,
        "appointment_label": appointment_label(kind),
        "starts_local": long_local(starts),
        "starts_time_local": london(starts).format("%H:%M").to_string(),
        "ends_time_local": london(ends).format("%H:%M").to_string(),
        "location": location(kind, postcode),
        "customer_name": customer_name,
    })
}

/// `booking.created`.
pub async fn on_booking_created(
    c: &Composer,
    event: DomainEvent<BookingCreated>,
    conn: &mut PgConnection,
) -> Handled {
    let b = &event.payload;
    sqlx::query!(
        "INSERT INTO booking_contacts (booking_id, phone) VALUES ($1, $2)
         ON CONFLICT (booking_id) DO UPDATE SET phone = EXCLUDED.phone",
        b.booking_id,
        b.customer_phone
    )
    .execute(&mut *conn)
    .await?;
    let mut context = appointment_context(
        &b.reference_code,
        b.appointment_type,
        b.slot_starts_at,
        b.slot_ends_at,
        &b.customer_name,
        Some(&b.postcode),
    );
    context["topics"] = json!(topics(b.for_kitchen, b.for_bedroom));
    let mut ack = message(
        "booking_received",
        &b.customer_email,
        b.user_id,
        event.id,
        context.clone(),
    );
    let entry = CalendarEntry {
        booking_id: b.booking_id,
        reference: &b.reference_code,
        kind: b.appointment_type,
        starts: b.slot_starts_at,
        ends: Some(b.slot_ends_at),
        location: location(b.appointment_type, Some(&b.postcode)),
        sequence: 0,
        cancelled: false,
    };
    ack.attachments
        .push(ics_attachment(&b.reference_code, &entry, event.timestamp));
    c.queue(conn, ack).await?;
    if b.for_kitchen && b.for_bedroom {
        context["customer_email"] = json!(b.customer_email);
        context["customer_phone"] = json!(b.customer_phone);
        context["postcode"] = json!(b.postcode);
        for team in [
            &c.settings.kitchen_team_email,
            &c.settings.bedroom_team_email,
        ] {
            c.queue(
                conn,
                message("booking_team_alert", team, None, event.id, context.clone()),
            )
            .await?;
        }
    }
    Ok(())
}

/// The phone a booking was made with (booking.created), else the account's.
async fn phone_of(
    conn: &mut PgConnection,
    booking_id: Uuid,
    user_id: Option<Uuid>,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT phone AS "phone!" FROM booking_contacts WHERE booking_id = $1
           UNION ALL
           SELECT phone AS "phone!" FROM recipients WHERE user_id = $2 AND phone IS NOT NULL
           LIMIT 1"#,
        booking_id,
        user_id
    )
    .fetch_optional(&mut *conn)
    .await
}

/// `booking.confirmed`.
pub async fn on_booking_confirmed(
    c: &Composer,
    event: DomainEvent<BookingConfirmed>,
    conn: &mut PgConnection,
) -> Handled {
    let b = &event.payload;
    let context = appointment_context(
        &b.reference_code,
        b.appointment_type,
        b.slot_starts_at,
        b.slot_ends_at,
        &b.customer_name,
        None,
    );
    c.queue(
        conn,
        message(
            "booking_confirmed",
            &b.customer_email,
            b.user_id,
            event.id,
            context.clone(),
        ),
    )
    .await?;
    match phone_of(conn, b.booking_id, b.user_id).await? {
        Some(phone) => {
            c.queue(
                conn,
                message(
                    "booking_confirmed_sms",
                    &phone,
                    b.user_id,
                    event.id,
                    context.clone(),
                ),
            )
            .await?;
        }
        None => {
            tracing::warn!(booking_id = %b.booking_id, "no phone known for the confirmation SMS")
        }
    }
    if let Some(user_id) = b.user_id {
        for token in devices::tokens_of(conn, user_id).await? {
            c.queue(
                conn,
                message(
                    "booking_confirmed_push",
                    &token,
                    Some(user_id),
                    event.id,
                    context.clone(),
                ),
            )
            .await?;
        }
    }
    Ok(())
}

/// `booking.rescheduled`.
pub async fn on_booking_rescheduled(
    c: &Composer,
    event: DomainEvent<BookingRescheduled>,
    conn: &mut PgConnection,
) -> Handled {
    let b = &event.payload;
    let mut context = appointment_context(
        &b.reference_code,
        b.appointment_type,
        b.slot_starts_at,
        b.slot_ends_at,
        &b.customer_name,
        None,
    );
    context["previous_starts_local"] = json!(long_local(b.previous_slot_starts_at));
    let mut moved = message(
        "booking_rescheduled",
        &b.customer_email,
        b.user_id,
        event.id,
        context,
    );
    let entry = CalendarEntry {
        booking_id: b.booking_id,
        reference: &b.reference_code,
        kind: b.appointment_type,
        starts: b.slot_starts_at,
        ends: Some(b.slot_ends_at),
        location: location(b.appointment_type, None),
        sequence: b.rescheduled_at.timestamp(),
        cancelled: false,
    };
    moved
        .attachments
        .push(ics_attachment(&b.reference_code, &entry, event.timestamp));
    c.queue(conn, moved).await?;
    Ok(())
}

/// `booking.cancelled`.
pub async fn on_booking_cancelled(
    c: &Composer,
    event: DomainEvent<BookingCancelled>,
    conn: &mut PgConnection,
) -> Handled {
    let b = &event.payload;
    let context = json!({
        "reference": b.reference_code,
        "customer_name": b.customer_name,
        "starts_local": long_local(b.slot_starts_at),
        "reason": b.reason,
    });
    let mut cancelled = message(
        "booking_cancelled",
        &b.customer_email,
        b.user_id,
        event.id,
        context,
    );
    // The payload names no appointment type; a cancelled entry's label matters little.
    let entry = CalendarEntry {
        booking_id: b.booking_id,
        reference: &b.reference_code,
        kind: AppointmentType::HomeMeasurement,
        starts: b.slot_starts_at,
        ends: None,
        location: String::new(),
        sequence: b.cancelled_at.timestamp(),
        cancelled: true,
    };
    cancelled
        .attachments
        .push(ics_attachment(&b.reference_code, &entry, event.timestamp));
    c.queue(conn, cancelled).await?;
    Ok(())
}

/// `booking.reminder_due`: email the day before, SMS on the day.
pub async fn on_reminder_due(
    c: &Composer,
    event: DomainEvent<BookingReminderDue>,
    conn: &mut PgConnection,
) -> Handled {
    let b = &event.payload;
    let context = appointment_context(
        &b.reference_code,
        b.appointment_type,
        b.slot_starts_at,
        b.slot_ends_at,
        &b.customer_name,
        None,
    );
    match b.reminder {
        ReminderKind::DayBefore => {
            c.queue(
                conn,
                message(
                    "booking_reminder",
                    &b.customer_email,
                    b.user_id,
                    event.id,
                    context,
                ),
            )
            .await?;
        }
        ReminderKind::SameDay => {
            let phone = match &b.customer_phone {
                Some(phone) if !phone.trim().is_empty() => Some(phone.clone()),
                _ => phone_of(conn, b.booking_id, b.user_id).await?,
            };
            match phone {
                Some(phone) => {
                    c.queue(
                        conn,
                        message("booking_reminder_sms", &phone, b.user_id, event.id, context),
                    )
                    .await?;
                }
                None => {
                    tracing::warn!(booking_id = %b.booking_id, "no phone known for the reminder SMS")
                }
            }
        }
    }
    Ok(())
}

/// `payment.succeeded`.
pub async fn on_payment_succeeded(
    c: &Composer,
    event: DomainEvent<PaymentSucceeded>,
    conn: &mut PgConnection,
) -> Handled {
    let p = &event.payload;
    let recipient = match (&p.customer_email, p.user_id) {
        (Some(email), _) => Some(email.clone()),
        (None, Some(user_id)) => recipient_of(conn, user_id, event.timestamp)
            .await?
            .map(|(email, _)| email),
        (None, None) => None,
    };
    let Some(recipient) = recipient else {
        tracing::warn!(payment_id = %p.payment_id, "no address known for the receipt");
        return Ok(());
    };
    let invoice_url = p.invoice_number.as_ref().map(|number| {
        c.settings
            .invoice_url_template
            .replace("{invoiceNumber}", number)
            .replace("{orderId}", &p.order_id.to_string())
    });
    let context = json!({
        "amount": money(p.amount, &p.currency),
        "paid_local": long_local(p.paid_at),
        "invoice_number": p.invoice_number,
        "invoice_url": invoice_url,
        "payment_reference": p.provider_payment_id,
    });
    c.queue(
        conn,
        message("payment_receipt", &recipient, p.user_id, event.id, context),
    )
    .await?;
    Ok(())
}

/// `payment.failed`.
pub async fn on_payment_failed(
    c: &Composer,
    event: DomainEvent<PaymentFailed>,
    conn: &mut PgConnection,
) -> Handled {
    let p = &event.payload;
    let recipient = match (&p.customer_email, p.user_id) {
        (Some(email), _) => Some(email.clone()),
        (None, Some(user_id)) => recipient_of(conn, user_id, event.timestamp)
            .await?
            .map(|(email, _)| email),
        (None, None) => None,
    };
    let Some(recipient) = recipient else {
        tracing::warn!(payment_id = %p.payment_id, "no address known for the failed payment");
        return Ok(());
    };
    let context = json!({
        "amount": money(p.amount, &p.currency),
        // Stripe's message is meant for customers; its code is not.
        "reason": p.failure_message,
        "order_id": p.order_id,
    });
    c.queue(
        conn,
        message("payment_failed", &recipient, p.user_id, event.id, context),
    )
    .await?;
    Ok(())
}

/// `refund.issued`.
pub async fn on_refund_issued(
    c: &Composer,
    event: DomainEvent<RefundIssued>,
    conn: &mut PgConnection,
) -> Handled {
    let r = &event.payload;
    let recipient = match (&r.customer_email, r.user_id) {
        (Some(email), _) => Some(email.clone()),
        (None, Some(user_id)) => recipient_of(conn, user_id, event.timestamp)
            .await?
            .map(|(email, _)| email),
        (None, None) => None,
    };
    let Some(recipient) = recipient else {
        tracing::warn!(refund_id = %r.refund_id, "no address known for the refund confirmation");
        return Ok(());
    };
    let context = json!({
        "amount": money(r.amount, &r.currency),
        "issued_local": long_local(r.issued_at),
        "reason": r.reason,
    });
    c.queue(
        conn,
        message(
            "refund_confirmation",
            &recipient,
            r.user_id,
            event.id,
            context,
        ),
    )
    .await?;
    Ok(())
}

/// `brochure.requested`: by email, with the PDF(s) attached (posted ones need no message).
pub async fn on_brochure_requested(
    c: &Composer,
    event: DomainEvent<BrochureRequested>,
    conn: &mut PgConnection,
) -> Handled {
    let r = &event.payload;
    if r.delivery != BrochureDelivery::Email {
        return Ok(());
    }
    let mut brochure = message(
        "brochure",
        &r.email,
        r.user_id,
        event.id,
        json!({ "name": r.name, "topics": topics(r.for_kitchen, r.for_bedroom) }),
    );
    // Neither ticked means "send me what you have": both.
    let both = !r.for_kitchen && !r.for_bedroom;
    if r.for_kitchen || both {
        brochure.attachments.push(StoredAttachment::stored(
            "Lomash-Wood-Kitchens.pdf",
            "application/pdf",
            &c.settings.brochures.kitchen_key,
        ));
    }
    if r.for_bedroom || both {
        brochure.attachments.push(StoredAttachment::stored(
            "Lomash-Wood-Bedrooms.pdf",
            "application/pdf",
            &c.settings.brochures.bedroom_key,
        ));
    }
    c.queue(conn, brochure).await?;
    Ok(())
}

/// `ticket.updated`: tell the customer when staff replied.
pub async fn on_ticket_updated(
    c: &Composer,
    event: DomainEvent<TicketUpdated>,
    conn: &mut PgConnection,
) -> Handled {
    let t = &event.payload;
    if !t.staff_replied {
        return Ok(());
    }
    let Some((email, first_name)) = recipient_of(conn, t.user_id, event.timestamp).await? else {
        tracing::warn!(ticket_id = %t.ticket_id, "no address known for the ticket's customer");
        return Ok(());
    };
    let status = serde_json::to_value(t.status).unwrap_or_default();
    let context = json!({
        "first_name": if first_name.is_empty() { "there".to_owned() } else { first_name },
        "ticket_number": t.ticket_number,
        "ticket_id": t.ticket_id,
        "status": status.as_str().unwrap_or("OPEN").replace('_', " ").to_lowercase(),
    });
    c.queue(
        conn,
        message("ticket_reply", &email, Some(t.user_id), event.id, context),
    )
    .await?;
    Ok(())
}

/// `contact.received`.
pub async fn on_contact_received(
    c: &Composer,
    event: DomainEvent<ContactReceived>,
    conn: &mut PgConnection,
) -> Handled {
    let m = &event.payload;
    let context = json!({ "name": m.name, "subject": m.subject });
    c.queue(
        conn,
        message("contact_ack", &m.email, None, event.id, context),
    )
    .await?;
    Ok(())
}

/// `newsletter.subscribed`: the double opt-in email.
pub async fn on_newsletter_subscribed(
    c: &Composer,
    event: DomainEvent<NewsletterSubscribed>,
    conn: &mut PgConnection,
) -> Handled {
    let s = &event.payload;
    // Content owns subscriptions and the token (`POST /v1/newsletter/{token}/confirm`); the
    // website's confirm page makes that call when the link is opened.
    let Some(token) = s.confirmation_token.as_deref() else {
        tracing::warn!(
            subscription_id = %s.subscription_id,
            "newsletter subscription without a confirmation token: nothing to confirm"
        );
        return Ok(());
    };
    let confirm_url = format!(
        "{}/newsletter/confirm?token={}",
        c.settings.web_base_url,
        url::form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>()
    );
    c.queue(
        conn,
        message(
            "newsletter_confirm",
            &s.email,
            None,
            event.id,
            json!({ "confirm_url": confirm_url }),
        ),
    )
    .await?;
    Ok(())
}

/// `user.erasure_requested` (GDPR): forgets the user's addresses, preferences and devices, and
/// keeps their delivery log only as anonymous statistics (template, channel, status, times):
/// recipients become `erased`, contents go, and unsent messages are not sent.
pub async fn on_erasure_requested(
    event: DomainEvent<UserErasureRequested>,
    conn: &mut PgConnection,
) -> Handled {
    let user_id = event.payload.user_id;
    let addresses = sqlx::query!(
        "DELETE FROM recipients WHERE user_id = $1 RETURNING email, phone",
        user_id
    )
    .fetch_optional(&mut *conn)
    .await?;
    sqlx::query!("DELETE FROM preferences WHERE user_id = $1", user_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query!("DELETE FROM device_tokens WHERE user_id = $1", user_id)
        .execute(&mut *conn)
        .await?;
    // The local log provider's copies of their messages.
    sqlx::query!(
        "DELETE FROM dev_outbox WHERE notification_id IN
             (SELECT id FROM notifications WHERE user_id = $1)",
        user_id
    )
    .execute(&mut *conn)
    .await?;
    let erased = sqlx::query!(
        "UPDATE notifications SET
             recipient = 'erased', subject = NULL, body_text = NULL, body_html = NULL,
             attachments = '[]', last_error = NULL,
             status = CASE WHEN status = 'QUEUED' THEN 'SUPPRESSED' ELSE status END
         WHERE user_id = $1",
        user_id
    )
    .execute(&mut *conn)
    .await?;
    // A one-click unsubscribe of their address is personal data too.
    if let Some(addresses) = addresses {
        sqlx::query!(
            "DELETE FROM suppressions WHERE address IN (lower($1), lower(coalesce($2, '')))",
            addresses.email,
            addresses.phone
        )
        .execute(&mut *conn)
        .await?;
    }
    tracing::info!(
        messages = erased.rows_affected(),
        "user's notification data erased"
    );
    Ok(())
}

fn topics(kitchen: bool, bedroom: bool) -> &'static str {
    match (kitchen, bedroom) {
        (true, true) | (false, false) => "kitchen and bedroom",
        (true, false) => "kitchen",
        (false, true) => "bedroom",
    }
}

fn appointment_label(kind: AppointmentType) -> &'static str {
    match kind {
        AppointmentType::HomeMeasurement => "home measurement",
        AppointmentType::ShowroomVisit => "showroom visit",
        AppointmentType::VirtualConsultation => "virtual consultation",
    }
}

fn location(kind: AppointmentType, postcode: Option<&str>) -> String {
    match (kind, postcode) {
        (AppointmentType::HomeMeasurement, Some(postcode)) => format!("At your home ({postcode})"),
        (AppointmentType::HomeMeasurement, None) => "At your home".to_owned(),
        (AppointmentType::ShowroomVisit, _) => "At our showroom".to_owned(),
        (AppointmentType::VirtualConsultation, _) => {
            "Online: we will email you the video link".to_owned()
        }
    }
}

/// The last Sunday of `month` in `year`, at 01:00 UTC (when UK clocks change).
fn last_sunday_1am_utc(year: i32, month: u32) -> Option<DateTime<Utc>> {
    let first_of_next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)?
    };
    let mut day = first_of_next.pred_opt()?;
    while day.weekday() != Weekday::Sun {
        day = day.pred_opt()?;
    }
    Some(Utc.from_utc_datetime(&day.and_hms_opt(1, 0, 0)?))
}

/// Europe/London wall-clock time of `at`: GMT, or BST (UTC+1) from the last Sunday of March to
/// the last Sunday of October, both at 01:00 UTC (the UK rule since 1996).
pub fn london(at: DateTime<Utc>) -> NaiveDateTime {
    let year = at.year();
    let summer = match (last_sunday_1am_utc(year, 3), last_sunday_1am_utc(year, 10)) {
        (Some(start), Some(end)) => at >= start && at < end,
        _ => false,
    };
    let offset = if summer {
        Duration::hours(1)
    } else {
        Duration::zero()
    };
    (at + offset).naive_utc()
}

fn long_local(at: DateTime<Utc>) -> String {
    london(at).format("%A %-d %B %Y, %H:%M").to_string()
}

/// `129900`, `GBP` → `£1,299.00`.
pub fn money(minor: i64, currency: &str) -> String {
    let negative = minor < 0;
    let minor = minor.unsigned_abs();
    let whole = (minor / 100).to_string();
    let mut grouped = String::new();
    for (index, digit) in whole.chars().enumerate() {
        if index > 0 && (whole.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    let sign = if negative { "-" } else { "" };
    let amount = format!("{grouped}.{:02}", minor % 100);
    match currency.to_ascii_uppercase().as_str() {
        "GBP" => format!("{sign}£{amount}"),
        "EUR" => format!("{sign}€{amount}"),
        other => format!("{sign}{amount} {other}"),
    }
}

/// Escapes an iCalendar TEXT value (RFC 5545 §3.3.11).
fn ics_text(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace(';', "\\;")
        .replace(',', "\\,")
        .replace('\n', "\\n")
}

/// A booking as a calendar entry.
pub struct CalendarEntry<'a> {
    /// The booking (the entry's UID, so that updates replace it).
    pub booking_id: Uuid,
    /// The customer-facing reference.
    pub reference: &'a str,
    /// The kind of appointment.
    pub kind: AppointmentType,
    /// When it starts.
    pub starts: DateTime<Utc>,
    /// When it ends (`None` for a cancellation, which needs no end).
    pub ends: Option<DateTime<Utc>>,
    /// Where.
    pub location: String,
    /// Revision: 0 when booked, then the change's Unix time (so it only grows).
    pub sequence: i64,
    /// Whether this entry cancels the booking.
    pub cancelled: bool,
}

const ICS_TIME: &str = "%Y%m%dT%H%M%SZ";

/// The `.ics` file of `entry` (RFC 5545; times in UTC, which every calendar shows locally). A
/// calendar that imported the booking's first file updates or removes that entry: same UID,
/// higher SEQUENCE.
pub fn ics(entry: &CalendarEntry<'_>, stamp: DateTime<Utc>) -> String {
    let summary = format!(
        "Lomash Wood {} ({})",
        appointment_label(entry.kind),
        entry.reference
    );
    let mut lines = vec![
        "BEGIN:VCALENDAR".to_owned(),
        "VERSION:2.0".to_owned(),
        "PRODID:-//Lomash Wood//Bookings//EN".to_owned(),
        format!(
            "METHOD:{}",
            if entry.cancelled { "CANCEL" } else { "PUBLISH" }
        ),
        "BEGIN:VEVENT".to_owned(),
        format!("UID:{}@lomashwood.co.uk", entry.booking_id),
        format!("SEQUENCE:{}", entry.sequence),
        format!("DTSTAMP:{}", stamp.format(ICS_TIME)),
        format!("DTSTART:{}", entry.starts.format(ICS_TIME)),
    ];
    if let Some(ends) = entry.ends {
        lines.push(format!("DTEND:{}", ends.format(ICS_TIME)));
    }
    lines.push(format!("SUMMARY:{}", ics_text(&summary)));
    if !entry.location.is_empty() {
        lines.push(format!("LOCATION:{}", ics_text(&entry.location)));
    }
    lines.push(format!(
        "DESCRIPTION:{}",
        ics_text(&format!(
            "Your consultation, reference {}.",
            entry.reference
        ))
    ));
    lines.push(format!(
        "STATUS:{}",
        if entry.cancelled {
            "CANCELLED"
        } else {
            "CONFIRMED"
        }
    ));
    lines.push("END:VEVENT".to_owned());
    lines.push("END:VCALENDAR".to_owned());
    let mut out = lines.join("\r\n");
    out.push_str("\r\n");
    out
}

fn ics_attachment(
    reference: &str,
    entry: &CalendarEntry<'_>,
    stamp: DateTime<Utc>,
) -> StoredAttachment {
    let method = if entry.cancelled { "CANCEL" } else { "PUBLISH" };
    StoredAttachment::inline(
        &format!("{reference}.ics"),
        &format!("text/calendar; charset=utf-8; method={method}"),
        ics(entry, stamp).as_bytes(),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn london_time_follows_british_summer_time() {
        assert_eq!(
            london(utc("2026-12-01T10:00:00Z")).to_string(),
            "2026-12-01 10:00:00"
        );
        assert_eq!(
            london(utc("2026-07-01T10:00:00Z")).to_string(),
            "2026-07-01 11:00:00"
        );
        // 2026: BST from Sunday 29 March 01:00 UTC to Sunday 25 October 01:00 UTC.
        assert_eq!(
            london(utc("2026-03-29T00:59:00Z")).to_string(),
            "2026-03-29 00:59:00"
        );
        assert_eq!(
            london(utc("2026-03-29T01:00:00Z")).to_string(),
            "2026-03-29 02:00:00"
        );
        assert_eq!(
            london(utc("2026-10-25T00:59:00Z")).to_string(),
            "2026-10-25 01:59:00"
        );
        assert_eq!(
            london(utc("2026-10-25T01:00:00Z")).to_string(),
            "2026-10-25 01:00:00"
        );
    }

    #[test]
    fn money_is_shown_in_pounds_with_separators() {
        assert_eq!(money(129_900, "GBP"), "£1,299.00");
        assert_eq!(money(5, "gbp"), "£0.05");
        assert_eq!(money(123_456_789, "GBP"), "£1,234,567.89");
        assert_eq!(money(1000, "USD"), "10.00 USD");
    }
}
