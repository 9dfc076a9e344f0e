//! The proxy: every request that is not one of the gateway's own endpoints.
//!
//! In order: the route (404 for unknown paths and `/internal`), the body limit by
//! `Content-Length` (413), the access token (verified locally when sent; required on `token`
//! routes), one Redis round trip for the rate limit and the session check (429, 401 for an ended
//! session, 503 when Redis is down for a signed-in caller), header hygiene (client-supplied
//! identity, forwarding and hop-by-hop headers removed, `Authorization` never forwarded), a
//! freshly minted internal token, then the service over pooled HTTP/1.1 keep-alive connections
//! with both bodies streamed, the request body counted against the route's limit as it flows,
//! and the route's timeout on the response headers (504). WebSocket upgrades are tunnelled.
//!
//! Each service has a circuit breaker ([`service_kit::breaker`]): connection errors, timeouts and
//! 5xx answers count as failures (a service answering 5xx is failing its callers, whatever the
//! cause; 4xx are the client's business and count as successes); while it is open the gateway
//! answers 503 problem+json naming the service, with `Retry-After`, without contacting it. A
//! `GET`, `HEAD`, `OPTIONS` or `TRACE` without a body whose connection was refused is sent again
//! after a jittered backoff, within the service's retry budget; nothing else is retried (other
//! bodies are streamed and cannot be replayed, and the gateway does not assume any service's
//! `PUT`/`DELETE` is idempotent).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use auth_client::{AccessClaims, INTERNAL_TOKEN_HEADER};
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::uri::{Authority, PathAndQuery, Scheme};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use service_kit::Problem;
use service_kit::breaker::{Rejected, is_safe};
use thread_local::ThreadLocal;

use crate::AppState;
use crate::ratelimit::{Quota, Verdict};
use crate::routes::Route;

/// A pooled client of the services.
pub type UpstreamClient = Client<HttpConnector, LimitedBody>;

/// The pooled clients upstream calls go through, one per thread: a pooled connection is driven
/// by a task of the runtime that opened it, so a serving thread (see
/// [`service_kit::Service::HTTP_WORKERS_PER_CORE`]) using another thread's pool would hand
/// every request and answer across threads.
pub struct UpstreamClients {
    connect_timeout: Duration,
    per_thread: ThreadLocal<UpstreamClient>,
}

impl UpstreamClients {
    /// Clients whose connections give up connecting after `connect_timeout`.
    pub fn new(connect_timeout: Duration) -> Self {
        Self {
            connect_timeout,
            per_thread: ThreadLocal::new(),
        }
    }

    /// This thread's client.
    fn here(&self) -> &UpstreamClient {
        self.per_thread.get_or(|| {
            let mut connector = HttpConnector::new();
            connector.set_nodelay(true);
            connector.set_connect_timeout(Some(self.connect_timeout));
            connector.set_keepalive(Some(Duration::from_secs(60)));
            Client::builder(TokioExecutor::new())
                .pool_timer(TokioTimer::new())
                .pool_idle_timeout(Duration::from_secs(90))
                .build(connector)
        })
    }
}

/// A service behind the gateway, parsed once.
#[derive(Debug, Clone)]
pub struct UpstreamTarget {
    /// Service name.
    pub name: &'static str,
    scheme: Scheme,
    authority: Authority,
    /// The `Host` a request to it carries (what hyper would write, made once rather than per
    /// request).
    host: HeaderValue,
    /// Path prefix of the base URL ("" normally).
    base_path: String,
}

