//! The notification service: email, SMS and push from events, templates, preferences and live
//! WebSocket sessions (DESIGN.md §1; issue 10).
//!
//! # Design decisions
//! - **Events become rows, a sender sends them.** An event handler only renders its messages
//!   and writes them as `QUEUED` rows of the delivery log in the consumer's transaction (with
//!   the `processed_events` record), so a redelivered event queues nothing twice and a slow
//!   provider never holds up the queue. A replica-safe sender claims due rows with
//!   `FOR UPDATE SKIP LOCKED`, calls the channel's provider, and records `SENT` or `FAILED`
//!   (with `notification.sent` / `notification.failed` through the outbox).
//! - **Providers** sit behind one small trait per channel (`Arc<dyn ...>`, the edge we fake in
//!   tests), chosen by configuration; the `log` provider keeps messages in the database.
//! - **Templates** are files in the repository, rendered with strict undefined variables.

pub mod config;
pub mod error;

use std::sync::Arc;

use service_kit::config::{CommonConfig, ConfigError, Env, ServiceSpec};
use service_kit::{Infra, Service, Started};
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use utoipa_axum::router::OpenApiRouter;

pub use config::{Config, NotificationSettings};

static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/notification");

/// What its handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Its own database.
    pub db: PgPool,
    /// The service's own settings.
    pub settings: Arc<NotificationSettings>,
}

/// The notification service.
pub struct NotificationService;

impl Service for NotificationService {
    const SPEC: ServiceSpec = ServiceSpec {
        name: "notification",
        default_port: 3007,
        database: Some("lomash_notifications"),
    };
    const PUBLISHES_EVENTS: bool = true;
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
    }

    async fn start(config: Config, infra: Infra) -> anyhow::Result<Started<AppState>> {
        let db = infra.db()?;
        let settings = Arc::new(config.notification);
        Ok(Started::new(AppState { db, settings }))
    }
}
