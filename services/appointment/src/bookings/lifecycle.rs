//! Status transitions: confirm, complete, no-show, cancel, reschedule. Each runs in one
//! transaction that locks the booking, checks the caller and the transition, writes the change,
//! its history line and its event.

use axum::Json;
use axum::extract::{Path, State};
use chrono::Utc;
use serde::Deserialize;
use service_kit::audit;
use service_kit::{Caller, ValidatedJson};
use shared_types::appointment::{
    BookingCancelled, BookingConfirmed, BookingRescheduled, CancelledBy,
};
use sqlx::postgres::types::PgRange;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use validation::UkPostcode;
use validator::Validate;

use super::views::{BookingView, view_of};
use super::{Actor, BookingRow, BookingStatus, HistoryEntry, Relation, SlotWanted};
use crate::catalogue::kind_of;
use crate::error::{AppointmentError, AppointmentResult};
use crate::{AppState, event};

/// A status change staff make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StaffAction {
    Confirm,
    Complete,
    NoShow,
}

impl StaffAction {
    fn verb(self) -> &'static str {
        match self {
            Self::Confirm => "confirmed",
            Self::Complete => "completed",
            Self::NoShow => "marked as a no-show",
        }
    }

    fn history(self) -> &'static str {
        match self {
            Self::Confirm => "CONFIRMED",
            Self::Complete => "COMPLETED",
            Self::NoShow => "NO_SHOW",
        }
    }

    /// The status it leads to from `from`, if legal.
    fn next(self, from: BookingStatus) -> Option<BookingStatus> {
        match (self, from) {
            (Self::Confirm, BookingStatus::Pending) => Some(BookingStatus::Confirmed),
            (Self::Complete, BookingStatus::Confirmed) => Some(BookingStatus::Completed),
            (Self::NoShow, BookingStatus::Confirmed) => Some(BookingStatus::NoShow),
            _ => None,
        }
    }
}

async fn locked(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> AppointmentResult<(
    sqlx::Transaction<'static, sqlx::Postgres>,
    BookingRow,
    Relation,
)> {
    let mut tx = state.db.begin().await?;
    let booking = super::load(&mut tx, id, true)
        .await?
        .ok_or(AppointmentError::NotFound("appointment"))?;
    let relation = super::relation(caller, &booking)?;
    Ok((tx, booking, relation))
}

/// Records a change by the consultant or an administrator in the audit trail (a customer's own
/// cancel or reschedule is in the booking history only). The trail keeps where the booking stands,
/// never who the customer is or why it changed.
async fn audit_staff(
    conn: &mut sqlx::PgConnection,
    caller: &Caller,
    relation: Relation,
    action: &str,
    before: &BookingRow,
    after: &BookingRow,
) -> Result<(), sqlx::Error> {
    if relation == Relation::Owner {
        return Ok(());
    }
    audit::Entry::new(caller, "appointment", before.id, action)
        .before(&AuditedBooking::from(before))
        .after(&AuditedBooking::from(after))
        .record(conn)
        .await
}

/// The part of a booking the audit trail keeps.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct AuditedBooking<'a> {
    status: &'a str,
    slot_id: Uuid,
    consultant_id: Uuid,
    showroom_id: Option<Uuid>,
    starts_at: chrono::DateTime<Utc>,
    ends_at: chrono::DateTime<Utc>,
}

impl<'a> From<&'a BookingRow> for AuditedBooking<'a> {
    fn from(booking: &'a BookingRow) -> Self {
        Self {
            status: &booking.status,
            slot_id: booking.slot_id,
            consultant_id: booking.consultant_id,
            showroom_id: booking.showroom_id,
            starts_at: booking.starts_at,
            ends_at: booking.ends_at,
        }
    }
}

