//! What travels over a live socket: `{id, type, data, at}`, and how domain events become it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use service_kit::shared_types::DomainEvent;
use service_kit::shared_types::appointment::BookingConfirmed;
use service_kit::shared_types::customer::TicketUpdated;
use service_kit::shared_types::order_payment::PaymentSucceeded;
use uuid::Uuid;

/// The kind of a live message (its `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LiveKind {
    /// The first message on every socket: the server is ready to push.
    Connected,
    /// One of the user's bookings was confirmed.
    BookingConfirmed,
    /// One of the user's orders was paid.
    OrderPaid,
    /// Staff changed or replied to one of the user's support tickets.
    TicketUpdated,
}

/// One live message, exactly as a client receives it (JSON text), and what
/// [`LiveHub::publish`](super::LiveHub::publish) takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveEvent {
    /// The domain event's id for event messages (a client drops repeats by it), or a fresh id.
    pub id: Uuid,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: LiveKind,
    /// Its details (ids and display fields; never email addresses or phone numbers).
    pub data: serde_json::Value,
    /// When it happened.
    pub at: DateTime<Utc>,
}

impl LiveEvent {
    /// A message with a fresh id, happening now.
    pub fn new(kind: LiveKind, data: serde_json::Value) -> Self {
        Self {
            id: Uuid::now_v7(),
            kind,
            data,
            at: Utc::now(),
        }
    }

    /// `BOOKING_CONFIRMED` for the booking's account holder (none for a guest booking).
    pub fn booking_confirmed(event: &DomainEvent<BookingConfirmed>) -> Option<(Uuid, Self)> {
        let booking = &event.payload;
        let user_id = booking.user_id?;
        Some((
            user_id,
            Self {
                id: event.id,
                kind: LiveKind::BookingConfirmed,
                data: json!({
                    "bookingId": booking.booking_id,
                    "referenceCode": booking.reference_code,
                    "appointmentType": booking.appointment_type,
                    "startsAt": booking.slot_starts_at,
                    "endsAt": booking.slot_ends_at,
                    "showroomId": booking.showroom_id,
                }),
                at: booking.confirmed_at,
            },
        ))
    }

    /// `ORDER_PAID` for the paying customer (none for a guest checkout).
    pub fn order_paid(event: &DomainEvent<PaymentSucceeded>) -> Option<(Uuid, Self)> {
        let payment = &event.payload;
        let user_id = payment.user_id?;
        Some((
            user_id,
            Self {
                id: event.id,
                kind: LiveKind::OrderPaid,
                data: json!({
                    "orderId": payment.order_id,
                    "paymentId": payment.payment_id,
                    "amount": payment.amount,
                    "currency": payment.currency,
                    "invoiceNumber": payment.invoice_number,
                }),
                at: payment.paid_at,
            },
        ))
    }

    /// `TICKET_UPDATED` for the ticket's customer, unless the customer made the change
    /// themselves (they know already).
    pub fn ticket_updated(event: &DomainEvent<TicketUpdated>) -> Option<(Uuid, Self)> {
        let ticket = &event.payload;
        if ticket.updated_by == Some(ticket.user_id) {
            return None;
        }
        Some((
            ticket.user_id,
            Self {
                id: event.id,
                kind: LiveKind::TicketUpdated,
                data: json!({
                    "ticketId": ticket.ticket_id,
                    "ticketNumber": ticket.ticket_number,
                    "status": ticket.status,
                    "previousStatus": ticket.previous_status,
                    "staffReplied": ticket.staff_replied,
                }),
                at: ticket.updated_at,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use service_kit::shared_types::appointment::AppointmentType;
    use service_kit::shared_types::customer::TicketStatus;

    use super::*;

    fn confirmed(user_id: Option<Uuid>) -> DomainEvent<BookingConfirmed> {
        DomainEvent::new(
            "appointment",
            BookingConfirmed {
                booking_id: Uuid::now_v7(),
                reference_code: "LW-ABC123".into(),
                appointment_type: AppointmentType::ShowroomVisit,
                slot_starts_at: Utc::now(),
                slot_ends_at: Utc::now(),
                showroom_id: Some(Uuid::now_v7()),
                consultant_id: None,
                user_id,
                customer_name: "Ada Lovelace".into(),
                customer_email: "ada@example.com".into(),
                confirmed_at: Utc::now(),
            },
        )
    }

    fn ticket(user_id: Uuid, updated_by: Option<Uuid>) -> DomainEvent<TicketUpdated> {
        DomainEvent::new(
            "customer",
            TicketUpdated {
                ticket_id: Uuid::now_v7(),
                ticket_number: "T-1001".into(),
                user_id,
                status: TicketStatus::AwaitingCustomer,
                previous_status: Some(TicketStatus::Open),
                staff_replied: true,
                updated_by,
                updated_at: Utc::now(),
            },
        )
    }

    #[test]
    fn a_booking_confirmation_goes_to_its_account_holder_without_contact_details() {
        let user = Uuid::now_v7();
        let event = confirmed(Some(user));
        let (to, message) = LiveEvent::booking_confirmed(&event).expect("an account holder");
        assert_eq!(to, user);
        assert_eq!(
            message.id, event.id,
            "the event id lets clients drop repeats"
        );
        let wire = serde_json::to_value(&message).expect("serialisable");
        assert_eq!(wire["type"], "BOOKING_CONFIRMED");
        assert_eq!(wire["data"]["referenceCode"], "LW-ABC123");
        assert_eq!(wire["data"]["appointmentType"], "SHOWROOM_VISIT");
        assert!(!wire.to_string().contains("ada@example.com"));
        assert!(wire["at"].is_string());
    }

    #[test]
    fn a_guest_booking_has_nobody_to_tell() {
        assert!(LiveEvent::booking_confirmed(&confirmed(None)).is_none());
    }

    #[test]
    fn a_ticket_change_is_pushed_unless_the_customer_made_it() {
        let user = Uuid::now_v7();
        let by_staff = ticket(user, Some(Uuid::now_v7()));
        let (to, message) = LiveEvent::ticket_updated(&by_staff).expect("a staff change");
        assert_eq!(to, user);
        assert_eq!(message.data["staffReplied"], true);
        assert_eq!(message.data["status"], "AWAITING_CUSTOMER");
        assert!(LiveEvent::ticket_updated(&ticket(user, Some(user))).is_none());
    }
}
