//! Prometheus metrics: one process-wide recorder behind the `metrics` facade, rendered at
//! `GET /metrics`, plus the request middleware that counts and times every request by route.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, LazyLock, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Buckets for request latency, in seconds: fine at the low end, where our budgets are.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus handle, installing the recorder on first use.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)
                .map(PrometheusBuilder::build_recorder)
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            // Fails only when another recorder is installed already: then ours stays unused.
            if metrics::set_global_recorder(recorder).is_ok() {
                spawn_upkeep(handle.clone());
            }
            handle
        })
        .clone()
}

/// How often recorded histogram samples are folded into their buckets.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Histogram samples are kept one by one until they are folded into buckets, which otherwise
/// happens only at a scrape: without one (no Prometheus, or a long gap) every request's sample
/// would stay in memory. This folds them regularly, as the exporter's own `install` does.
fn spawn_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".to_owned())
        .stack_size(64 * 1024)
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                handle.run_upkeep();
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "cannot start the metrics upkeep thread; samples fold at scrapes only");
    }
}

/// Something that refreshes gauges just before a scrape (pool sizes, outbox lag).
pub type Collector = Arc<dyn Fn() + Send + Sync>;

/// Renders the Prometheus text exposition after running the collectors.
pub fn render(collectors: &[Collector]) -> String {
    for collect in collectors {
        collect();
    }
    handle().render()
}

/// A collector reporting a Postgres pool's size and idle connections.
pub fn pool_collector(service: &'static str, pool: sqlx::PgPool) -> Collector {
    Arc::new(move || {
        metrics::gauge!("db_pool_connections", "service" => service).set(pool.size() as f64);
        metrics::gauge!("db_pool_idle_connections", "service" => service)
            .set(pool.num_idle() as f64);
        metrics::gauge!("db_pool_max_connections", "service" => service)
            .set(pool.options().get_max_connections() as f64);
    })
}

/// Middleware: `http_requests_total{method,route,status}` and
/// `http_request_duration_seconds{method,route}`, labelled by the matched route pattern (never
/// the raw path, so ids don't explode the label set).
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = request.method().clone();
    let response = next.run(request).await;
    record(&method, route.as_ref(), response.status(), started);
    response
}

/// Counts one answered request and records its duration since `started` (what [`track`] does;
/// the shared shell calls it from its outermost layer).
pub fn record(method: &Method, route: Option<&MatchedPath>, status: StatusCode, started: Instant) {
    let route = route.map_or("unmatched", MatchedPath::as_str);
    let (requests, duration) = request_metrics(method, route, status.as_u16());
    requests.increment(1);
    duration.record(started.elapsed().as_secs_f64());
}

/// The handles of one `(method, route, status)`.
struct Tracked {
    method: Method,
    route: Box<str>,
    status: u16,
    requests: metrics::Counter,
    duration: metrics::Histogram,
}

/// Handles already registered, by a hash of their labels. Registering builds the label set
/// (three `String`s) and looks it up in the recorder's registry; doing that once per label set
/// rather than per request keeps the hot path free of allocation.
type TrackedTable = RwLock<HashMap<u64, Vec<Tracked>>>;

static TRACKED: LazyLock<(RandomState, TrackedTable)> = LazyLock::new(Default::default);

fn request_metrics(
    method: &Method,
    route: &str,
    status: u16,
) -> (metrics::Counter, metrics::Histogram) {
    let (hasher, table) = &*TRACKED;
    let hash = hasher.hash_one((method.as_str(), route, status));
    let found = |entries: &Vec<Tracked>| {
        entries
            .iter()
            .find(|t| t.status == status && t.method == method && &*t.route == route)
            .map(|t| (t.requests.clone(), t.duration.clone()))
    };
    if let Some(handles) = table
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&hash)
        .and_then(found)
    {
        return handles;
    }
    let mut table = table.write().unwrap_or_else(PoisonError::into_inner);
    let entries = table.entry(hash).or_default();
    if let Some(handles) = found(entries) {
        return handles;
    }
    let tracked = Tracked {
        method: method.clone(),
        route: route.into(),
        status,
        requests: metrics::counter!(
            "http_requests_total",
            "method" => method.as_str().to_owned(),
            "route" => route.to_owned(),
            "status" => status.to_string()
        ),
        duration: metrics::histogram!(
            "http_request_duration_seconds",
            "method" => method.as_str().to_owned(),
            "route" => route.to_owned()
        ),
    };
    let handles = (tracked.requests.clone(), tracked.duration.clone());
    entries.push(tracked);
    handles
}
