//! The one error type of the product service, rendered as problem+json.

use axum::response::{IntoResponse, Response};
use service_kit::{FieldError, Problem, event_bus};

/// Everything a handler of this service can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ProductError {
    /// Input that failed validation (422, one entry per field).
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// No such resource.
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// The request conflicts with the current state.
    #[error("conflict: {1}")]
    Conflict(&'static str, String),
    /// Some items of a reservation cannot be reserved (409 listing them).
    #[error("insufficient stock")]
    InsufficientStock(serde_json::Value),
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

impl ProductError {
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
            Self::InsufficientStock(items) => Problem::conflict(
                "insufficient-stock",
                "Some items cannot be reserved; nothing was reserved.",
            )
            .with_extension("items", items.clone()),
            Self::Database(error) => constraint_problem(error),
            Self::Outbox(error) => Problem::internal(error),
            Self::Problem(problem) => problem.clone(),
            Self::Internal(error) => Problem::internal(error.as_ref()),
        }
    }
}

/// Named constraints → 409 (uniqueness) or 422 (a value the schema refuses); anything else is
/// an opaque 500.
fn constraint_problem(error: &sqlx::Error) -> Problem {
    let Some(constraint) = service_kit::problem::violated_constraint(error) else {
        return Problem::from_database(error);
    };
    if let Some(table) = constraint.strip_suffix("_slug_key") {
        return Problem::conflict(
            "slug-taken",
            format!("Another {} already uses this slug.", singular(table)),
        );
    }
    let (field, message) = match constraint {
        "products_sku_key" => {
            return Problem::conflict("sku-taken", "Another product already uses this SKU.");
        }
        "styles_code_key" | "finishes_code_key" => {
            return Problem::conflict("code-taken", "Another entry already uses this code.");
        }
        "reservations_order_key" => {
            return Problem::conflict(
                "reservation-exists",
                "This order already holds a reservation.",
            );
        }
        "stock_items_variant_key" => {
            return Problem::conflict("variant-exists", "This variant is already tracked.");
        }
        "colours_hex_code_check" => ("hexCode", "must be #RRGGBB"),
        "styles_code_check" | "finishes_code_check" => ("code", "must be SCREAMING_SNAKE_CASE"),
        "products_sku_check" => ("sku", "must be 3–41 characters of A–Z, 0–9 and -"),
        "products_price_check" | "packages_price_check" => ("price", "cannot be negative"),
        "sales_validity_check" => ("validUntil", "must be after validFrom"),
        "sales_discount_check" => ("discountPercent", "must be between 1 and 100"),
        "stock_items_on_hand_check" | "stock_items_available_check" => (
            "onHand",
            "cannot fall below zero or below the reserved quantity",
        ),
        c if c.ends_with("_fkey") => ("id", "refers to something that does not exist"),
        _ => return Problem::from_database(error),
    };
    Problem::invalid_field(field, message)
}

fn singular(table: &str) -> &str {
    match table {
        "categories" => "category",
        "finishes" => "finish",
        other => other.strip_suffix('s').unwrap_or(other),
    }
}

impl IntoResponse for ProductError {
    fn into_response(self) -> Response {
        self.to_problem().into_response()
    }
}

/// Handler result.
pub type ProductResult<T> = Result<T, ProductError>;
