//! The one error type of the content service, rendered as problem+json.

use axum::response::{IntoResponse, Response};
use service_kit::{FieldError, Problem, event_bus};

/// Everything a handler of this service can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// Input that failed validation (422, one entry per field).
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// No such resource (drafts and deleted rows are "no such" to the public).
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// The request conflicts with the current state (409 with a machine code).
    #[error("conflict: {1}")]
    Conflict(&'static str, String),
    /// Too many submissions for one email address (429 with `Retry-After` seconds).
    #[error("rate limited for {0} s")]
    RateLimited(u64),
    /// A peer service could not answer (502).
    #[error("upstream error: {0}")]
    Upstream(String),
    /// A database failure (named constraints become 409/422).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Writing to the outbox failed.
    #[error("outbox error: {0}")]
    Outbox(#[from] event_bus::OutboxError),
    /// A problem made elsewhere (an extractor, a peer call), sent as it is.
    #[error(transparent)]
    Problem(#[from] Problem),
    /// Anything else unexpected.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ContentError {
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
            Self::RateLimited(retry_after) => Problem::too_many_requests(*retry_after)
                .with_detail("Too many submissions for this email address; retry later."),
            Self::Upstream(detail) => {
                tracing::warn!(%detail, "peer service call failed");
                Problem::new(
                    axum::http::StatusCode::BAD_GATEWAY,
                    "upstream-unavailable",
                    "Upstream unavailable",
                )
                .with_detail("A service this request depends on did not answer.")
            }
            Self::Database(error) => constraint_problem(error),
            Self::Outbox(error) => Problem::internal(error),
            Self::Problem(problem) => problem.clone(),
            Self::Internal(error) => Problem::internal(error.as_ref()),
        }
    }
}

/// Named constraints → 409 (uniqueness, invariants) or 422 (a value the schema refuses).
/// Part B adds its own media constraints here.
fn constraint_problem(error: &sqlx::Error) -> Problem {
    let Some(constraint) = service_kit::problem::violated_constraint(error) else {
        return Problem::from_database(error);
    };
    match constraint {
        "blog_posts_slug_key" | "blog_posts_slug_live_key" => {
            Problem::conflict("slug-taken", "Another blog post already uses this slug.")
        }
        "pages_slug_key" | "pages_slug_live_key" => {
            Problem::conflict("slug-taken", "Another page already uses this slug.")
        }
        "media_wall_singleton" => Problem::conflict(
            "media-wall-exists",
            "The media wall already exists; update it instead.",
        ),
        _ => Problem::from_database(error),
    }
}

impl IntoResponse for ContentError {
    fn into_response(self) -> Response {
        self.to_problem().into_response()
    }
}

/// Handler result.
pub type ContentResult<T> = Result<T, ContentError>;
