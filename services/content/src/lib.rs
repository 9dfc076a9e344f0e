//! The content service: CMS pages, blog, media uploads, the media wall and storefront content
//! (DESIGN.md §1; issue 8).
//!
//! # Endpoints (paths as served; the gateway forwards them unchanged)
//! | route | who | module |
//! |---|---|---|
//! | `GET /v1/blog` (`tag`, `category`, cursor), `/v1/blog/{slug}`, `/v1/blog/{slug}/related` | anyone | [`blog`] |
//! | `POST /v1/blog`; `PATCH`, `DELETE /v1/blog/{id}`; `POST .../{id}/publish\|unpublish\|archive\|schedule`; `GET /v1/admin/blog` (+ `/{id}`) | ADMIN | [`blog`] |
//! | `GET /v1/pages/{slug}` | anyone | [`pages`] |
//! | `POST /v1/pages`; `PATCH`, `DELETE /v1/pages/{id}`; `POST .../{id}/publish\|unpublish`; `GET .../{id}/versions`; `GET /v1/admin/pages` (+ `/{id}`) | ADMIN | [`pages`] |
//! | `GET /v1/{hero-slides,projects,finance,faqs,accreditations,testimonials}` (+ `/{id}`), `GET /v1/media-wall` | anyone | [`storefront`] |
//! | `POST /v1/<kind>`; `PATCH`, `DELETE /v1/<kind>/{id}`; `PUT /v1/<kind>/order`; `GET /v1/admin/<kind>`; `PUT /v1/media-wall` | ADMIN | [`storefront`] |
//! | `POST /v1/contact`, `/v1/business-enquiries`, `/v1/newsletter`; `POST /v1/newsletter/{token}/confirm`; `DELETE /v1/newsletter/{token}` | anyone (per-email limits) | [`forms`] |
//! | `GET /v1/admin/{contact,business-enquiries,newsletter}` (+ `/export` as CSV) | ADMIN | [`forms`] |
//! | `GET /v1/sitemap.xml`, `GET /robots.txt` | anyone | [`seo`] |
//! | `POST /internal/sitemap/refresh` (analytics' trigger after `blog.published`) | services | [`internal`] |
//! | `POST /v1/uploads`; `GET`, `PATCH`, `DELETE /v1/media...`; `GET /media/...` | see [`media`] | [`media`] |
//! | `GET /v1/pages/audit`: the audit trail of every admin change above | SUPER_ADMIN | `service_kit::audit` |
//!
//! # Design decisions
//! - **Publishing** (blog, pages) writes its state change and its event (`blog.published`,
//!   `page.published`) in one transaction through the outbox; every public read of the
//!   publishing side is cached in Redis (`service_kit::cache`, namespace `public`) and one
//!   version bump after each committed write invalidates all of it at once
//!   ([`AppState::content_changed`], which also asks the CDN to drop the changed paths).
//! - **Scheduled posts** go live through a background job ([`blog::schedule`]) that claims due
//!   rows `FOR UPDATE SKIP LOCKED`: safe with any number of replicas.
//! - **SQL**: run-time checked `sqlx::query`/`query_as` over literal SQL with bound parameters
//!   only (no SQL is built from input; the storefront's per-kind statements are literals made by
//!   a macro); the integration tests run every one of them.
//! - **Ownership**: only ADMIN and SUPER_ADMIN write content; public reads never show drafts,
//!   scheduled or deleted rows (they are 404).
//! - **Forms** limit submissions per email address in Redis (the gateway cannot read bodies).
//! - **Media** ([`media`]): uploads sniffed from their bytes, resized off the async runtime into
//!   WebP variants, stored behind [`storage::ObjectStore`] (S3 in production, a local directory
//!   served at `/media` in development); CDN invalidation through [`cdn::Invalidator`].

pub mod blog;
pub mod cdn;
pub mod config;
pub mod error;
pub mod forms;
pub mod internal;
pub mod markdown;
pub mod media;
pub mod pages;
pub mod seo;
pub mod storage;
pub mod storefront;

use std::sync::Arc;

