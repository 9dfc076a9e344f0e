//! The product service's settings, read once at start through `service_kit::Env`.

use std::time::Duration;

use service_kit::config::{CommonConfig, ConfigError, Env, ServiceSpec};

/// The product service's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Shared settings.
    pub common: CommonConfig,
    /// What is specific to the catalogue.
    pub product: ProductSettings,
}

/// Settings specific to the product service.
#[derive(Debug, Clone)]
pub struct ProductSettings {
    /// How long a cached list (or facet) response lives in Redis.
    pub cache_list_ttl: Duration,
    /// How long a cached product detail lives in Redis.
    pub cache_detail_ttl: Duration,
    /// A Redis call slower than this is treated as a miss (reads then go to Postgres).
    pub cache_timeout: Duration,
    /// How often buffered product views are added to `popularity`.
    pub popularity_flush_interval: Duration,
    /// How often expired reservations are released.
    pub reservation_sweep_interval: Duration,
    /// Reservation lifetime when the request names none.
    pub reservation_default_ttl: Duration,
}

impl Config {
    /// Reads the configuration of `spec` from `env`.
    pub fn from_env(spec: ServiceSpec, env: &Env) -> Result<Self, ConfigError> {
        let common = CommonConfig::from_env(spec, env)?;
        let list_ttl: u64 = env.get(
            "PRODUCT_CACHE_LIST_TTL_SECS",
            60,
            "Lifetime of cached product lists and facets in Redis, in seconds",
        )?;
        let detail_ttl: u64 = env.get(
            "PRODUCT_CACHE_DETAIL_TTL_SECS",
            300,
            "Lifetime of cached product details in Redis, in seconds",
        )?;
        let reservation_ttl: u64 = env.get(
            "RESERVATION_DEFAULT_TTL_SECS",
            900,
            "Lifetime of a stock reservation whose request names no ttlSeconds",
        )?;
        let product = ProductSettings {
            cache_list_ttl: Duration::from_secs(positive("PRODUCT_CACHE_LIST_TTL_SECS", list_ttl)?),
            cache_detail_ttl: Duration::from_secs(positive(
                "PRODUCT_CACHE_DETAIL_TTL_SECS",
                detail_ttl,
            )?),
            cache_timeout: env.millis(
                "PRODUCT_CACHE_TIMEOUT_MS",
                Duration::from_millis(250),
                "A cache call slower than this counts as a miss (Redis outages degrade to uncached reads)",
            )?,
            popularity_flush_interval: env.millis(
                "POPULARITY_FLUSH_MS",
                Duration::from_secs(5),
                "How often buffered product views are added to the popularity counts",
            )?,
            reservation_sweep_interval: env.millis(
                "RESERVATION_SWEEP_MS",
                Duration::from_secs(30),
                "How often expired stock reservations are released",
            )?,
            reservation_default_ttl: Duration::from_secs(positive(
                "RESERVATION_DEFAULT_TTL_SECS",
                reservation_ttl,
            )?),
        };
        Ok(Self { common, product })
    }
}

fn positive(variable: &str, value: u64) -> Result<u64, ConfigError> {
    if value == 0 {
        Err(ConfigError {
            variable: variable.to_owned(),
            reason: "must be at least 1".to_owned(),
        })
    } else {
        Ok(value)
    }
}
