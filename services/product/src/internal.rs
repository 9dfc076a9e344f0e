//! What other services read about products (`/internal`, service tokens only): the price,
//! title and status snapshot order-payment puts on an order line, and the published catalogue's
//! URLs for content-service's sitemap.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use service_kit::{ServiceCaller, ValidatedJson};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use validator::Validate;

use crate::AppState;
use crate::common::{Family, Money};
use crate::error::{ProductError, ProductResult};
use crate::products::ProductStatus;

/// A product as an order line sees it. Deleted products are included (`deleted: true`) so a
/// caller can tell "withdrawn" from "never existed".
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductSnapshot {
    /// Id.
    pub id: Uuid,
    /// SKU.
    pub sku: String,
    /// Title.
    pub title: String,
    /// Slug.
    pub slug: String,
    /// Family.
    pub category: Family,
    /// Status.
    pub status: ProductStatus,
    /// Whether it was withdrawn.
    pub deleted: bool,
    /// Price (null = on consultation: cannot be bought online).
    pub price: Option<Money>,
    /// First image URL.
    pub image_url: Option<String>,
    /// Units available across its tracked stock (null when stock is not tracked).
    pub available: Option<i64>,
}

async fn snapshots(db: &sqlx::PgPool, ids: &[Uuid]) -> ProductResult<Vec<ProductSnapshot>> {
    let rows = sqlx::query!(
        r#"SELECT p.id, p.sku, p.title, p.slug, p.category, p.status,
                  p.deleted_at IS NOT NULL AS "deleted!", p.price_pence, p.currency,
                  p.images -> 0 ->> 'url' AS image_url,
                  (SELECT sum(s.on_hand - s.reserved) FROM stock_items s WHERE s.product_id = p.id)::bigint AS available
           FROM products p WHERE p.id = ANY($1)"#,
        ids
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ProductSnapshot {
            id: r.id,
            sku: r.sku,
            title: r.title,
            slug: r.slug,
            category: Family::from_db(&r.category),
            status: ProductStatus::parse(&r.status).unwrap_or_default(),
            deleted: r.deleted,
            price: Money::from_columns(r.price_pence, &r.currency),
            image_url: r.image_url,
            available: r.available,
        })
        .collect())
}

/// One product's snapshot (services only).
#[utoipa::path(
    get,
    path = "/internal/products/{id}",
    tag = "internal",
    params(("id" = Uuid, Path, description = "Product id")),
    responses(
        (status = 200, description = "The snapshot", body = ProductSnapshot),
        (status = 403, description = "Not a service", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such product", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn product_snapshot(
    State(state): State<AppState>,
    _service: ServiceCaller,
    Path(id): Path<Uuid>,
) -> ProductResult<Json<ProductSnapshot>> {
    snapshots(&state.db, &[id])
        .await?
        .into_iter()
        .next()
        .map(Json)
        .ok_or(ProductError::NotFound("product"))
}

/// Ids to look up.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupRequest {
    /// 1–100 product ids.
    #[validate(length(min = 1, max = 100, message = "must list 1–100 ids"))]
    #[schema(min_items = 1, max_items = 100)]
    pub ids: Vec<Uuid>,
}

/// The snapshots found, and the ids that match no product.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LookupResponse {
    /// Snapshots, in the order asked.
    pub data: Vec<ProductSnapshot>,
    /// Ids with no product.
    pub missing: Vec<Uuid>,
}

/// Many products' snapshots at once (services only).
#[utoipa::path(
    post,
    path = "/internal/products/lookup",
    tag = "internal",
    request_body = LookupRequest,
    responses(
        (status = 200, description = "Snapshots", body = LookupResponse),
        (status = 403, description = "Not a service", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid request", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn lookup(
    State(state): State<AppState>,
    _service: ServiceCaller,
    ValidatedJson(request): ValidatedJson<LookupRequest>,
) -> ProductResult<Json<LookupResponse>> {
    let found = snapshots(&state.db, &request.ids).await?;
    let mut by_id: std::collections::HashMap<Uuid, ProductSnapshot> =
        found.into_iter().map(|s| (s.id, s)).collect();
    let mut data = Vec::new();
    let mut missing = Vec::new();
    for id in &request.ids {
        match by_id.remove(id) {
            Some(snapshot) => data.push(snapshot),
            None if !data.iter().any(|s: &ProductSnapshot| s.id == *id) => missing.push(*id),
            None => {}
        }
    }
    Ok(Json(LookupResponse { data, missing }))
}

/// Most products one sitemap answer lists (a sitemap file holds at most 50 000 URLs).
const SITEMAP_MAX_PRODUCTS: i64 = 45_000;

/// A published product or a category, as a sitemap entry.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct SitemapEntry {
    /// URL slug.
    pub slug: String,
    /// `KITCHEN` or `BEDROOM`.
    pub family: String,
    /// Last change.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// What the storefront's sitemap lists from the catalogue.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SitemapResponse {
    /// Published, undeleted products, most recently changed first.
    pub products: Vec<SitemapEntry>,
    /// Undeleted categories, in display order.
    pub categories: Vec<SitemapEntry>,
}

/// The published catalogue's slugs for the sitemap (services only).
#[utoipa::path(
    get,
    path = "/internal/sitemap",
    tag = "internal",
    responses(
        (status = 200, description = "Products and categories", body = SitemapResponse),
        (status = 403, description = "Not a service", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn sitemap(
    State(state): State<AppState>,
    _service: ServiceCaller,
) -> ProductResult<Json<SitemapResponse>> {
    let products: Vec<SitemapEntry> = sqlx::query_as(
        "SELECT slug, category AS family, updated_at FROM products
         WHERE status = 'PUBLISHED' AND deleted_at IS NULL
         ORDER BY updated_at DESC, id LIMIT $1",
    )
    .bind(SITEMAP_MAX_PRODUCTS)
    .fetch_all(&state.db)
    .await?;
    let categories: Vec<SitemapEntry> = sqlx::query_as(
        "SELECT slug, family, updated_at FROM categories
         WHERE deleted_at IS NULL ORDER BY sort_order, id",
    )
    .fetch_all(&state.db)
    .await?;
    Ok(Json(SitemapResponse {
        products,
        categories,
    }))
}

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(product_snapshot))
        .routes(routes!(lookup))
        .routes(routes!(sitemap))
}
