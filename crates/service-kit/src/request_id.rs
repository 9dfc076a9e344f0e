//! Request ids: kept from `X-Request-Id` when sane, generated otherwise, echoed on every response
//! and reachable from anywhere in the request's task (problem documents use it as `instance`).

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// The request id header.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static CURRENT: String;
}

/// The request id of the request this task is serving, if any.
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

/// Runs `future` with `id` as the current request id (used by event consumers too, with the
/// event's correlation id).
pub async fn scope<F: std::future::Future>(id: String, future: F) -> F::Output {
    CURRENT.scope(id, future).await
}

/// Whether a client-supplied id is safe to keep: 1–128 characters of `[A-Za-z0-9._:-]`.
pub fn is_sane(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The id for a request: the client's if sane, a fresh UUIDv7 otherwise.
pub fn choose(header: Option<&HeaderValue>) -> String {
    header
        .and_then(|v| v.to_str().ok())
        .filter(|id| is_sane(id))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

/// Middleware: settles the request id, stores it on the request, scopes it for the task and
/// echoes it on the response.
pub async fn middleware(mut request: Request, next: Next) -> Response {
    let id = choose(request.headers().get(&X_REQUEST_ID));
    let value = HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
    request
        .headers_mut()
        .insert(X_REQUEST_ID.clone(), value.clone());
    let mut response = CURRENT.scope(id, next.run(request)).await;
    response.headers_mut().insert(X_REQUEST_ID.clone(), value);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_ids_are_kept_and_others_replaced() {
        assert_eq!(
            choose(Some(&HeaderValue::from_static("abc-123"))),
            "abc-123"
        );
        let replaced = choose(Some(&HeaderValue::from_static("a b<script>")));
        assert!(uuid::Uuid::parse_str(&replaced).is_ok());
        let long = "x".repeat(200);
        let replaced = choose(Some(&HeaderValue::from_str(&long).expect("ascii")));
        assert_ne!(replaced, long);
        assert!(uuid::Uuid::parse_str(&choose(None)).is_ok());
    }
}
