//! The customer service's settings, read once at start through `service_kit::Env`.

use std::time::Duration;

use service_kit::config::{CommonConfig, ConfigError, Env, ServiceSpec};

/// The customer service's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Shared settings.
    pub common: CommonConfig,
    /// What is specific to customers.
    pub customer: CustomerSettings,
}

/// Settings specific to the customer service.
#[derive(Debug, Clone)]
pub struct CustomerSettings {
    /// Base URL of the product service (its `/internal` routes).
    pub product_service_url: String,
    /// Timeout of a call to the product service.
    pub product_timeout: Duration,
    /// Base URL of the order-payment service (its `/internal/purchases`, for verified reviews).
    pub order_payment_service_url: String,
    /// Timeout of a call to the order-payment service.
    pub order_payment_timeout: Duration,
    /// How often reviews due for a purchase re-check are looked for; also the first retry's
    /// delay after order-payment could not answer (doubling per failure, at most an hour).
    pub review_verify_interval: Duration,
    /// Loyalty points earned per whole pound paid.
    pub points_per_pound: i64,
    /// Points expire this long after they were credited, unless spent (None = never).
    pub points_expire_after: Option<Duration>,
    /// How often the expiry job runs.
    pub expiry_sweep_interval: Duration,
    /// Most addresses one customer may keep.
    pub max_addresses: i64,
}

impl Config {
    /// Reads the configuration of `spec` from `env`.
    pub fn from_env(spec: ServiceSpec, env: &Env) -> Result<Self, ConfigError> {
        let common = CommonConfig::from_env(spec, env)?;
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
        let order_payment_service_url: String = env.get(
            "ORDER_PAYMENT_SERVICE_URL",
            "http://127.0.0.1:3003".to_owned(),
            "Base URL of the order-payment service, for the verified-purchase check of reviews",
        )?;
        let order_payment_timeout = env.millis(
            "ORDER_PAYMENT_SERVICE_TIMEOUT_MS",
            Duration::from_millis(2000),
            "Timeout of a call to the order-payment service, in milliseconds",
        )?;
        let review_verify_interval = env.millis(
            "REVIEW_VERIFY_SWEEP_MS",
            Duration::from_secs(30),
            "How often reviews awaiting a verified-purchase re-check are re-checked, in milliseconds",
        )?;
        let points_per_pound: i64 = env.get(
            "LOYALTY_POINTS_PER_POUND",
            1,
            "Loyalty points credited per whole pound of a successful payment",
        )?;
        let expire_days: u64 = env.get(
            "LOYALTY_POINTS_EXPIRE_DAYS",
            365,
            "Days after which unspent loyalty points expire (0 = never)",
        )?;
        let sweep_secs: u64 = env.get(
            "LOYALTY_EXPIRY_SWEEP_SECS",
            3600,
            "How often the loyalty points expiry job runs, in seconds",
        )?;
        Ok(Self {
            common,
            customer: CustomerSettings {
                product_service_url: product_service_url.trim_end_matches('/').to_owned(),
                product_timeout: Duration::from_millis(product_timeout_ms.max(1)),
                order_payment_service_url: order_payment_service_url
                    .trim_end_matches('/')
                    .to_owned(),
                order_payment_timeout: order_payment_timeout.max(Duration::from_millis(1)),
                review_verify_interval: review_verify_interval.max(Duration::from_millis(100)),
                points_per_pound: points_per_pound.max(0),
                points_expire_after: (expire_days > 0)
                    .then(|| Duration::from_secs(expire_days.saturating_mul(86_400))),
                expiry_sweep_interval: Duration::from_secs(sweep_secs.max(1)),
                max_addresses: 20,
            },
        })
    }
}
