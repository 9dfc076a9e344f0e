//! The one error type of the order-payment service, rendered as problem+json.

use axum::response::{IntoResponse, Response};
use service_kit::{FieldError, PeerError, Problem, event_bus};

/// Everything a handler of this service can fail with.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// Input that failed validation (422, one entry per field).
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// No such resource (or not the caller's: ownership failures are 404 too).
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// The request conflicts with the current state (409 with a machine code).
    #[error("conflict: {1}")]
    Conflict(&'static str, String),
    /// Some lines cannot be reserved (409 listing them in `items`); nothing was reserved.
    #[error("insufficient stock")]
    InsufficientStock(serde_json::Value),
    /// A peer service failed (502/503/504; the cause is logged, not sent).
    #[error(transparent)]
    Peer(#[from] PeerError),
    /// A database failure (named constraints become 409/422).
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

impl OrderError {
    /// 422 for one field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    /// 409 with a machine code.
    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::Conflict(code, detail.into())
    }

    /// The problem document of this error.
    pub fn to_problem(&self) -> Problem {
        match self {
            Self::Validation(errors) => Problem::validation(errors.clone()),
            Self::NotFound(what) => Problem::not_found(format!("No such {what}.")),
            Self::Conflict(code, detail) => Problem::conflict(code, detail.clone()),
            Self::InsufficientStock(items) => Problem::conflict(
                "insufficient-stock",
                "Some items cannot be reserved; nothing was ordered or reserved.",
            )
            .with_extension("items", items.clone()),
            Self::Peer(error) => peer_problem(error),
            Self::Database(error) => constraint_problem(error),
            Self::Outbox(error) => Problem::internal(error),
            Self::Problem(problem) => problem.clone(),
            Self::Internal(error) => Problem::internal(error.as_ref()),
        }
    }
}

/// The gateway-style problem of a failed peer call (logged with its cause).
fn peer_problem(error: &PeerError) -> Problem {
    tracing::warn!(%error, "peer call failed");
    let status = match error {
        PeerError::Timeout { .. } => axum::http::StatusCode::GATEWAY_TIMEOUT,
        PeerError::Unavailable { .. } => axum::http::StatusCode::SERVICE_UNAVAILABLE,
        PeerError::Rejected { .. } | PeerError::Invalid { .. } => {
            axum::http::StatusCode::BAD_GATEWAY
        }
    };
    match status {
        axum::http::StatusCode::GATEWAY_TIMEOUT => {
            Problem::new(status, "upstream-timeout", "Upstream timeout")
                .with_detail("A service this request depends on did not answer in time.")
        }
        axum::http::StatusCode::SERVICE_UNAVAILABLE => {
            Problem::unavailable("A service this request depends on is unavailable.")
        }
        _ => Problem::new(status, "bad-gateway", "Bad gateway")
            .with_detail("A service this request depends on gave an unexpected answer."),
    }
}

/// Named constraints → 409 (uniqueness, invariants) or 422 (a value the schema refuses).
fn constraint_problem(error: &sqlx::Error) -> Problem {
    let Some(constraint) = service_kit::problem::violated_constraint(error) else {
        return Problem::from_database(error);
    };
    match constraint {
        "coupons_code_key" => {
            Problem::conflict("coupon-exists", "A coupon with this code already exists.")
        }
        "shipping_rates_code_key" => Problem::conflict(
            "shipping-rate-exists",
            "A shipping rate with this code already exists.",
        ),
        "tax_rules_country_key" => Problem::conflict(
            "tax-rule-exists",
            "This country already has a tax rule; change that one instead.",
        ),
        "cart_items_quantity_check" => {
            Problem::invalid_field("quantity", "must be between 1 and 100")
        }
        "coupons_window_check" => Problem::invalid_field("endsAt", "must be after startsAt"),
        "coupons_percentage_check" => {
            Problem::invalid_field("value", "a percentage must be at most 10000 basis points")
        }
        "shipping_rates_days_check" => {
            Problem::invalid_field("maxDays", "must be at least minDays")
        }
        _ => Problem::from_database(error),
    }
}

impl IntoResponse for OrderError {
    fn into_response(self) -> Response {
        self.to_problem().into_response()
    }
}

/// Handler result.
pub type OrderResult<T> = Result<T, OrderError>;