async fn staff_transition(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    action: StaffAction,
) -> AppointmentResult<BookingView> {
    let (mut tx, booking, relation) = locked(state, caller, id).await?;
    if relation == Relation::Owner {
        return Err(AppointmentError::Forbidden(
            "Only the consultant or an administrator can do this.",
        ));
    }
    let from = booking.status()?;
    let to = action
        .next(from)
        .ok_or(AppointmentError::IllegalTransition {
            from: from.as_str().to_owned(),
            action: action.verb(),
        })?;
    let now = Utc::now();
    if matches!(action, StaffAction::Complete | StaffAction::NoShow) && booking.starts_at > now {
        return Err(AppointmentError::Conflict(
            "appointment-not-started",
            "The appointment has not started yet.",
        ));
    }
    sqlx::query!(
        "UPDATE bookings SET status = $2 WHERE id = $1",
        booking.id,
        to.as_str()
    )
    .execute(&mut *tx)
    .await?;
    super::record(
        &mut tx,
        booking.id,
        HistoryEntry {
            action: action.history(),
            from: Some(from),
            to,
            actor: Actor::of(Some(caller)),
            reason: None,
            details: None,
        },
    )
    .await?;
    if action == StaffAction::Confirm {
        let payload = BookingConfirmed {
            booking_id: booking.id,
            reference_code: booking.reference_code.clone(),
            appointment_type: kind_of(&booking.appointment_type)?.event_type(),
            slot_starts_at: booking.starts_at,
            slot_ends_at: booking.ends_at,
            showroom_id: booking.showroom_id,
            consultant_id: Some(booking.consultant_id),
            user_id: booking.user_id,
            customer_name: booking.customer_name(),
            customer_email: booking.email.clone(),
            confirmed_at: now,
        };
        event_bus::outbox::publish(&mut tx, &event(payload)).await?;
    }
    let updated = super::load(&mut tx, id, false)
        .await?
        .ok_or(AppointmentError::NotFound("appointment"))?;
    let action = format!("status.{}", to.as_str().to_ascii_lowercase());
    audit_staff(&mut tx, caller, relation, &action, &booking, &updated).await?;
    tx.commit().await?;
    view_of(updated, relation)
}

