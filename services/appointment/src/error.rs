//! The one error type of the appointment service, rendered as problem+json.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use service_kit::{FieldError, Problem};

/// Everything a handler of this service can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AppointmentError {
    /// Input that failed validation (422, one entry per field).
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// The slot is taken (or overlaps a booking of its consultant): 409 `SLOT_UNAVAILABLE`.
    #[error("slot unavailable")]
    SlotUnavailable,
    /// The booking's status does not allow this transition.
    #[error("illegal transition from {from} by {action}")]
    IllegalTransition {
        /// The current status.
        from: String,
        /// What was attempted.
        action: &'static str,
    },
    /// Too late to cancel or reschedule (422).
    #[error("inside the cancellation notice")]
    NoticePassed {
        /// The notice, in hours.
        hours: i64,
    },
    /// No such resource (or not visible to the caller).
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// The caller may not do this.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// The request conflicts with the resource's state.
    #[error("conflict: {1}")]
    Conflict(&'static str, &'static str),
    /// A database failure.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Writing to the outbox failed.
    #[error("outbox error: {0}")]
    Outbox(#[from] event_bus::OutboxError),
    /// A problem made elsewhere (an extractor, a shared helper), sent as it is.
    #[error(transparent)]
    Problem(#[from] Problem),
    /// Anything else unexpected.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppointmentError {
    /// 422 for one field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    /// Whether this is the database refusing a second active booking of a slot or a consultant.
    pub fn is_slot_conflict(&self) -> bool {
        match self {
            Self::SlotUnavailable => true,
            Self::Database(error) => matches!(
                service_kit::problem::violated_constraint(error),
                Some("bookings_no_overlap" | "bookings_active_slot_key")
            ),
            _ => false,
        }
    }

    /// The problem document of this error.
    pub fn to_problem(&self) -> Problem {
        match self {
            Self::Validation(errors) => Problem::validation(errors.clone()),
            Self::SlotUnavailable => slot_unavailable(),
            Self::IllegalTransition { from, action } => Problem::conflict(
                "illegal-transition",
                format!("A {from} booking cannot be {action}."),
            )
            .with_extension("code", "ILLEGAL_TRANSITION".into()),
            Self::NoticePassed { hours } => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "notice-passed",
                "Too late to change",
            )
            .with_detail(format!(
                "Bookings can be cancelled or rescheduled up to {hours} hours before they start; \
                 please call the showroom."
            ))
            .with_extension("code", "NOTICE_PASSED".into()),
            Self::NotFound(what) => Problem::not_found(format!("No such {what}.")),
            Self::Forbidden(why) => Problem::forbidden(*why),
            Self::Conflict(code, detail) => Problem::conflict(code, *detail),
            Self::Database(sqlx::Error::Database(db))
                if matches!(db.code().as_deref(), Some("40P01" | "40001")) =>
            {
                Problem::conflict(
                    "concurrent-change",
                    "Another change to the same booking or slot got there first; try again.",
                )
            }
            Self::Database(error) => match service_kit::problem::violated_constraint(error) {
                Some("bookings_no_overlap" | "bookings_active_slot_key") => slot_unavailable(),
                Some("showrooms_name_key") => {
                    Problem::conflict("showroom-name-taken", "A showroom with this name exists.")
                }
                Some("consultants_user_id_key") => {
                    Problem::conflict("consultant-exists", "This user is already a consultant.")
                }
                Some("consultants_showroom_id_fkey" | "availability_rules_showroom_id_fkey") => {
                    Problem::invalid_field("showroomId", "is not a showroom")
                }
                Some("availability_rules_hours_check") => {
                    Problem::invalid_field("endsAt", "must be after startsAt")
                }
                Some("availability_rules_showroom_check") => Problem::invalid_field(
                    "showroomId",
                    "is required for SHOWROOM_VISIT and not allowed otherwise",
                ),
                Some("time_slots_showroom_id_fkey" | "bookings_showroom_id_fkey") => {
                    Problem::conflict(
                        "showroom-in-use",
                        "The showroom has slots or bookings; deactivate it instead.",
                    )
                }
                Some("time_slots_consultant_id_fkey" | "bookings_consultant_id_fkey") => {
                    Problem::conflict(
                        "consultant-in-use",
                        "The consultant has bookings; deactivate them instead.",
                    )
                }
                _ => Problem::from_database(error),
            },
            Self::Outbox(error) => Problem::internal(error),
            Self::Problem(problem) => problem.clone(),
            Self::Internal(error) => Problem::internal(error.as_ref()),
        }
    }
}

fn slot_unavailable() -> Problem {
    Problem::conflict(
        "slot-unavailable",
        "This time slot has just been taken; please choose another.",
    )
    .with_extension("code", "SLOT_UNAVAILABLE".into())
}

impl IntoResponse for AppointmentError {
    fn into_response(self) -> Response {
        self.to_problem().into_response()
    }
}

/// Runs `parse` and records a failure under `field`.
pub fn collect<T>(
    errors: &mut Vec<FieldError>,
    field: &str,
    parsed: Result<T, validation::ValidationError>,
) -> Option<T> {
    match parsed {
        Ok(value) => Some(value),
        Err(error) => {
            errors.push(FieldError::new(field, error.message()));
            None
        }
    }
}

/// Handler result.
pub type AppointmentResult<T> = Result<T, AppointmentError>;
