//! The customer service: profiles, addresses, wishlists, reviews, support tickets and loyalty.

use service_kit::config::{CommonConfig, ConfigError, Env, ServiceSpec};
use service_kit::{Infra, Service, Started};
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use utoipa_axum::router::OpenApiRouter;

static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/customer");

/// The customer service's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Shared settings.
    pub common: CommonConfig,
}

/// What its handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Its own database.
    pub db: PgPool,
}

/// The customer service.
pub struct CustomerService;

impl Service for CustomerService {
    const SPEC: ServiceSpec = ServiceSpec {
        name: "customer",
        default_port: 3006,
        database: Some("lomash_customers"),
    };
    const PUBLISHES_EVENTS: bool = true;
    type Config = Config;
    type State = AppState;

    fn migrator() -> Option<&'static Migrator> {
        Some(&MIGRATOR)
    }

    fn config(env: &Env) -> Result<Config, ConfigError> {
        Ok(Config {
            common: CommonConfig::from_env(Self::SPEC, env)?,
        })
    }

    fn common(config: &Config) -> &CommonConfig {
        &config.common
    }

    fn routes() -> OpenApiRouter<AppState> {
        OpenApiRouter::new()
    }

    async fn start(_config: Config, infra: Infra) -> anyhow::Result<Started<AppState>> {
        Ok(Started::new(AppState { db: infra.db()? }))
    }
}
