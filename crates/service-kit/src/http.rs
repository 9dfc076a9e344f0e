//! The HTTP shell every service shares: common endpoints, middleware layers and the problem+json
//! treatment of every error response, whoever produced it.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower::ServiceBuilder;
use tower::layer::util::{Identity, Stack};
use tower_http::body::Limited;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use tracing::Level;

use crate::metrics::{self as kit_metrics, Collector};
use crate::problem::Problem;
use crate::readiness::{self, ReadinessCheck};
use crate::request_id;

mod outer;
mod unread;

/// What the shared shell needs to wrap a service's own routes.
#[derive(Clone)]
pub struct Shell {
    /// Service name (for `/health` and metrics labels).
    pub service: &'static str,
    /// Dependencies `/ready` checks.
    pub checks: Vec<ReadinessCheck>,
    /// Gauge refreshers run before each `/metrics` scrape.
    pub collectors: Vec<Collector>,
    /// The OpenAPI document served at `/openapi.json`, as JSON ([`openapi_json`]): serialised
    /// once rather than the document cloned and serialised for every request.
    pub openapi: Bytes,
    /// Longest time a request may take.
    pub request_timeout: Duration,
    /// Largest request body, in bytes.
    pub body_limit_bytes: usize,
    /// Origins allowed by CORS.
    pub cors_allowed_origins: Vec<String>,
    /// When set, every route but the common endpoints requires a valid internal token.
    pub internal_keys: Option<auth_client::InternalKeys>,
    /// Browser security headers on every response (the public-facing gateway).
    pub security_headers: bool,
}

impl Shell {
    /// A shell with nothing configured: no readiness checks, collectors, CORS origins,
    /// internal-token check or security headers, an empty OpenAPI document, a 5 s timeout and a
    /// 1 KiB body limit. The starting point for a test or tool that wraps a router of its own and
    /// sets only what it is about (`Shell { body_limit_bytes: ..., ..Shell::bare("test") }`).
    pub fn bare(service: &'static str) -> Self {
        Self {
            service,
            checks: Vec::new(),
            collectors: Vec::new(),
            openapi: openapi_json(&utoipa::openapi::OpenApiBuilder::new().build()),
            request_timeout: Duration::from_secs(5),
            body_limit_bytes: 1024,
            cors_allowed_origins: Vec::new(),
            internal_keys: None,
            security_headers: false,
        }
    }
}

/// Browser security headers the public-facing gateway sets on every response.
pub const SECURITY_HEADERS: [(&str, &str); 4] = [
    (
        "strict-transport-security",
        "max-age=63072000; includeSubDomains",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "strict-origin-when-cross-origin"),
];

/// The endpoints probes and scrapers call without an internal token.
pub const COMMON_PATHS: [&str; 4] = ["/health", "/ready", "/metrics", "/openapi.json"];

/// Adds `/health`, `/ready`, `/metrics` and `/openapi.json` to `routes`, then wraps everything in
/// the shared layers (outermost first): request id, problem+json for bare errors and metrics →
/// trace span → sensitive-header redaction → security headers → CORS → reading the rest of a
/// refused body → compression → timeout → body limit → internal token.
pub fn wrap(routes: Router, shell: Shell) -> Router {
    // Install the recorder before the first request is counted.
    let _ = kit_metrics::handle();
    let shell = Arc::new(shell);
    let common = Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics_text))
        .route("/openapi.json", get(serve_openapi))
        .with_state(shell.clone());

    // One stack, one `Router::layer` call: every `layer` call on a router boxes the service
    // again, and each box is cloned and each future allocated on every request.
    let service = shell.service;
    let stack = ServiceBuilder::new()
        .layer(outer::OuterLayer)
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(move |request: &Request| make_request_span(service, request))
                .on_request(())
                .on_failure(DefaultOnFailure::new().level(Level::WARN)),
        )
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
            header::SET_COOKIE,
            header::HeaderName::from_static("x-internal-token"),
        ]))
        .option_layer(shell.security_headers.then(security_headers_layer))
        .option_layer(cors_layer(&shell.cors_allowed_origins))
        .layer(unread::DrainRefusedBodiesLayer {
            limit: shell.body_limit_bytes,
        })
        .layer(CompressionLayer::new())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            shell.request_timeout,
        ))
        // The timeout's own answer needs a body type with a default.
        .map_response(IntoResponse::into_response)
        .layer(RequestBodyLimitLayer::new(shell.body_limit_bytes))
        .map_request(|request: Request<Limited<Body>>| request.map(Body::new))
        .layer(DefaultBodyLimit::max(shell.body_limit_bytes))
        .option_layer(shell.internal_keys.clone().map(|keys| {
            middleware::from_fn_with_state(keys, crate::caller::require_internal_token)
        }));
    routes.merge(common).layer(stack)
}

