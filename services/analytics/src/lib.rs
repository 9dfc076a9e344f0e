//! The analytics service: event ingest, buffering, domain-event recording (issue 11).
//!
//! # Endpoints
//! | route | who | module |
//! |---|---|---|
//! | `POST /v1/analytics/track` (one event, `{batch}` ≤ 100, or a GTM `{dataLayer}`) | anyone | [`track`] |
//! | `GET /v1/analytics/dashboard?from&to` | ADMIN | [`aggregates`] |
//! | `GET /v1/analytics/exports/events.csv?from&to&event=` (streamed) | ADMIN | [`exports`] |
//! | `GET /v1/analytics/exports/bookings.csv?from&to`, `.../revenue.csv?from&to` (daily summaries) | ADMIN | [`exports`] |
//! | `POST /v1/analytics/funnels`; `GET /v1/analytics/funnels/{id}/report?from&to` | ADMIN | [`funnels`] |
//!
//! # Design
//! - **Ingest** validates the whole body (422, nothing stored), attaches the gateway's user,
//!   hashes the truncated IP with a daily-rotating key, parses the user-agent ([`useragent`]),
//!   and appends one Redis stream entry per request; 202. No database write on the request path
//!   while Redis is up; straight to Postgres when it is not (or is slower than its timeout).
//! - **Flushing** through a consumer group, multi-row `UNNEST` inserts of at most
//!   `ANALYTICS_FLUSH_BATCH_MAX` rows, acked after commit, dead flushers' pending entries
//!   reclaimed with `XAUTOCLAIM`, `message_id` unique so replays insert nothing: see [`buffer`].
//! - **Domain events** become server-side rows of the same table, once ([`domain`]);
//!   `blog.published` also marks the sitemap stale (`sitemap_state`), and a job asks content to
//!   refresh it, retrying with a backoff ([`sitemap`]).
//! - **Store**: one table, BRIN on `occurred_at`, unique `message_id` (no monthly partitions:
//!   a partitioned table cannot have a unique key without the partition key) — see
//!   `migrations/analytics/0002_tracking.sql`; retention by the aggregate job.
//! - **Aggregates**: days touched by inserts are marked dirty in the same statement and
//!   recomputed by a job; the dashboard reads only `daily_metrics` ([`aggregates`]).
//! - **Funnels** are one SQL statement of chained CTEs ([`funnels`]); **exports** stream
//!   through a bounded channel ([`exports`]).
//!
//! SQL here is run-time `sqlx::query` with bound parameters (the funnel query is assembled from
//! step indexes only); it is not compile-checked yet (no `.sqlx` offline data).

pub mod aggregates;
pub mod buffer;
pub mod config;
pub mod domain;
pub mod error;
pub mod exports;
pub mod funnels;
pub mod sitemap;
pub mod store;
pub mod track;
pub mod useragent;

use std::sync::Arc;

use service_kit::config::{CommonConfig, ConfigError, Env, ServiceSpec};
use service_kit::{Infra, Service, Started, consumer_task, task};
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use utoipa_axum::router::OpenApiRouter;

pub use config::{AnalyticsSettings, Config};

static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/analytics");

/// What its handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Its own database.
    pub db: PgPool,
    /// The ingest stream.
    pub buffer: buffer::StreamBuffer,
    /// The service's own settings.
    pub settings: Arc<AnalyticsSettings>,
}

/// The analytics service.
pub struct AnalyticsService;

impl Service for AnalyticsService {
    const SPEC: ServiceSpec = ServiceSpec {
        name: "analytics",
        default_port: 3008,
        database: Some("lomash_analytics"),
    };
    type Config = Config;
    type State = AppState;

    fn migrator() -> Option<&'static Migrator> {
        Some(&MIGRATOR)
    }

    fn config(env: &Env) -> Result<Config, ConfigError> {
        Config::from_env(Self::SPEC, env)
    }

    fn common(config: &Config) -> &CommonConfig {
        &config.common
    }

    fn routes() -> OpenApiRouter<AppState> {
        OpenApiRouter::new()
            .merge(track::router())
            .merge(aggregates::router())
            .merge(exports::router())
            .merge(funnels::router())
    }

    async fn start(config: Config, infra: Infra) -> anyhow::Result<Started<AppState>> {
        let db = infra.db()?;
        let settings = config.analytics;
        let buffer = buffer::StreamBuffer::new(infra.redis.clone(), settings.redis_timeout);
        let mut started = Started::new(AppState {
            db: db.clone(),
            buffer,
            settings: Arc::new(settings.clone()),
        });
        started
            .tasks
            .push(consumer_task(domain::handlers(infra.consumer()?)));
        let (job_db, every, keep) = (
            db.clone(),
            settings.aggregate_interval,
            settings.retention_days,
        );
        started.tasks.push(task(move |token| {
            aggregates::run(job_db, every, keep, token)
        }));
        let content = service_kit::PeerClient::for_service(
            &infra.config,
            "content",
            settings.content_service_url.clone(),
            settings.content_timeout,
        )?;
        let (sitemap_db, sitemap_every) = (db.clone(), settings.sitemap_interval);
        started.tasks.push(task(move |token| {
            sitemap::run(sitemap_db, content, sitemap_every, token)
        }));
        if settings.flusher_enabled {
            let flusher = buffer::Flusher::new(
                infra.redis.clone(),
                db,
                format!("flusher-{}", uuid::Uuid::now_v7()),
                &settings,
            );
            started.tasks.push(task(move |token| flusher.run(token)));
        }
        Ok(started)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The routes this service serves; a change here is an API change (and the gateway's route
    /// table must follow).
    #[test]
    fn the_openapi_document_lists_every_route() {
        let routes = service_kit::service::route_list::<AnalyticsService>();
        assert_eq!(
            routes,
            [
                "GET /v1/analytics/dashboard",
                "GET /v1/analytics/exports/bookings.csv",
                "GET /v1/analytics/exports/events.csv",
                "GET /v1/analytics/exports/revenue.csv",
                "GET /v1/analytics/funnels/{id}/report",
                "POST /v1/analytics/funnels",
                "POST /v1/analytics/track",
            ]
        );
    }

    /// Errors are RFC 7807 problems on the wire, so the document must say so (schemathesis's
    /// content-type check found these documented as `application/json`).
    #[test]
    fn every_documented_error_is_problem_json() {
        let doc = serde_json::to_value(service_kit::service::openapi::<AnalyticsService>())
            .expect("the document serialises");
        let mut errors = 0;
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("path item") {
                let Some(responses) = operation["responses"].as_object() else {
                    continue;
                };
                for (status, response) in responses {
                    if !status.starts_with('4') && !status.starts_with('5') {
                        continue;
                    }
                    let Some(content) = response["content"].as_object() else {
                        continue;
                    };
                    errors += 1;
                    let types: Vec<&String> = content.keys().collect();
                    assert_eq!(
                        types,
                        ["application/problem+json"],
                        "{method} {path} {status}"
                    );
                }
            }
        }
        assert!(errors >= 13, "only {errors} error responses documented");
    }
}