use service_kit::cache::ResponseCache;
use service_kit::config::{CommonConfig, ConfigError, Env, ServiceSpec};
use service_kit::redis::Redis;
use service_kit::shared_types::{DomainEvent, EventPayload};
use service_kit::{Infra, PeerClient, Service, Started, task};
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use utoipa_axum::router::OpenApiRouter;

pub use config::{Config, ContentSettings};
pub use error::{ContentError, ContentResult};

static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/content");

impl axum::extract::FromRef<AppState> for PgPool {
    fn from_ref(state: &AppState) -> Self {
        state.db.clone()
    }
}

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
    /// Cached public responses of the publishing side (blog, pages, storefront, sitemap).
    pub blog_cache: ResponseCache,
    /// Product-service's internal API (the sitemap's catalogue URLs).
    pub products: PeerClient,
}

impl AppState {
    /// After a committed change to public content: makes every cached public response
    /// unreachable and asks the CDN to drop `paths` (in the background: a slow CDN API never
    /// holds up the admin's response).
    pub async fn content_changed(&self, paths: &[String]) {
        self.blog_cache.invalidate().await;
        if !paths.is_empty() {
            self.cdn.invalidate_in_background(paths.to_vec());
        }
    }
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
        let mut routes = OpenApiRouter::new()
            .merge(blog::router())
            .merge(pages::router())
            .merge(seo::router())
            .merge(storefront::router())
            .merge(forms::router())
            .merge(media::api::router())
            .merge(media::serve::router())
            .merge(internal::router())
            .nest("/v1/pages", service_kit::audit::router());
        storefront::document(routes.get_openapi_mut());
        pages::document(routes.get_openapi_mut());
        routes
    }

    async fn start(config: Config, infra: Infra) -> anyhow::Result<Started<AppState>> {
        let db = infra.db()?;
        let settings = Arc::new(config.content);
        let blog_cache = ResponseCache::new(
            infra.redis.clone(),
            settings.cache_ttl,
            settings.cache_ttl,
            settings.cache_timeout,
        )
        .with_namespace("public");
        let products = PeerClient::for_service(
            &infra.config,
            "product",
            settings.product_service_url.clone(),
            settings.product_timeout,
        )?;
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
            blog_cache,
            products,
        });
        if let Some(every) = started.state.settings.schedule_interval {
            let state = started.state.clone();
            started.tasks.push(task(move |token| {
                blog::schedule::run_job(state, every, token)
            }));
        }
        started
            .checks
            .push(service_kit::readiness::ReadinessCheck::new(
                "media-storage",
                move || {
                    let storage = storage.clone();
                    async move { storage.check().await }
                },
            ));
        Ok(started)
    }
}

/// The database spelling of a SCREAMING_SNAKE enum (its JSON string).
pub(crate) fn enum_to_db<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// An enum from its database spelling (the schema's checks keep it one of the variants).
pub(crate) fn enum_from_db<T: serde::de::DeserializeOwned>(value: &str) -> anyhow::Result<T> {
    Ok(serde_json::from_value(serde_json::Value::String(
        value.to_owned(),
    ))?)
}
#[cfg(test)]
mod tests {
    use super::*;

    /// A media reference needs a `mediaId` or a `url` (its validator's rule), and the document
    /// says so; in a merge patch the nested media is merged member by member, so there `{}` is
    /// a valid (no-op) patch and the rule is not stated.
    #[test]
    fn the_openapi_document_states_that_a_media_reference_needs_a_source() {
        let doc = serde_json::to_value(service_kit::service::openapi::<ContentService>())
            .expect("the document serialises");
        let schemas = &doc["components"]["schemas"];
        let not_null = serde_json::json!({"type": ["array", "boolean", "integer", "number", "object", "string"]});
        assert_eq!(
            schemas["MediaRef"]["allOf"][1],
            serde_json::json!({"anyOf": [
                {"type": "object", "required": ["mediaId"], "properties": {"mediaId": not_null}},
                {"type": "object", "required": ["url"], "properties": {"url": not_null}},
            ]})
        );
        // A merge patch of the media: anything but clearing both sources.
        let patch = &schemas["MediaRefMergePatch"];
        assert!(
            patch["allOf"][0]["properties"]["url"].is_object(),
            "{patch}"
        );
        assert_eq!(patch["allOf"].as_array().map(Vec::len), Some(2), "{patch}");
        assert_eq!(
            patch["allOf"][1]["anyOf"],
            serde_json::json!([
                {"type": "object", "properties": {"mediaId": not_null}},
                {"type": "object", "properties": {"url": not_null}},
            ])
        );
    }