type SetHeader = SetResponseHeaderLayer<HeaderValue>;
type SecurityHeaders =
    Stack<SetHeader, Stack<SetHeader, Stack<SetHeader, Stack<SetHeader, Identity>>>>;

/// [`SECURITY_HEADERS`], each set unless the response has it already.
fn security_headers_layer() -> ServiceBuilder<SecurityHeaders> {
    let [a, b, c, d] = SECURITY_HEADERS.map(|(name, value)| {
        SetResponseHeaderLayer::if_not_present(
            header::HeaderName::from_static(name),
            HeaderValue::from_static(value),
        )
    });
    ServiceBuilder::new().layer(a).layer(b).layer(c).layer(d)
}

/// The span of one request. It names the service, so that one trace's lines can be told apart
/// when several services log to one place (or share one process, as in the end-to-end tests).
fn make_request_span(service: &'static str, request: &Request) -> tracing::Span {
    let request_id = request
        .headers()
        .get(&request_id::X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let span = tracing::info_span!(
        "request",
        service,
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %request_id,
        trace_id = tracing::field::Empty,
    );
    crate::telemetry::continue_from_headers(&span, request.headers());
    span
}

fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods(tower_http::cors::AllowMethods::mirror_request())
            .allow_headers(tower_http::cors::AllowHeaders::mirror_request())
            .allow_credentials(true)
            .max_age(Duration::from_secs(600)),
    )
}

/// Gives every error response a problem+json body, including the ones the framework and the
/// tower layers make (unknown route 404, wrong method 405, 408/413/415 with no or plain-text
/// bodies). Headers such as `Allow` and `Retry-After` are kept.
fn problem_for_bare_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let plain = match response.headers().get(header::CONTENT_TYPE) {
        None => true,
        Some(value) => value.to_str().is_ok_and(|v| v.starts_with("text/plain")),
    };
    if !plain {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let problem = Problem::from_status(status).into_response();
    let (problem_parts, body) = problem.into_parts();
    // The replaced body may have been compressed on its way out; the problem is not.
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_ENCODING);
    for (name, value) in &problem_parts.headers {
        parts.headers.insert(name.clone(), value.clone());
    }
    Response::from_parts(parts, body)
}

async fn health(State(shell): State<Arc<Shell>>) -> Response {
    axum::Json(serde_json::json!({ "status": "ok", "service": shell.service })).into_response()
}

async fn ready(State(shell): State<Arc<Shell>>) -> Response {
    let outcomes = readiness::run_all(&shell.checks).await;
    let mut checks = serde_json::Map::new();
    let mut failed = Vec::new();
    for (name, outcome) in &outcomes {
        match outcome {
            Ok(()) => {
                checks.insert((*name).to_owned(), "ok".into());
            }
            Err(reason) => {
                tracing::warn!(dependency = name, %reason, "readiness check failed");
                checks.insert((*name).to_owned(), "unavailable".into());
                failed.push(*name);
            }
        }
    }
    if failed.is_empty() {
        axum::Json(
            serde_json::json!({ "status": "ready", "service": shell.service, "checks": checks }),
        )
        .into_response()
    } else {
        Problem::unavailable(format!("Not ready: {} unreachable.", failed.join(", ")))
            .with_extension("checks", serde_json::Value::Object(checks))
            .into_response()
    }
}

async fn metrics_text(State(shell): State<Arc<Shell>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        Body::from(kit_metrics::render(&shell.collectors)),
    )
        .into_response()
}

/// `doc` as the JSON [`Shell::openapi`] serves.
pub fn openapi_json(doc: &utoipa::openapi::OpenApi) -> Bytes {
    // An OpenAPI document is maps and strings: it always serialises.
    serde_json::to_vec(doc).map(Bytes::from).unwrap_or_default()
}

async fn serve_openapi(State(shell): State<Arc<Shell>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        shell.openapi.clone(),
    )
        .into_response()
}