impl UpstreamTarget {
    /// Parses `http://host:port[/prefix]`.
    pub fn parse(name: &'static str, url: &str) -> Result<Self, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("`{url}` is not a URL: {e}"))?;
        let scheme = uri
            .scheme()
            .cloned()
            .ok_or_else(|| format!("`{url}` has no scheme"))?;
        if scheme != Scheme::HTTP {
            return Err(format!(
                "`{url}`: services are reached over plain http inside the cluster"
            ));
        }
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| format!("`{url}` has no host"))?;
        let host = match authority.port_u16() {
            Some(port) if port != 80 => format!("{}:{port}", authority.host()),
            _ => authority.host().to_owned(),
        };
        let host = HeaderValue::try_from(host).map_err(|e| format!("`{url}`: {e}"))?;
        Ok(Self {
            name,
            scheme,
            authority,
            host,
            base_path: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    fn uri_for(&self, original: &Uri) -> Result<Uri, axum::http::Error> {
        let path_and_query = match (self.base_path.is_empty(), original.path_and_query()) {
            (true, Some(pq)) => pq.clone(),
            (true, None) => PathAndQuery::from_static("/"),
            (false, pq) => {
                let pq = pq.map(PathAndQuery::as_str).unwrap_or("/");
                PathAndQuery::try_from(format!("{}{pq}", self.base_path))?
            }
        };
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
    }
}

/// A request body that refuses to grow past the route's limit while it streams.
pub struct LimitedBody {
    inner: Body,
    remaining: u64,
    exceeded: Arc<AtomicBool>,
}

#[derive(Debug, thiserror::Error)]
#[error("the request body exceeds the route's limit")]
struct BodyTooLarge;

impl hyper::body::Body for LimitedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    if len > this.remaining {
                        this.exceeded.store(true, Ordering::Release);
                        return Poll::Ready(Some(Err(axum::Error::new(BodyTooLarge))));
                    }
                    this.remaining -= len;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => {
                // The shell's own (larger or equal) limit may trip first on the same chunk.
                if is_length_limit(&error) {
                    this.exceeded.store(true, Ordering::Release);
                }
                Poll::Ready(Some(Err(error)))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn is_length_limit(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        current = e.source();
    }
    false
}

/// The fallback handler: proxies the request and writes the access log line.
pub async fn proxy(State(state): State<AppState>, request: Request) -> Response {
    let started = Instant::now();
    let gateway = &state.inner;
    let method = request.method().clone();
    let found = if has_dot_segments(request.uri().path()) {
        None
    } else {
        gateway.routes.find_indexed(request.uri().path())
    };
    let route = found.map(|(_, route)| route);
    let response = match route {
        Some(route) => match forward(&state, route, request).await {
            Ok(response) => response,
            Err(problem) => problem,
        },
        None => Problem::not_found("No resource matches this path.").into_response(),
    };
    let elapsed = started.elapsed();
    if let Some((index, _)) = found
        && let Some(histogram) = gateway.route_metrics.get(index)
    {
        histogram.record(elapsed.as_secs_f64());
    }
    if gateway.access_log {
        tracing::info!(
            target: "gateway::access",
            method = %method,
            route = route.map_or("-", |r| r.pattern.as_str()),
            upstream = route.map_or("-", |r| r.service),
            status = response.status().as_u16(),
            latency_us = elapsed.as_micros() as u64,
            "request"
        );
    }
    response
}

/// `.` and `..` segments (plain or percent-encoded) are refused rather than guessed at.
fn has_dot_segments(path: &str) -> bool {
    path.split('/').any(is_dot_segment)
}

fn is_dot_segment(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    let (mut i, mut dots) = (0, 0);
    while i < bytes.len() {
        if bytes[i] == b'.' {
            i += 1;
        } else if bytes[i] == b'%'
            && bytes.get(i + 1) == Some(&b'2')
            && bytes.get(i + 2).is_some_and(|b| b | 0x20 == b'e')
        {
            i += 3;
        } else {
            return false;
        }
        dots += 1;
    }
    dots == 1 || dots == 2
}

enum Bearer<'a> {
    None,
    Malformed,
    Token(&'a str),
}

fn bearer(headers: &HeaderMap) -> Bearer<'_> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Bearer::None;
    };
    let Ok(value) = value.to_str() else {
        return Bearer::Malformed;
    };
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Bearer::Token(token.trim())
        }
        _ => Bearer::Malformed,
    }
}

fn unauthorized(detail: &str, invalid_token: bool) -> Response {
    let mut response = Problem::unauthorized(detail).into_response();
    let challenge = if invalid_token {
        HeaderValue::from_static(r#"Bearer error="invalid_token""#)
    } else {
        HeaderValue::from_static("Bearer")
    };
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, challenge);
    response
}

fn insert_quota(headers: &mut HeaderMap, quota: &Quota) {
    headers.insert("ratelimit-limit", HeaderValue::from(quota.limit));
    headers.insert("ratelimit-remaining", HeaderValue::from(quota.remaining));
    headers.insert("ratelimit-reset", HeaderValue::from(quota.reset_secs));
}

fn too_many_requests(quota: &Quota) -> Response {
    let mut response = Problem::too_many_requests(quota.reset_secs).into_response();
    insert_quota(response.headers_mut(), quota);
    response
}

fn too_large(limit: u64) -> Response {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload-too-large",
        "Payload too large",
    )
    .with_detail(format!(
        "The request body exceeds the limit of {limit} bytes."
    ))
    .into_response()
}

