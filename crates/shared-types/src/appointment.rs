//! Events published by the appointment service.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use crate::order_payment::CancelledBy;
use crate::{envelope::event_payload, topics};

/// The kind of consultation booked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AppointmentType {
    /// A consultant visits and measures the room.
    HomeMeasurement,
    /// The customer visits a showroom.
    ShowroomVisit,
    /// A video call.
    VirtualConsultation,
}

/// `booking.created`: a consultation was booked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BookingCreated {
    /// The booking.
    pub booking_id: Uuid,
    /// The short code the customer quotes, e.g. `BK-20261201-7K3Q`.
    pub reference_code: String,
    /// The kind of appointment.
    pub appointment_type: AppointmentType,
    /// About a kitchen.
    pub for_kitchen: bool,
    /// About a bedroom.
    pub for_bedroom: bool,
    /// The time slot taken.
    pub slot_id: Uuid,
    /// When it starts.
    pub slot_starts_at: DateTime<Utc>,
    /// When it ends.
    pub slot_ends_at: DateTime<Utc>,
    /// The showroom, for showroom visits.
    #[serde(default)]
    pub showroom_id: Option<Uuid>,
    /// The consultant assigned, if already known.
    #[serde(default)]
    pub consultant_id: Option<Uuid>,
    /// The customer's account, unless they booked as a guest.
    #[serde(default)]
    pub user_id: Option<Uuid>,
    /// The customer's full name.
    pub customer_name: String,
    /// The customer's email.
    pub customer_email: String,
    /// The customer's E.164 phone number.
    pub customer_phone: String,
    /// The postcode of the property.
    pub postcode: String,
    /// When it was booked.
    pub created_at: DateTime<Utc>,
}
event_payload!(BookingCreated, topics::BOOKING_CREATED, 1);

/// `booking.confirmed`: staff confirmed a booking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BookingConfirmed {
    /// The booking.
    pub booking_id: Uuid,
    /// The customer-facing reference.
    pub reference_code: String,
    /// The kind of appointment.
    pub appointment_type: AppointmentType,
    /// When it starts.
    pub slot_starts_at: DateTime<Utc>,
    /// When it ends.
    pub slot_ends_at: DateTime<Utc>,
    /// The showroom, for showroom visits.
    #[serde(default)]
    pub showroom_id: Option<Uuid>,
    /// The consultant assigned.
    #[serde(default)]
    pub consultant_id: Option<Uuid>,
    /// The customer's account, unless a guest.
    #[serde(default)]
    pub user_id: Option<Uuid>,
    /// The customer's full name.
    pub customer_name: String,
    /// The customer's email.
    pub customer_email: String,
    /// When it was confirmed.
    pub confirmed_at: DateTime<Utc>,
}
event_payload!(BookingConfirmed, topics::BOOKING_CONFIRMED, 1);

/// `booking.rescheduled`: a booking moved to another slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BookingRescheduled {
    /// The booking.
    pub booking_id: Uuid,
    /// The customer-facing reference.
    pub reference_code: String,
    /// The kind of appointment.
    pub appointment_type: AppointmentType,
    /// When the old slot started.
    pub previous_slot_starts_at: DateTime<Utc>,
    /// When the old slot ended.
    pub previous_slot_ends_at: DateTime<Utc>,
    /// The new slot.
    pub slot_id: Uuid,
    /// When the new slot starts.
    pub slot_starts_at: DateTime<Utc>,
    /// When the new slot ends.
    pub slot_ends_at: DateTime<Utc>,
    /// The customer's account, unless a guest.
    #[serde(default)]
    pub user_id: Option<Uuid>,
    /// The customer's full name.
    pub customer_name: String,
    /// The customer's email.
    pub customer_email: String,
    /// When it was rescheduled.
    pub rescheduled_at: DateTime<Utc>,
}
event_payload!(BookingRescheduled, topics::BOOKING_RESCHEDULED, 1);

/// `booking.cancelled`: a booking was cancelled and its slot freed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BookingCancelled {
    /// The booking.
    pub booking_id: Uuid,
    /// The customer-facing reference.
    pub reference_code: String,
    /// Who cancelled it.
    pub cancelled_by: CancelledBy,
    /// Free-text reason, if given.
    #[serde(default)]
    pub reason: Option<String>,
    /// When the cancelled slot would have started.
    pub slot_starts_at: DateTime<Utc>,
    /// The customer's account, unless a guest.
    #[serde(default)]
    pub user_id: Option<Uuid>,
    /// The customer's full name.
    pub customer_name: String,
    /// The customer's email.
    pub customer_email: String,
    /// When it was cancelled.
    pub cancelled_at: DateTime<Utc>,
}
event_payload!(BookingCancelled, topics::BOOKING_CANCELLED, 1);

/// How far ahead a reminder is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReminderKind {
    /// The day before.
    DayBefore,
    /// A couple of hours before.
    SameDay,
}

/// `booking.reminder_due`: it is time to remind the customer of their appointment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BookingReminderDue {
    /// The booking.
    pub booking_id: Uuid,
    /// The customer-facing reference.
    pub reference_code: String,
    /// Which reminder this is.
    pub reminder: ReminderKind,
    /// The kind of appointment.
    pub appointment_type: AppointmentType,
    /// When it starts.
    pub slot_starts_at: DateTime<Utc>,
    /// When it ends.
    pub slot_ends_at: DateTime<Utc>,
    /// The showroom, for showroom visits.
    #[serde(default)]
    pub showroom_id: Option<Uuid>,
    /// The customer's account, unless a guest.
    #[serde(default)]
    pub user_id: Option<Uuid>,
    /// The customer's full name.
    pub customer_name: String,
    /// The customer's email.
    pub customer_email: String,
    /// The customer's E.164 phone number, for SMS reminders.
    #[serde(default)]
    pub customer_phone: Option<String>,
}
event_payload!(BookingReminderDue, topics::BOOKING_REMINDER_DUE, 1);

/// How a brochure is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BrochureDelivery {
    /// A PDF by email.
    Email,
    /// A printed copy by post.
    Post,
}

/// A UK postal address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostalAddress {
    /// First line.
    pub line1: String,
    /// Second line.
    #[serde(default)]
    pub line2: Option<String>,
    /// Town or city.
    pub city: String,
    /// County.
    #[serde(default)]
    pub county: Option<String>,
    /// Postcode, normalised (`SW1A 1AA`).
    pub postcode: String,
}

/// `brochure.requested`: someone asked for a brochure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BrochureRequested {
    /// The request.
    pub request_id: Uuid,
    /// The requester's account, if signed in.
    #[serde(default)]
    pub user_id: Option<Uuid>,
    /// Full name.
    pub name: String,
    /// Email.
    pub email: String,
    /// E.164 phone number, if given.
    #[serde(default)]
    pub phone: Option<String>,
    /// Kitchen brochure wanted.
    pub for_kitchen: bool,
    /// Bedroom brochure wanted.
    pub for_bedroom: bool,
    /// By email or by post.
    pub delivery: BrochureDelivery,
    /// Where to post it (required for [`BrochureDelivery::Post`]).
    #[serde(default)]
    pub address: Option<PostalAddress>,
    /// The requester's postcode, normalised (`SW4 0AB`), when given.
    #[serde(default)]
    pub postcode: Option<String>,
    /// Whether they agreed to marketing emails.
    #[serde(default)]
    pub marketing_consent: bool,
    /// When it was requested.
    pub requested_at: DateTime<Utc>,
}
event_payload!(BrochureRequested, topics::BROCHURE_REQUESTED, 1);
