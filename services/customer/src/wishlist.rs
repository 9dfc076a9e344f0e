//! The wishlist: product ids the customer keeps, shown with the product's current title, price
//! and image from the product service (one batch lookup per request, never one call per item).
//! Adding a product already on the list is idempotent: `200` with the list, `201` when new.

use std::collections::HashMap;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use service_kit::{Caller, CommonConfig, PeerClient, Problem, ValidatedJson};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use validator::Validate;

use crate::AppState;
use crate::error::{CustomerError, CustomerResult};

/// Price in minor units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = WishlistMoney)]
pub struct Money {
    /// Pence.
    pub amount: i64,
    /// ISO 4217 code.
    pub currency: String,
}

/// What the product service tells us about a product.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductSnapshot {
    /// Id.
    pub id: Uuid,
    /// Title.
    pub title: String,
    /// Slug.
    pub slug: String,
    /// Whether it was withdrawn.
    #[serde(default)]
    pub deleted: bool,
    /// Price (null = on consultation).
    #[serde(default)]
    pub price: Option<Money>,
    /// First image.
    #[serde(default)]
    pub image_url: Option<String>,
}

#[derive(Deserialize)]
struct LookupResponse {
    data: Vec<ProductSnapshot>,
}

/// The product service's `/internal` API, called with a token naming this service.
#[derive(Clone, Debug)]
pub struct ProductClient {
    peer: PeerClient,
}

impl ProductClient {
    /// A client of the product service at `base_url`, with the service's peer-call settings.
    pub fn new(common: &CommonConfig, base_url: String, timeout: Duration) -> anyhow::Result<Self> {
        Ok(Self {
            peer: PeerClient::for_service(common, "product", base_url, timeout)?,
        })
    }

    /// Snapshots of `ids` (at most 100) by id, in one call; ids with no product are absent.
    pub async fn lookup(&self, ids: &[Uuid]) -> CustomerResult<HashMap<Uuid, ProductSnapshot>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let body: LookupResponse = self
            .peer
            .post(
                "/internal/products/lookup",
                &serde_json::json!({ "ids": ids }),
            )
            .await
            .map_err(Problem::from)?;
        Ok(body.data.into_iter().map(|p| (p.id, p)).collect())
    }
}

/// A wishlist entry with the product's current details.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WishlistItem {
    /// The product.
    pub product_id: Uuid,
    /// When it was added.
    pub added_at: DateTime<Utc>,
    /// Whether the product still exists and is on sale.
    pub available: bool,
    /// Current title.
    pub title: Option<String>,
    /// Current slug.
    pub slug: Option<String>,
    /// Current price.
    pub price: Option<Money>,
    /// Current first image.
    pub image_url: Option<String>,
}

/// A product to add.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddItem {
    /// The product.
    pub product_id: Uuid,
}

/// At most this many items on one list (one lookup call covers them all).
const MAX_ITEMS: i64 = 100;

async fn items(state: &AppState, user_id: Uuid) -> CustomerResult<Vec<WishlistItem>> {
    let rows: Vec<(Uuid, DateTime<Utc>)> = sqlx::query_as(
        "SELECT product_id, created_at FROM wishlist_items WHERE user_id = $1 \
         ORDER BY created_at DESC, product_id LIMIT $2",
    )
    .bind(user_id)
    .bind(MAX_ITEMS)
    .fetch_all(&state.db)
    .await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.0).collect();
    let mut products = state.products.lookup(&ids).await?;
    Ok(rows
        .into_iter()
        .map(|(product_id, added_at)| {
            let product = products.remove(&product_id);
            WishlistItem {
                product_id,
                added_at,
                available: product.as_ref().is_some_and(|p| !p.deleted),
                title: product.as_ref().map(|p| p.title.clone()),
                slug: product.as_ref().map(|p| p.slug.clone()),
                price: product.as_ref().and_then(|p| p.price.clone()),
                image_url: product.and_then(|p| p.image_url),
            }
        })
        .collect())
}

/// The caller's wishlist, newest first, with current product details.
#[utoipa::path(
    get,
    path = "/v1/wishlist",
    tag = "wishlist",
    responses(
        (status = 200, description = "The wishlist", body = [WishlistItem]),
        (status = 503, description = "Product service unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> CustomerResult<Json<Vec<WishlistItem>>> {
    Ok(Json(items(&state, caller.user_id).await?))
}

/// Adds a product (checked with the product service); already there → 200, new → 201.
#[utoipa::path(
    post,
    path = "/v1/wishlist",
    tag = "wishlist",
    request_body = AddItem,
    responses(
        (status = 201, description = "Added; the wishlist", body = [WishlistItem]),
        (status = 200, description = "Already there; the wishlist", body = [WishlistItem]),
        (status = 404, description = "No such product", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The wishlist is full", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn add(
    State(state): State<AppState>,
    caller: Caller,
    ValidatedJson(input): ValidatedJson<AddItem>,
) -> CustomerResult<(StatusCode, Json<Vec<WishlistItem>>)> {
    let found = state.products.lookup(&[input.product_id]).await?;
    if found.get(&input.product_id).is_none_or(|p| p.deleted) {
        return Err(CustomerError::NotFound("product"));
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM wishlist_items WHERE user_id = $1")
        .bind(caller.user_id)
        .fetch_one(&state.db)
        .await?;
    let inserted = sqlx::query(
        "INSERT INTO wishlist_items (user_id, product_id) SELECT $1, $2 WHERE $3 < $4 \
         ON CONFLICT DO NOTHING",
    )
    .bind(caller.user_id)
    .bind(input.product_id)
    .bind(count)
    .bind(MAX_ITEMS)
    .execute(&state.db)
    .await?
    .rows_affected();
    let status = if inserted == 1 {
        StatusCode::CREATED
    } else {
        let present: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM wishlist_items WHERE user_id = $1 AND product_id = $2)",
        )
        .bind(caller.user_id)
        .bind(input.product_id)
        .fetch_one(&state.db)
        .await?;
        if !present {
            return Err(CustomerError::Conflict(
                "wishlist-full",
                format!("A wishlist holds at most {MAX_ITEMS} products."),
            ));
        }
        StatusCode::OK
    };
    Ok((status, Json(items(&state, caller.user_id).await?)))
}

/// Removes a product (idempotent).
#[utoipa::path(
    delete,
    path = "/v1/wishlist/{productId}",
    tag = "wishlist",
    params(("productId" = Uuid, Path, description = "The product")),
    responses((status = 204, description = "Not on the list any more"))
)]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(product_id): Path<Uuid>,
) -> CustomerResult<StatusCode> {
    sqlx::query("DELETE FROM wishlist_items WHERE user_id = $1 AND product_id = $2")
        .bind(caller.user_id)
        .bind(product_id)
        .execute(&state.db)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, add))
        .routes(routes!(remove))
}