fn upstream_problem(status: StatusCode, service: &str) -> Response {
    let (code, title, detail) = match status {
        StatusCode::GATEWAY_TIMEOUT => (
            "upstream-timeout",
            "Gateway timeout",
            format!("The {service} service did not answer in time."),
        ),
        StatusCode::SERVICE_UNAVAILABLE => (
            "service-unavailable",
            "Service unavailable",
            format!("The {service} service is unavailable; try again shortly."),
        ),
        _ => (
            "bad-gateway",
            "Bad gateway",
            format!("The {service} service failed to answer."),
        ),
    };
    metrics::counter!("gateway_upstream_errors_total", "upstream" => service.to_owned(), "status" => status.as_str().to_owned())
        .increment(1);
    Problem::new(status, code, title)
        .with_detail(detail)
        .into_response()
}

/// The breaker is open: 503 naming the service, with `Retry-After`, and the service untouched.
fn circuit_open(service: &str, rejected: Rejected) -> Response {
    let mut response = upstream_problem(StatusCode::SERVICE_UNAVAILABLE, service);
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(rejected.retry_after_secs()),
    );
    response
}

/// What is needed to send a body-less request again.
struct Replay {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
}

impl Replay {
    fn request(&self, body_limit: u64, exceeded: &Arc<AtomicBool>) -> hyper::Request<LimitedBody> {
        let mut request = hyper::Request::new(LimitedBody {
            inner: Body::empty(),
            remaining: body_limit,
            exceeded: exceeded.clone(),
        });
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.version_mut() = axum::http::Version::HTTP_11;
        *request.headers_mut() = self.headers.clone();
        request
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// A WebSocket upgrade (the only protocol switch passed through; `h2c` and others are not).
fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"))
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus the ones a
/// client must never get to set on the way in.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
];

/// Client-supplied headers that could pass for identity or origin information.
const SPOOFABLE: [&str; 6] = [
    "authorization",
    "forwarded",
    "x-real-ip",
    "x-client-ip",
    "true-client-ip",
    "host",
];

fn is_identity_header(name: &str) -> bool {
    name.starts_with("x-internal-")
        || name.starts_with("x-user-")
        || name.starts_with("x-forwarded-")
}

/// Removes hop-by-hop headers (and those `Connection` names), keeping the upgrade pair when
/// the message is an upgrade.
fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool, also: impl Fn(&str) -> bool) {
    let mut doomed: Vec<HeaderName> = Vec::new();
    for value in headers.get_all(header::CONNECTION) {
        for token in value.to_str().unwrap_or_default().split(',') {
            let token = token.trim();
            if token.is_empty() || (upgrade && token.eq_ignore_ascii_case("upgrade")) {
                continue;
            }
            if let Ok(name) = HeaderName::from_bytes(token.to_ascii_lowercase().as_bytes()) {
                doomed.push(name);
            }
        }
    }
    for name in headers.keys() {
        if also(name.as_str()) {
            doomed.push(name.clone());
        }
    }
    for name in doomed {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    if upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::UPGRADE);
    }
}

