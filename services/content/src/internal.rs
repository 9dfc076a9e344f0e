//! `/internal` routes other services call (never routed by the gateway).
//!
//! `POST /internal/sitemap/refresh` is analytics' sitemap trigger (the seed's rule: a published
//! blog post asks content to regenerate the sitemap). A publish already moves the public cache to
//! a new version, so the next sitemap request renders with the new post; what a publish does not
//! do is drop the sitemap's *CDN* copy (it names the blog paths only), nor re-read the catalogue
//! part, which the cached entry otherwise keeps for its TTL. This route does both: it deletes the
//! sitemap entry of the current cache version (the next request renders it from the current posts
//! and catalogue) and asks the CDN to drop `/v1/sitemap.xml`. It answers 503 when either step
//! could not be done, so the caller retries; it is idempotent.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use service_kit::{Problem, ServiceCaller};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::cdn::Outcome;

/// The sitemap's public path (the CDN caches it under this).
const SITEMAP_PATH: &str = "/v1/sitemap.xml";

/// What a refresh did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SitemapRefreshed {
    /// Whether a cached sitemap of the current version was there to drop.
    pub cache_entry_dropped: bool,
    /// `LOGGED` (no CDN configured), `CREATED` (CloudFront accepted the invalidation).
    pub cdn: String,
}

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(refresh_sitemap))
}

/// Drops the cached sitemap and its CDN copy, so the next request renders it afresh (services).
#[utoipa::path(
    post,
    path = "/internal/sitemap/refresh",
    tag = "internal",
    responses(
        (status = 200, description = "Dropped", body = SitemapRefreshed),
        (status = 403, description = "Not a service", body = Problem),
        (status = 503, description = "Redis or the CDN did not answer; retry", body = Problem),
    )
)]
async fn refresh_sitemap(
    State(state): State<AppState>,
    service: ServiceCaller,
) -> Result<Json<SitemapRefreshed>, Problem> {
    let unavailable = |what: &str| {
        Problem::from_status(StatusCode::SERVICE_UNAVAILABLE).with_detail(format!(
            "{what}; the sitemap was not refreshed, retry later."
        ))
    };
    let version = state
        .blog_cache
        .version()
        .await
        .ok_or_else(|| unavailable("The cache did not answer"))?;
    let key = state.blog_cache.key(version, "sitemap", "sitemap.xml");
    let mut conn = state.redis.conn();
    let dropped: i64 = conn.del(&key).await.map_err(|error| {
        tracing::warn!(%error, "cannot drop the cached sitemap");
        unavailable("The cache did not answer")
    })?;
    let cdn = match state.cdn.invalidate([SITEMAP_PATH]).await {
        Outcome::Created(_) => "CREATED",
        Outcome::Logged(_) | Outcome::Nothing => "LOGGED",
        Outcome::Failed => return Err(unavailable("The CDN refused the invalidation")),
    };
    tracing::info!(caller = %service.service, dropped, cdn, "sitemap refreshed on request");
    Ok(Json(SitemapRefreshed {
        cache_entry_dropped: dropped > 0,
        cdn: cdn.to_owned(),
    }))
}
