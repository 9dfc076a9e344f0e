//! The content service's settings, read once at start through `service_kit::Env`.

use std::time::Duration;

use service_kit::config::{CommonConfig, ConfigError, Env, ServiceSpec};

/// The content service's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Shared settings.
    pub common: CommonConfig,
    /// Publishing, forms and SEO settings (blog, pages, storefront content, forms, sitemap).
    pub content: ContentSettings,
    /// Media uploads, storage and CDN settings.
    pub media: crate::media::MediaSettings,
}

/// Settings of the publishing side of the content service.
#[derive(Debug, Clone)]
pub struct ContentSettings {
    /// Public base URL of the storefront, used for sitemap and robots.txt links (no trailing `/`).
    pub public_site_url: String,
    /// Base URL of the product service (its `/internal` routes, for the sitemap).
    pub product_service_url: String,
    /// Timeout of a call to the product service.
    pub product_timeout: Duration,
    /// How long a cached public list lives in Redis.
    pub cache_ttl: Duration,
    /// A cache call slower than this counts as a miss.
    pub cache_timeout: Duration,
    /// How often the scheduled-publish job looks for due posts (None = never).
    pub schedule_interval: Option<Duration>,
    /// Contact-form submissions allowed per email address and hour.
    pub contact_limit_per_hour: u32,
    /// Newsletter sign-ups allowed per email address and day.
    pub newsletter_limit_per_day: u32,
}

impl Config {
    /// Reads the configuration of `spec` from `env`.
    pub fn from_env(spec: ServiceSpec, env: &Env) -> Result<Self, ConfigError> {
        let mut common = CommonConfig::from_env(spec, env)?;
        let media = crate::media::MediaSettings::from_env(env, &common)?;
        // Uploads are multipart bodies up to the upload limit: the service-wide body limit must
        // admit them (JSON routes stay bounded by the gateway's per-route limit).
        common.body_limit_bytes = common.body_limit_bytes.max(media.body_limit_bytes());
        let public_site_url: String = env.get(
            "PUBLIC_SITE_URL",
            "https://www.lomashwood.co.uk".to_owned(),
            "Public base URL of the storefront, for sitemap.xml and robots.txt links",
        )?;
        if !(public_site_url.starts_with("http://") || public_site_url.starts_with("https://")) {
            return Err(ConfigError {
                variable: "PUBLIC_SITE_URL".to_owned(),
                reason: format!("must be an http(s) URL (got {public_site_url:?})"),
            });
        }
        let product_service_url: String = env.get(
            "PRODUCT_SERVICE_URL",
            "http://127.0.0.1:3002".to_owned(),
            "Base URL of the product service, for wishlist product lookups",
        )?;
        let product_timeout_ms: u64 = env.get(
            "PRODUCT_SERVICE_TIMEOUT_MS",
            2000,
            "Timeout of a call to the product service, in milliseconds",
        )?;
        let cache_ttl_secs: u64 = env.get(
            "CONTENT_CACHE_TTL_SECS",
            60,
            "Lifetime of cached public content lists (blog, storefront) in Redis, in seconds",
        )?;
        let cache_timeout_ms: u64 = env.get(
            "CONTENT_CACHE_TIMEOUT_MS",
            250,
            "A content cache call slower than this (ms) counts as a miss",
        )?;
        let schedule_secs: u64 = env.get(
            "BLOG_SCHEDULE_INTERVAL_SECS",
            30,
            "How often scheduled blog posts that are due get published, in seconds (0 = never)",
        )?;
        let contact_limit_per_hour: u32 = env.get(
            "CONTACT_LIMIT_PER_HOUR",
            5,
            "Contact-form submissions accepted per email address and hour",
        )?;
        let newsletter_limit_per_day: u32 = env.get(
            "NEWSLETTER_LIMIT_PER_DAY",
            3,
            "Newsletter sign-ups accepted per email address and day",
        )?;
        Ok(Self {
            common,
            media,
            content: ContentSettings {
                public_site_url: public_site_url.trim_end_matches('/').to_owned(),
                product_service_url: product_service_url.trim_end_matches('/').to_owned(),
                product_timeout: Duration::from_millis(product_timeout_ms.max(1)),
                cache_ttl: Duration::from_secs(cache_ttl_secs.max(1)),
                cache_timeout: Duration::from_millis(cache_timeout_ms.max(1)),
                schedule_interval: (schedule_secs > 0).then(|| Duration::from_secs(schedule_secs)),
                contact_limit_per_hour: contact_limit_per_hour.max(1),
                newsletter_limit_per_day: newsletter_limit_per_day.max(1),
            },
        })
    }
}