/// Everything after the route is known.
async fn forward(
    state: &AppState,
    route: &Route,
    mut request: Request,
) -> Result<Response, Response> {
    let gateway = &state.inner;
    if content_length(request.headers()).is_some_and(|len| len > route.body_limit) {
        return Err(too_large(route.body_limit));
    }
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |c| c.0.ip());
    let ip = gateway.trusted_proxies.client_ip(peer, request.headers());

    let identity: Option<Arc<AccessClaims>> = match bearer(request.headers()) {
        Bearer::None if route.auth.requires_token() => {
            return Err(unauthorized("Sign in to do this.", false));
        }
        Bearer::None => None,
        Bearer::Malformed => {
            return Err(unauthorized(
                "The Authorization header must be `Bearer <access token>`.",
                true,
            ));
        }
        Bearer::Token(token) => match gateway.tokens.verify(token).await {
            Ok(claims) => Some(claims),
            Err(error) if error.is_unavailable() => {
                tracing::warn!(%error, "cannot verify access tokens");
                return Err(Problem::unavailable(
                    "Access tokens cannot be verified right now; try again shortly.",
                )
                .into_response());
            }
            Err(error) => {
                tracing::debug!(%error, "refused an access token");
                // Bad tokens count against the client's address like any request.
                if let Verdict::Limited(quota) = gateway.gate.check(route.rule, ip, None).await {
                    return Err(too_many_requests(&quota));
                }
                return Err(unauthorized(
                    "The access token is invalid or has expired.",
                    true,
                ));
            }
        },
    };
    crate::mfa::check(route, identity.as_deref())?;

    let quota = match gateway
        .gate
        .check(route.rule, ip, identity.as_ref().map(|c| (c.sub, c.sid)))
        .await
    {
        Verdict::Pass(quota) => quota,
        Verdict::Limited(quota) => return Err(too_many_requests(&quota)),
        Verdict::SessionEnded => {
            return Err(unauthorized("Your session has ended; sign in again.", true));
        }
        Verdict::Unavailable => {
            return Err(Problem::unavailable(
                "This request cannot be checked right now; try again shortly.",
            )
            .into_response());
        }
    };

    // The internal token: who the caller is, as the gateway vouches for it.
    let internal_token = gateway
        .internal_tokens
        .for_caller(identity.as_deref())
        .map_err(|error| Problem::internal(&error).into_response())?;

    let upgrade = is_upgrade(request.headers());
    let request_id_header = request
        .headers()
        .get(&service_kit::request_id::X_REQUEST_ID)
        .cloned();
    let headers = request.headers_mut();
    if headers.contains_key(header::TRANSFER_ENCODING) {
        // Never let a Content-Length ride along with chunked framing.
        headers.remove(header::CONTENT_LENGTH);
    }
    strip_hop_by_hop(headers, upgrade, |name| {
        is_identity_header(name) || SPOOFABLE.contains(&name)
    });
    headers.remove(header::EXPECT);
    headers.insert(INTERNAL_TOKEN_HEADER, internal_token);
    if let Some(request_id) = request_id_header {
        // Even if the client named it in `Connection`.
        headers.insert(service_kit::request_id::X_REQUEST_ID.clone(), request_id);
    }
    if let Ok(forwarded_for) = HeaderValue::try_from(ip.to_string()) {
        headers.insert("x-forwarded-for", forwarded_for);
    }
    service_kit::telemetry::inject_current(headers);

    let upstream = &gateway.upstreams[route.upstream];
    headers.insert(header::HOST, upstream.host.clone());
    let uri = upstream
        .uri_for(request.uri())
        .map_err(|_| upstream_problem(StatusCode::BAD_GATEWAY, upstream.name))?;
    *request.uri_mut() = uri;
    *request.version_mut() = axum::http::Version::HTTP_11;

    let breaker = &gateway.breakers[route.upstream];
    let budget = &gateway.retry_budgets[route.upstream];
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
    let exceeded = Arc::new(AtomicBool::new(false));
    let (parts, body) = request.into_parts();
    // A copy to send again if the service cannot be reached. Kept only while the service is in
    // trouble and a retry could be paid for, so healthy traffic never pays for the copy.
    let replay = (!upgrade
        && is_safe(&parts.method)
        && hyper::body::Body::is_end_stream(&body)
        && breaker.is_troubled()
        && budget.has_funds())
    .then(|| Replay {
        method: parts.method.clone(),
        uri: parts.uri.clone(),
        headers: parts.headers.clone(),
    });
    let body = LimitedBody {
        inner: body,
        remaining: route.body_limit,
        exceeded: exceeded.clone(),
    };
    let mut outgoing = hyper::Request::from_parts(parts, body);
    budget.deposit();

    let mut retry = 0;
    let response = loop {
        let permit = breaker
            .try_acquire()
            .map_err(|rejected| circuit_open(upstream.name, rejected))?;
        match tokio::time::timeout(route.timeout, gateway.clients.here().request(outgoing)).await {
            Ok(Ok(response)) => {
                permit.record(!response.status().is_server_error());
                break response;
            }
            Ok(Err(error)) => {
                if exceeded.load(Ordering::Acquire) {
                    // The client's fault: the permit goes unrecorded.
                    return Err(too_large(route.body_limit));
                }
                permit.record(false);
                if error.is_connect()
                    && let Some(replay) = &replay
                    && budget.try_spend(retry + 1)
                {
                    retry += 1;
                    tracing::debug!(upstream = upstream.name, retry, error = %error_chain(&error), "retrying a refused request");
                    tokio::time::sleep(budget.backoff(retry)).await;
                    outgoing = replay.request(route.body_limit, &exceeded);
                    continue;
                }
                tracing::warn!(upstream = upstream.name, error = %error_chain(&error), "upstream request failed");
                let status = if error.is_connect() {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::BAD_GATEWAY
                };
                return Err(upstream_problem(status, upstream.name));
            }
            Err(_) => {
                permit.record(false);
                tracing::warn!(upstream = upstream.name, route = %route.pattern, timeout_ms = route.timeout.as_millis() as u64, "upstream timed out");
                return Err(upstream_problem(StatusCode::GATEWAY_TIMEOUT, upstream.name));
            }
        }
    };

    let mut response = response;
    let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
    let upstream_upgrade = switching.then(|| hyper::upgrade::on(&mut response));
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers, switching, |name| {
        name.starts_with("x-internal-")
    });
    insert_quota(&mut parts.headers, &quota);
    if let (Some(client_upgrade), Some(upstream_upgrade)) = (client_upgrade, upstream_upgrade) {
        let service = upstream.name;
        tokio::spawn(async move {
            match tokio::try_join!(client_upgrade, upstream_upgrade) {
                Ok((client, upstream)) => {
                    let mut client = TokioIo::new(client);
                    let mut upstream = TokioIo::new(upstream);
                    if let Err(error) =
                        tokio::io::copy_bidirectional(&mut client, &mut upstream).await
                    {
                        tracing::debug!(%error, upstream = service, "tunnel closed");
                    }
                }
                Err(error) => tracing::warn!(%error, upstream = service, "upgrade failed"),
            }
        });
        return Ok(Response::from_parts(parts, Body::empty()));
    }
    Ok(Response::from_parts(parts, Body::new(body)))
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn dot_segments_are_spotted_in_any_spelling() {
        for path in [
            "/v1/products/../internal/x",
            "/v1/./x",
            "/v1/%2e%2e/x",
            "/v1/.%2E/x",
            "/v1/%2e/x",
            "/..",
        ] {
            assert!(has_dot_segments(path), "{path}");
        }
        for path in [
            "/v1/products/x.y",
            "/v1/sitemap.xml",
            "/.well-known/jwks.json",
            "/v1/...",
            "/v1/a..b",
        ] {
            assert!(!has_dot_segments(path), "{path}");
        }
    }

    #[test]
    fn identity_and_hop_by_hop_headers_are_stripped() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("x-user-id", "evil"),
            ("x-internal-token", "forged"),
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-host", "evil.example"),
            ("forwarded", "for=1.2.3.4"),
            ("authorization", "Bearer x"),
            ("connection", "keep-alive, x-custom"),
            ("x-custom", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("upgrade", "h2c"),
            ("content-type", "application/json"),
            ("cookie", "refresh=abc"),
        ] {
            headers.append(name, HeaderValue::from_static(value));
        }
        strip_hop_by_hop(&mut headers, false, |n| {
            is_identity_header(n) || SPOOFABLE.contains(&n)
        });
        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, vec!["content-type", "cookie"]);
    }

    #[test]
    fn upgrades_keep_their_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("connection", HeaderValue::from_static("Upgrade"));
        headers.insert("upgrade", HeaderValue::from_static("h2c"));
        assert!(!is_upgrade(&headers), "only WebSocket upgrades pass");
        headers.insert("upgrade", HeaderValue::from_static("websocket"));
        assert!(is_upgrade(&headers));
        strip_hop_by_hop(&mut headers, true, |_| false);
        assert_eq!(headers["connection"], "upgrade");
        assert_eq!(headers["upgrade"], "websocket");
    }

    #[test]
    fn upstream_uris_keep_path_and_query() {
        let target = UpstreamTarget::parse("product", "http://127.0.0.1:3002").unwrap();
        let uri = target
            .uri_for(&"/v1/products?x=1".parse().unwrap())
            .unwrap();
        assert_eq!(uri.to_string(), "http://127.0.0.1:3002/v1/products?x=1");
        let prefixed = UpstreamTarget::parse("product", "http://svc:80/base/").unwrap();
        let uri = prefixed.uri_for(&"/v1/x".parse().unwrap()).unwrap();
        assert_eq!(uri.to_string(), "http://svc:80/base/v1/x");
        assert_eq!(target.host, "127.0.0.1:3002");
        assert_eq!(prefixed.host, "svc");
        assert!(UpstreamTarget::parse("product", "https://x").is_err());
        assert!(UpstreamTarget::parse("product", "not a url").is_err());
    }

    #[test]
    fn bearer_tokens_are_read_case_insensitively() {
        let mut headers = HeaderMap::new();
        assert!(matches!(bearer(&headers), Bearer::None));
        headers.insert("authorization", HeaderValue::from_static("bearer abc"));
        assert!(matches!(bearer(&headers), Bearer::Token("abc")));
        headers.insert("authorization", HeaderValue::from_static("Basic abc"));
        assert!(matches!(bearer(&headers), Bearer::Malformed));
        headers.insert("authorization", HeaderValue::from_static("Bearer "));
        assert!(matches!(bearer(&headers), Bearer::Malformed));
    }
}