/// Confirms a PENDING booking (assigned consultant, admin); emits `booking.confirmed`.
#[utoipa::path(
    post,
    path = "/v1/appointments/{id}/confirm",
    tag = "appointments",
    params(("id" = Uuid, Path, description = "Booking id")),
    responses(
        (status = 200, description = "Confirmed", body = BookingView),
        (status = 403, description = "The customer cannot confirm", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such booking for this caller", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not PENDING", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn confirm(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> AppointmentResult<Json<BookingView>> {
    staff_transition(&state, &caller, id, StaffAction::Confirm)
        .await
        .map(Json)
}

/// Marks a CONFIRMED booking that has started as completed (assigned consultant, admin).
#[utoipa::path(
    post,
    path = "/v1/appointments/{id}/complete",
    tag = "appointments",
    params(("id" = Uuid, Path, description = "Booking id")),
    responses(
        (status = 200, description = "Completed", body = BookingView),
        (status = 403, description = "The customer cannot", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such booking for this caller", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not CONFIRMED, or not started", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn complete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> AppointmentResult<Json<BookingView>> {
    staff_transition(&state, &caller, id, StaffAction::Complete)
        .await
        .map(Json)
}

/// Marks a CONFIRMED booking that has started as a no-show (assigned consultant, admin).
#[utoipa::path(
    post,
    path = "/v1/appointments/{id}/no-show",
    tag = "appointments",
    params(("id" = Uuid, Path, description = "Booking id")),
    responses(
        (status = 200, description = "Marked", body = BookingView),
        (status = 403, description = "The customer cannot", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such booking for this caller", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not CONFIRMED, or not started", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn no_show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> AppointmentResult<Json<BookingView>> {
    staff_transition(&state, &caller, id, StaffAction::NoShow)
        .await
        .map(Json)
}

/// Why a booking is cancelled.
#[derive(Debug, Clone, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CancelRequest {
    /// The reason.
    #[validate(length(min = 1, max = 1000, message = "must be 1–1000 characters"))]
    #[schema(min_length = 1, max_length = 1000)]
    pub reason: String,
}

fn check_notice(
    state: &AppState,
    relation: Relation,
    booking: &BookingRow,
) -> AppointmentResult<()> {
    let notice = state.settings.cancel_notice;
    if relation == Relation::Owner && booking.starts_at - Utc::now() < notice {
        return Err(AppointmentError::NoticePassed {
            hours: notice.num_hours(),
        });
    }
    Ok(())
}

/// Cancels a PENDING or CONFIRMED booking and frees its slot. Customers up to the notice
/// (default 24 h) before the start; the consultant and admins at any time.
#[utoipa::path(
    post,
    path = "/v1/appointments/{id}/cancel",
    tag = "appointments",
    params(("id" = Uuid, Path, description = "Booking id")),
    request_body = CancelRequest,
    responses(
        (status = 200, description = "Cancelled", body = BookingView),
        (status = 404, description = "No such booking for this caller", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already over or cancelled", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Inside the cancellation notice, or no reason", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    ValidatedJson(request): ValidatedJson<CancelRequest>,
) -> AppointmentResult<Json<BookingView>> {
    let (mut tx, booking, relation) = locked(&state, &caller, id).await?;
    let from = booking.status()?;
    if !from.is_active() {
        return Err(AppointmentError::IllegalTransition {
            from: from.as_str().to_owned(),
            action: "cancelled",
        });
    }
    check_notice(&state, relation, &booking)?;
    let reason = request.reason.trim();
    let now = Utc::now();
    sqlx::query!(
        "UPDATE bookings SET status = 'CANCELLED', cancelled_at = $2, cancel_reason = $3
         WHERE id = $1",
        booking.id,
        now,
        reason
    )
    .execute(&mut *tx)
    .await?;
    super::release_slot(&mut tx, booking.slot_id).await?;
    super::record(
        &mut tx,
        booking.id,
        HistoryEntry {
            action: "CANCELLED",
            from: Some(from),
            to: BookingStatus::Cancelled,
            actor: Actor::of(Some(&caller)),
            reason: Some(reason),
            details: None,
        },
    )
    .await?;
    let payload = BookingCancelled {
        booking_id: booking.id,
        reference_code: booking.reference_code.clone(),
        cancelled_by: match relation {
            Relation::Owner => CancelledBy::Customer,
            Relation::Consultant | Relation::Admin => CancelledBy::Staff,
        },
        reason: Some(reason.to_owned()),
        slot_starts_at: booking.starts_at,
        user_id: booking.user_id,
        customer_name: booking.customer_name(),
        customer_email: booking.email.clone(),
        cancelled_at: now,
    };
    event_bus::outbox::publish(&mut tx, &event(payload)).await?;
    let updated = super::load(&mut tx, id, false)
        .await?
        .ok_or(AppointmentError::NotFound("appointment"))?;
    audit_staff(
        &mut tx,
        &caller,
        relation,
        "status.cancelled",
        &booking,
        &updated,
    )
    .await?;
    tx.commit().await?;
    state.availability.invalidate().await;
    view_of(updated, relation).map(Json)
}

/// The new slot.
#[derive(Debug, Clone, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RescheduleRequest {
    /// A free slot of the same appointment type.
    pub slot_id: Uuid,
    /// Why (kept in the history).
    #[serde(default)]
    #[validate(length(max = 1000, message = "must be at most 1000 characters"))]
    #[schema(max_length = 1000)]
    pub reason: Option<String>,
}

/// Moves a PENDING or CONFIRMED booking to another free slot of the same type, keeping its
/// reference and status. Atomic: the new slot is taken and the old one released in one
/// transaction, or nothing changes (409 when the new slot is taken). Customers only up to the
/// notice before the current start.
#[utoipa::path(
    post,
    path = "/v1/appointments/{id}/reschedule",
    tag = "appointments",
    params(("id" = Uuid, Path, description = "Booking id")),
    request_body = RescheduleRequest,
    responses(
        (status = 200, description = "Moved", body = BookingView),
        (status = 404, description = "No such booking for this caller", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 409, description = "New slot taken, or booking over", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unsuitable slot, or inside the notice", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn reschedule(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    ValidatedJson(request): ValidatedJson<RescheduleRequest>,
) -> AppointmentResult<Json<BookingView>> {
    let (mut tx, booking, relation) = locked(&state, &caller, id).await?;
    let status = booking.status()?;
    if !status.is_active() {
        return Err(AppointmentError::IllegalTransition {
            from: status.as_str().to_owned(),
            action: "rescheduled",
        });
    }
    check_notice(&state, relation, &booking)?;
    if request.slot_id == booking.slot_id {
        return Err(AppointmentError::field(
            "slotId",
            "is the booking's current slot",
        ));
    }
    let postcode = UkPostcode::parse(&booking.postcode)
        .map_err(|_| anyhow::anyhow!("stored postcode {} is invalid", booking.postcode))?;
    let slot = super::load_slot(&mut tx, request.slot_id)
        .await?
        .ok_or_else(|| AppointmentError::field("slotId", "is not a bookable slot"))?;
    let kind = kind_of(&booking.appointment_type)?;
    let mut errors = Vec::new();
    super::check_slot(
        &slot,
        &SlotWanted {
            kind,
            showroom_id: None,
            outward: postcode.outward(),
            area: postcode.area(),
        },
        &state.settings,
        Utc::now(),
        &mut errors,
    )?;
    super::release_slot(&mut tx, booking.slot_id).await?;
    super::take_slot(&mut tx, slot.id).await?;
    sqlx::query!(
        "UPDATE bookings SET slot_id = $2, consultant_id = $3, showroom_id = $4, during = $5,
                             blocks = $6, snapshot = $7
         WHERE id = $1",
        booking.id,
        slot.id,
        slot.consultant_id,
        slot.showroom_id,
        PgRange::from(slot.starts_at..slot.ends_at),
        PgRange::from(slot.starts_at..slot.blocks_until()),
        slot.snapshot(),
    )
    .execute(&mut *tx)
    .await?;
    // Reminders follow the new time.
    sqlx::query!(
        "DELETE FROM reminders_sent WHERE booking_id = $1",
        booking.id
    )
    .execute(&mut *tx)
    .await?;
    let reason = request
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    super::record(
        &mut tx,
        booking.id,
        HistoryEntry {
            action: "RESCHEDULED",
            from: Some(status),
            to: status,
            actor: Actor::of(Some(&caller)),
            reason,
            details: Some(serde_json::json!({
                "fromSlotId": booking.slot_id,
                "fromStartsAt": booking.starts_at,
                "toSlotId": slot.id,
                "toStartsAt": slot.starts_at,
            })),
        },
    )
    .await?;
    let payload = BookingRescheduled {
        booking_id: booking.id,
        reference_code: booking.reference_code.clone(),
        appointment_type: kind.event_type(),
        previous_slot_starts_at: booking.starts_at,
        previous_slot_ends_at: booking.ends_at,
        slot_id: slot.id,
        slot_starts_at: slot.starts_at,
        slot_ends_at: slot.ends_at,
        user_id: booking.user_id,
        customer_name: booking.customer_name(),
        customer_email: booking.email.clone(),
        rescheduled_at: Utc::now(),
    };
    event_bus::outbox::publish(&mut tx, &event(payload)).await?;
    let updated = super::load(&mut tx, id, false)
        .await?
        .ok_or(AppointmentError::NotFound("appointment"))?;
    audit_staff(&mut tx, &caller, relation, "reschedule", &booking, &updated).await?;
    tx.commit().await?;
    state.availability.invalidate().await;
    // The consultant may have changed; the caller's relation was checked on the old booking.
    view_of(updated, relation).map(Json)
}

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(confirm))
        .routes(routes!(complete))
        .routes(routes!(no_show))
        .routes(routes!(cancel))
        .routes(routes!(reschedule))
}
