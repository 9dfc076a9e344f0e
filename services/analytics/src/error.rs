//! The one error type of the analytics service, rendered as problem+json.

use axum::response::{IntoResponse, Response};
use service_kit::{FieldError, Problem};

/// Everything a handler of this service can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AnalyticsError {
    /// Input that failed validation (422, one entry per field).
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// No such resource.
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// A database failure.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A problem made elsewhere (an extractor), sent as it is.
    #[error(transparent)]
    Problem(#[from] Problem),
}

impl AnalyticsError {
    /// 422 for one field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    /// The problem document of this error.
    pub fn to_problem(&self) -> Problem {
        match self {
            Self::Validation(errors) => Problem::validation(errors.clone()),
            Self::NotFound(what) => Problem::not_found(format!("No such {what}.")),
            Self::Database(error) => Problem::from_database(error),
            Self::Problem(problem) => problem.clone(),
        }
    }
}

impl IntoResponse for AnalyticsError {
    fn into_response(self) -> Response {
        self.to_problem().into_response()
    }
}

/// Result of an analytics handler.
pub type Result<T, E = AnalyticsError> = std::result::Result<T, E>;
