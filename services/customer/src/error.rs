//! The one error type of the customer service, rendered as problem+json.

use axum::response::{IntoResponse, Response};
use service_kit::{FieldError, Problem, event_bus};

/// Everything a handler of this service can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CustomerError {
    /// Input that failed validation (422, one entry per field).
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// No such resource (or not the caller's: ownership failures are 404 too).
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// The request conflicts with the current state (409 with a machine code).
    #[error("conflict: {1}")]
    Conflict(&'static str, String),
    /// A database failure (named constraints become 409/422).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Writing to the outbox failed.
    #[error("outbox error: {0}")]
    Outbox(#[from] event_bus::OutboxError),
    /// A problem made elsewhere (an extractor), sent as it is.
    #[error(transparent)]
    Problem(#[from] Problem),
    /// Anything else unexpected.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl CustomerError {
    /// 422 for one field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    /// The problem document of this error.
    pub fn to_problem(&self) -> Problem {
        match self {
            Self::Validation(errors) => Problem::validation(errors.clone()),
            Self::NotFound(what) => Problem::not_found(format!("No such {what}.")),
            Self::Conflict(code, detail) => Problem::conflict(code, detail.clone()),
            Self::Database(error) => constraint_problem(error),
            Self::Outbox(error) => Problem::internal(error),
            Self::Problem(problem) => problem.clone(),
            Self::Internal(error) => Problem::internal(error.as_ref()),
        }
    }
}

/// Named constraints → 409 (uniqueness, invariants) or 422 (a value the schema refuses).
fn constraint_problem(error: &sqlx::Error) -> Problem {
    let Some(constraint) = service_kit::problem::violated_constraint(error) else {
        return Problem::from_database(error);
    };
    match constraint {
        "reviews_one_per_customer" => Problem::conflict(
            "review-exists",
            "You have already reviewed this product; edit that review instead.",
        ),
        "addresses_one_default_per_kind" => Problem::conflict(
            "default-address-changed",
            "Another request changed the default address at the same time; try again.",
        ),
        "loyalty_balance_not_negative" => Problem::conflict(
            "insufficient-points",
            "The loyalty balance is too low for this.",
        ),
        "profiles_phone_check" => Problem::invalid_field("phone", "must be E.164"),
        "addresses_postcode_check" => Problem::invalid_field("postcode", "is not a UK postcode"),
        _ => Problem::from_database(error),
    }
}

impl IntoResponse for CustomerError {
    fn into_response(self) -> Response {
        self.to_problem().into_response()
    }
}

/// Handler result.
pub type CustomerResult<T> = Result<T, CustomerError>;
