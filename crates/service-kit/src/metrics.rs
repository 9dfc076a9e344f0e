//! Prometheus metrics: one process-wide recorder behind the `metrics` facade, rendered at
//! `GET /metrics`, plus the request middleware that counts and times every request by route.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
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
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
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
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
