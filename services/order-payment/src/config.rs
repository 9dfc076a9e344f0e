//! The order-payment service's settings, read once at start through `service_kit::Env`.

use std::time::Duration;

use service_kit::config::{CommonConfig, ConfigError, Env, ServiceSpec};

/// The order-payment service's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Shared settings.
    pub common: CommonConfig,
    /// Carts, checkout and orders.
    pub orders: OrderSettings,
    /// Stripe (payments, webhooks, refunds).
    pub stripe: crate::stripe::StripeSettings,
}

/// Settings of carts, checkout and orders.
#[derive(Debug, Clone)]
pub struct OrderSettings {
    /// Base URL of the product service (its `/internal` routes).
    pub product_service_url: String,
    /// Timeout of a call to the product service.
    pub product_timeout: Duration,
    /// Whether catalogue prices include VAT (UK retail norm) or VAT is added on top.
    pub prices_include_vat: bool,
    /// How long an unpaid order holds its stock before it is cancelled.
    pub reservation_ttl: Duration,
    /// How often the job cancelling expired unpaid orders runs.
    pub expiry_sweep_interval: Duration,
    /// How long an untouched guest cart lives.
    pub guest_cart_ttl: Duration,
    /// How long an idempotency record answers replays.
    pub idempotency_ttl: Duration,
}

impl Config {
    /// Reads the configuration of `spec` from `env`.
    pub fn from_env(spec: ServiceSpec, env: &Env) -> Result<Self, ConfigError> {
        let common = CommonConfig::from_env(spec, env)?;
        let product_service_url: String = env.get(
            "PRODUCT_SERVICE_URL",
            "http://127.0.0.1:3002".to_owned(),
            "Base URL of the product service, for prices, snapshots and stock reservations",
        )?;
        let product_timeout = env.millis(
            "PRODUCT_SERVICE_TIMEOUT_MS",
            Duration::from_millis(2000),
            "Timeout of a call to the product service, in milliseconds",
        )?;
        let prices_include_vat: bool = env.get(
            "PRICES_INCLUDE_VAT",
            true,
            "Whether catalogue prices include VAT (true: VAT is extracted; false: added on top)",
        )?;
        let reservation_secs: u64 = env.get(
            "ORDER_RESERVATION_TTL_SECS",
            1800,
            "Seconds an unpaid order holds its stock before it is cancelled (30-86400)",
        )?;
        let sweep_secs: u64 = env.get(
            "ORDER_EXPIRY_SWEEP_SECS",
            30,
            "How often the job cancelling expired unpaid orders runs, in seconds",
        )?;
        let guest_cart_days: u64 = env.get(
            "GUEST_CART_TTL_DAYS",
            30,
            "Days an untouched guest cart is kept",
        )?;
        let stripe = crate::stripe::StripeSettings::from_env(env)?;
        Ok(Self {
            common,
            stripe,
            orders: OrderSettings {
                product_service_url: product_service_url.trim_end_matches('/').to_owned(),
                product_timeout: product_timeout.max(Duration::from_millis(1)),
                prices_include_vat,
                // Product refuses reservation TTLs outside 30 s – 24 h.
                reservation_ttl: Duration::from_secs(reservation_secs.clamp(30, 86_400)),
                expiry_sweep_interval: Duration::from_secs(sweep_secs.max(1)),
                guest_cart_ttl: Duration::from_secs(guest_cart_days.max(1).saturating_mul(86_400)),
                idempotency_ttl: Duration::from_secs(24 * 3600),
            },
        })
    }
}