    /// Only a LANDING page has a validity window; the document says so for a new page and for
    /// a merge patch (a patch naming another type and a window is invalid as it stands).
    #[test]
    fn the_openapi_document_states_that_only_landing_pages_have_a_window() {
        let doc = serde_json::to_value(service_kit::service::openapi::<ContentService>())
            .expect("the document serialises");
        let schemas = &doc["components"]["schemas"];
        let rule = &schemas["PageInput"]["allOf"][1];
        assert_eq!(
            rule["anyOf"],
            serde_json::json!([
                {"type": "object", "properties": {"pageType": {"type": "string", "enum": ["LANDING"]}}},
                {"type": "object", "properties": {"validFrom": {"type": "null"}, "validUntil": {"type": "null"}}},
            ]),
            "{rule}"
        );
        assert_eq!(&schemas["PageInputMergePatch"]["allOf"][1], rule);
    }

    /// The publishing routes this service serves (part A); a change here is an API change, and
    /// the gateway's route table must follow.
    #[test]
    fn the_openapi_document_lists_every_publishing_route() {
        let routes = service_kit::service::route_list::<ContentService>();
        let mut expected: Vec<String> = vec![
            "GET /v1/blog",
            "POST /v1/blog",
            "GET /v1/blog/{id}",
            "PATCH /v1/blog/{id}",
            "DELETE /v1/blog/{id}",
            "GET /v1/blog/{id}/related",
            "POST /v1/blog/{id}/publish",
            "POST /v1/blog/{id}/unpublish",
            "POST /v1/blog/{id}/archive",
            "POST /v1/blog/{id}/schedule",
            "GET /v1/admin/blog",
            "GET /v1/admin/blog/{id}",
            "POST /v1/pages",
            "GET /v1/pages/{id}",
            "PATCH /v1/pages/{id}",
            "DELETE /v1/pages/{id}",
            "POST /v1/pages/{id}/publish",
            "POST /v1/pages/{id}/unpublish",
            "GET /v1/pages/{id}/versions",
            "GET /v1/pages/audit",
            "GET /v1/admin/pages",
            "GET /v1/admin/pages/{id}",
            "GET /v1/media-wall",
            "PUT /v1/media-wall",
            "POST /v1/contact",
            "POST /v1/business-enquiries",
            "POST /v1/newsletter",
            "POST /v1/newsletter/{token}/confirm",
            "DELETE /v1/newsletter/{token}",
            "GET /v1/admin/contact",
            "GET /v1/admin/contact/export",
            "GET /v1/admin/business-enquiries",
            "GET /v1/admin/business-enquiries/export",
            "GET /v1/admin/newsletter",
            "GET /v1/admin/newsletter/export",
            "GET /v1/sitemap.xml",
            "GET /robots.txt",
            "POST /internal/sitemap/refresh",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        for kind in [
            "hero-slides",
            "projects",
            "finance",
            "faqs",
            "accreditations",
            "testimonials",
        ] {
            for route in [
                format!("GET /v1/{kind}"),
                format!("POST /v1/{kind}"),
                format!("GET /v1/{kind}/{{id}}"),
                format!("PATCH /v1/{kind}/{{id}}"),
                format!("DELETE /v1/{kind}/{{id}}"),
                format!("PUT /v1/{kind}/order"),
                format!("GET /v1/admin/{kind}"),
            ] {
                expected.push(route);
            }
        }
        expected.sort();
        // Part B's media routes are pinned by its own tests; compare the publishing ones.
        let publishing: Vec<String> = routes
            .into_iter()
            .filter(|r| {
                !r.contains("/media/") && !r.ends_with("/v1/media") && !r.contains("/uploads")
            })
            .collect();
        assert_eq!(publishing, expected);
    }
}
