//! The analytics service's settings, read once at start through `service_kit::Env`.

use std::time::Duration;

use service_kit::Secret;
use service_kit::config::{CommonConfig, ConfigError, Env, ServiceSpec};

/// The analytics service's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Shared settings.
    pub common: CommonConfig,
    /// What is specific to analytics.
    pub analytics: AnalyticsSettings,
}

/// Settings specific to the analytics service.
#[derive(Debug, Clone)]
pub struct AnalyticsSettings {
    /// The flusher writes what it holds at least this often.
    pub flush_interval: Duration,
    /// Rows per multi-row INSERT (and the "full" threshold that flushes early).
    pub flush_batch_max: usize,
    /// How often the flusher polls the stream for new entries.
    pub flush_poll: Duration,
    /// Pending stream entries idle this long belong to a dead flusher and are reclaimed.
    pub reclaim_idle: Duration,
    /// An XADD slower than this falls back to a direct Postgres insert.
    pub redis_timeout: Duration,
    /// Whether this process runs a flusher (API-only replicas may turn it off).
    pub flusher_enabled: bool,
    /// Key of the daily-rotating IP hash.
    pub ip_hash_key: Secret<String>,
    /// How often the daily aggregates are brought up to date (and old events deleted).
    pub aggregate_interval: Duration,
    /// Raw events older than this many days are deleted (0 keeps them forever).
    pub retention_days: u32,
    /// Base URL of the content service (its `/internal/sitemap/refresh`).
    pub content_service_url: String,
    /// Timeout of a call to the content service.
    pub content_timeout: Duration,
    /// How often the sitemap trigger checks for a stale sitemap (and the base of its backoff).
    pub sitemap_interval: Duration,
}

impl Config {
    /// Reads the configuration of `spec` from `env`.
    pub fn from_env(spec: ServiceSpec, env: &Env) -> Result<Self, ConfigError> {
        let common = CommonConfig::from_env(spec, env)?;
        let batch: usize = env.get(
            "ANALYTICS_FLUSH_BATCH_MAX",
            1000,
            "Rows per flush INSERT; the flusher writes early once it holds this many",
        )?;
        if !(1..=10_000).contains(&batch) {
            return Err(ConfigError {
                variable: "ANALYTICS_FLUSH_BATCH_MAX".to_owned(),
                reason: "must be between 1 and 10000".to_owned(),
            });
        }
        let analytics = AnalyticsSettings {
            flush_interval: env.millis(
                "ANALYTICS_FLUSH_INTERVAL_MS",
                Duration::from_secs(10),
                "The stream flusher writes buffered events to Postgres at least this often",
            )?,
            flush_batch_max: batch,
            flush_poll: env.millis(
                "ANALYTICS_FLUSH_POLL_MS",
                Duration::from_millis(200),
                "How often the flusher polls the Redis stream for new entries",
            )?,
            reclaim_idle: env.millis(
                "ANALYTICS_RECLAIM_IDLE_MS",
                Duration::from_secs(60),
                "Stream entries pending this long on a dead flusher are reclaimed (XAUTOCLAIM)",
            )?,
            redis_timeout: env.millis(
                "ANALYTICS_REDIS_TIMEOUT_MS",
                Duration::from_millis(250),
                "An ingest XADD slower than this writes straight to Postgres instead",
            )?,
            flusher_enabled: env.get(
                "ANALYTICS_FLUSHER_ENABLED",
                true,
                "Whether this process runs the stream flusher",
            )?,
            ip_hash_key: env.secret_or(
                "ANALYTICS_IP_HASH_KEY",
                "dev-analytics-ip-hash-key",
                "Key of the daily-rotating hash of truncated client IP addresses",
            )?,
            aggregate_interval: env.millis(
                "ANALYTICS_AGGREGATE_INTERVAL_MS",
                Duration::from_secs(60),
                "How often the daily aggregates are recomputed for days with new events",
            )?,
            retention_days: env.get(
                "ANALYTICS_RETENTION_DAYS",
                395,
                "Raw tracking events older than this many days are deleted (0 keeps them)",
            )?,
            content_service_url: env.get(
                "CONTENT_SERVICE_URL",
                "http://127.0.0.1:3005".to_owned(),
                "Base URL of the content service, asked to refresh the sitemap after a blog publish",
            )?,
            content_timeout: env.millis(
                "CONTENT_SERVICE_TIMEOUT_MS",
                Duration::from_secs(5),
                "Timeout of a call to the content service (its sitemap refresh includes a CDN call)",
            )?,
            sitemap_interval: env.millis(
                "ANALYTICS_SITEMAP_INTERVAL_MS",
                Duration::from_secs(10),
                "How often a stale sitemap is checked for (and the base of the retry backoff)",
            )?,
        };
        Ok(Self { common, analytics })
    }
}
