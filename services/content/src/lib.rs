//! The content service: CMS pages, blog, media uploads, the media wall and storefront content
//! (DESIGN.md §1; issue 8).
//!
//! # Design decisions
//! - **Publishing** (blog, pages) writes its state change and its event (`blog.published`,
//!   `page.published`) in one transaction through the outbox; a cached public list is
//!   invalidated by bumping a version number after the commit.
//! - **Ownership**: only ADMIN and SUPER_ADMIN write content; public reads never show drafts,
//!   scheduled or deleted rows (they are 404).
//! - **Forms** limit submissions per email address in Redis (the gateway cannot read bodies).
//! - **Media** ([`media`]): uploads sniffed from their bytes, resized off the async runtime into
//!   WebP variants, stored behind [`storage::ObjectStore`] (S3 in production, a local directory
//!   served at `/media` in development); CDN invalidation through [`cdn::Invalidator`].

pub mod cdn;
pub mod config;
pub mod error;
pub mod media;
pub mod storage;

use std::sync::Arc;

use service_kit::config::{CommonConfig, ConfigError, Env, ServiceSpec};
use service_kit::redis::Redis;
use service_kit::shared_types::{DomainEvent, EventPayload};
use service_kit::{Infra, Service, Started};
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use utoipa_axum::router::OpenApiRouter;

pub use config::{Config, ContentSettings};
pub use error::{ContentError, ContentResult};

static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/content");

/// What its handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Its own database.
    pub db: PgPool,
    /// Redis, under the service's key prefix.
    pub redis: Redis,
    /// The publishing side's settings.
    pub settings: Arc<ContentSettings>,
    /// Media storage and settings.
    pub media: media::Media,
    /// CDN invalidation (after media changes and publishes).
    pub cdn: cdn::Invalidator,
}

/// A domain event from this service, carrying the current request id (as its correlation id).
pub fn event<T: EventPayload>(payload: T) -> DomainEvent<T> {
    let event = DomainEvent::new(ContentService::SPEC.name, payload);
    match service_kit::request_id::current() {
        Some(request_id) => event.correlation_id(request_id),
        None => event,
    }
}

/// The content service.
pub struct ContentService;

impl Service for ContentService {
    const SPEC: ServiceSpec = ServiceSpec {
        name: "content",
        default_port: 3005,
        database: Some("lomash_content"),
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
            .merge(media::api::router())
            .merge(media::serve::router())
    }

    async fn start(config: Config, infra: Infra) -> anyhow::Result<Started<AppState>> {
        let db = infra.db()?;
        let settings = Arc::new(config.content);
        let cdn = cdn::Invalidator::new(
            config.media.cloudfront_distribution_id.clone(),
            &config.media.aws,
            config.media.cdn_timeout,
        )
        .await;
        let media = media::Media::from_settings(config.media).await?;
        let storage = media.storage.clone();
        let mut started = Started::new(AppState {
            db,
            redis: infra.redis.clone(),
            settings,
            media,
            cdn,
        });
        started
            .checks
            .push(service_kit::readiness::ReadinessCheck::new("media-storage", move || {
                let storage = storage.clone();
                async move { storage.check().await }
            }));
        Ok(started)
    }
}
