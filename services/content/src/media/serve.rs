//! `GET /media/{*key}`: stored media served by the service itself, through the gateway (public).
//! This is how the local backend is reached in development; with S3 it is a fallback behind
//! the CDN. Keys are validated before any lookup (a key that could leave the media directory is
//! simply not found); answers carry the media type implied by the key, a year of immutable
//! caching, a strong ETag and single byte-range support (video players need it).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use service_kit::Problem;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;
use crate::storage::{IMMUTABLE_CACHE_CONTROL, ObjectKey};

/// The route of this module. The axum route is a wildcard (`{*key}`, several segments) while
/// the OpenAPI document names the plain parameter (`{key}`), which is what OpenAPI tools accept.
pub fn router() -> OpenApiRouter<AppState> {
    #[derive(OpenApi)]
    #[openapi(paths(serve))]
    struct Doc;
    OpenApiRouter::with_openapi(Doc::openapi()).route("/media/{*key}", axum::routing::get(serve))
}

/// A stored media object (an original or a variant), by the path of its URL.
#[utoipa::path(
    get,
    path = "/media/{key}",
    tag = "media",
    params(("key" = String, Path, description = "The key below `media/` (slashes included), e.g. `2026/12/{id}-thumb.webp`")),
    responses(
        (status = 200, description = "The object (image/jpeg, image/png, image/webp or video/mp4)"),
        (status = 206, description = "The requested byte range"),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 404, description = "No such object", body = Problem, content_type = "application/problem+json"),
        (status = 416, description = "The range cannot be satisfied", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn serve(
    State(state): State<AppState>,
    Path(rest): Path<String>,
    headers: HeaderMap,
) -> Response {
    let not_found = || Problem::not_found("No such media object.").into_response();
    let Ok(key) = ObjectKey::parse(&format!("media/{rest}")) else {
        return not_found();
    };
    let object = match state.media.storage.get(&key).await {
        Ok(Some(object)) => object,
        Ok(None) => return not_found(),
        Err(error) => return crate::error::ContentError::from(error).into_response(),
    };
    let etag = etag(key.as_str(), object.bytes.len());
    let mut response_headers = HeaderMap::new();
    let content_type = HeaderValue::from_str(&object.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    response_headers.insert(header::CONTENT_TYPE, content_type);
    response_headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(IMMUTABLE_CACHE_CONTROL),
    );
    response_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    response_headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response_headers.insert(header::ETAG, value);
    }

    let matches_etag = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if matches_etag {
        return (StatusCode::NOT_MODIFIED, response_headers).into_response();
    }

    let total = object.bytes.len();
    match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => (response_headers, Body::from(object.bytes)).into_response(),
        Some(raw) => match byte_range(raw, total) {
            RangeAnswer::Whole => (response_headers, Body::from(object.bytes)).into_response(),
            RangeAnswer::Part(start, end) => {
                if let Ok(value) = HeaderValue::from_str(&format!("bytes {start}-{end}/{total}")) {
                    response_headers.insert(header::CONTENT_RANGE, value);
                }
                (
                    StatusCode::PARTIAL_CONTENT,
                    response_headers,
                    Body::from(object.bytes.slice(start..=end)),
                )
                    .into_response()
            }
            RangeAnswer::Unsatisfiable => {
                let mut response = Problem::new(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "range-not-satisfiable",
                    "Range not satisfiable",
                )
                .with_detail(format!("The object is {total} bytes long."))
                .into_response();
                if let Ok(value) = HeaderValue::from_str(&format!("bytes */{total}")) {
                    response.headers_mut().insert(header::CONTENT_RANGE, value);
                }
                response
            }
        },
    }
}

/// A strong validator: objects never change under a key, so key and length identify the bytes.
fn etag(key: &str, len: usize) -> String {
    // FNV-1a: stable across builds and platforms, unlike the std hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("\"{hash:016x}-{len:x}\"")
}

#[derive(Debug, PartialEq, Eq)]
enum RangeAnswer {
    /// No usable range (several ranges, another unit, malformed): send everything.
    Whole,
    /// Inclusive byte positions.
    Part(usize, usize),
    /// A well-formed range outside the object.
    Unsatisfiable,
}

/// Reads a single `bytes=a-b`, `bytes=a-` or `bytes=-n` range (RFC 9110 §14.1.2).
fn byte_range(raw: &str, total: usize) -> RangeAnswer {
    let Some(spec) = raw.trim().strip_prefix("bytes=") else {
        return RangeAnswer::Whole;
    };
    if spec.contains(',') {
        return RangeAnswer::Whole;
    }
    let Some((start, end)) = spec.trim().split_once('-') else {
        return RangeAnswer::Whole;
    };
    let parse = |s: &str| s.trim().parse::<usize>().ok();
    let (start, end) = match (start.trim().is_empty(), end.trim().is_empty()) {
        // Suffix: the last n bytes.
        (true, false) => match parse(end) {
            Some(0) => return RangeAnswer::Unsatisfiable,
            Some(n) => (total.saturating_sub(n), total.saturating_sub(1)),
            None => return RangeAnswer::Whole,
        },
        (false, true) => match parse(start) {
            Some(s) => (s, total.saturating_sub(1)),
            None => return RangeAnswer::Whole,
        },
        (false, false) => match (parse(start), parse(end)) {
            (Some(s), Some(e)) if s <= e => (s, e.min(total.saturating_sub(1))),
            _ => return RangeAnswer::Whole,
        },
        (true, true) => return RangeAnswer::Whole,
    };
    if total == 0 || start >= total {
        RangeAnswer::Unsatisfiable
    } else {
        RangeAnswer::Part(start, end)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn byte_ranges_follow_rfc_9110() {
        assert_eq!(byte_range("bytes=0-99", 1000), RangeAnswer::Part(0, 99));
        assert_eq!(byte_range("bytes=900-", 1000), RangeAnswer::Part(900, 999));
        assert_eq!(byte_range("bytes=-100", 1000), RangeAnswer::Part(900, 999));
        assert_eq!(
            byte_range("bytes=990-5000", 1000),
            RangeAnswer::Part(990, 999)
        );
        assert_eq!(byte_range("bytes=-5000", 1000), RangeAnswer::Part(0, 999));
        assert_eq!(byte_range("bytes=1000-", 1000), RangeAnswer::Unsatisfiable);
        assert_eq!(byte_range("bytes=-0", 1000), RangeAnswer::Unsatisfiable);
        assert_eq!(byte_range("bytes=0-1,5-9", 1000), RangeAnswer::Whole);
        assert_eq!(byte_range("items=0-1", 1000), RangeAnswer::Whole);
        assert_eq!(byte_range("bytes=9-1", 1000), RangeAnswer::Whole);
        assert_eq!(byte_range("bytes=x-1", 1000), RangeAnswer::Whole);
    }

    #[test]
    fn etags_are_stable_and_distinct() {
        assert_eq!(etag("media/a.jpg", 10), etag("media/a.jpg", 10));
        assert_ne!(etag("media/a.jpg", 10), etag("media/b.jpg", 10));
        assert!(etag("media/a.jpg", 10).starts_with('"'));
    }
}
