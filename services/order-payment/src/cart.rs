//! Carts: a signed-in user's cart, or a guest cart found by an opaque token.
//!
//! - **Guest carts** are created by the first `POST /v1/cart/items` without a token: the answer
//!   carries the token in `cartToken` and the `X-Cart-Token` header; the client sends it back in
//!   `X-Cart-Token`. Only its SHA-256 is stored. A guest cart lapses 30 days after its last
//!   change (`GUEST_CART_TTL_DAYS`); the housekeeping job deletes lapsed ones.
//! - **Merge on login**: a signed-in request that still carries a guest token merges that cart
//!   into the user's (quantities add, capped at 100) and deletes it; `POST /v1/cart/merge` does
//!   the same explicitly.
//! - **Prices** come from the product service on every read, never from the client. Each line
//!   remembers the unit price the shopper last saw (when added or changed); a different current
//!   price sets `priceChanged` with `previousUnitPrice`, and an item that can no longer be
//!   bought online (withdrawn, unpublished, priced on consultation) has `available: false` and
//!   does not count in the subtotal. Changing a line's quantity acknowledges its new price.
//! - **Invariants**: one line per product/variant (a unique index), 1–100 units a line, at most
//!   [`MAX_LINES`] lines. Changes take the cart row's lock so concurrent edits serialise.

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use service_kit::{Caller, MaybeCaller, ValidatedJson};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use validator::Validate;

use crate::AppState;
use crate::error::{OrderError, OrderResult};
use crate::products::ProductSnapshot;

/// The header carrying a guest cart's token, both ways.
pub const CART_TOKEN_HEADER: &str = "x-cart-token";

/// Most lines one cart holds.
pub const MAX_LINES: i64 = 50;

/// Most units of one line.
pub const MAX_QUANTITY: i32 = 100;

/// The guest cart token sent with the request, if any (`X-Cart-Token`).
#[derive(Debug, Clone, Default)]
pub struct CartToken(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for CartToken {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .headers
                .get(CART_TOKEN_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty() && v.len() <= 128)
                .map(str::to_owned),
        ))
    }
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// One line to buy: a product (and its size/colour stock item) and a quantity.
#[derive(Debug, Clone, Deserialize, Serialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ItemRequest {
    /// The product.
    pub product_id: Uuid,
    /// The size/colour variant (its stock item id), if the product has variants.
    #[serde(default)]
    pub variant_id: Option<Uuid>,
    /// Units, 1–100.
    #[validate(range(min = 1, max = 100, message = "must be between 1 and 100"))]
    #[schema(minimum = 1, maximum = 100)]
    pub quantity: i32,
}

/// A cart line with its current price.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CartItem {
    /// Line id.
    pub id: Uuid,
    /// The product.
    pub product_id: Uuid,
    /// The variant, if any.
    pub variant_id: Option<Uuid>,
    /// Units.
    pub quantity: i32,
    /// SKU (absent when the product no longer exists).
    pub sku: Option<String>,
    /// Title.
    pub title: Option<String>,
    /// First image.
    pub image_url: Option<String>,
    /// Current unit price in pence (absent when it cannot be bought online).
    pub unit_price: Option<i64>,
    /// `unitPrice × quantity`.
    pub line_total: Option<i64>,
    /// Whether it can be bought online now.
    pub available: bool,
    /// Whether the price differs from the one the shopper last saw.
    pub price_changed: bool,
    /// The price the shopper last saw, when it changed.
    pub previous_unit_price: Option<i64>,
}

/// A cart as the shopper sees it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CartView {
    /// Cart id (absent when the shopper has no cart yet).
    pub id: Option<Uuid>,
    /// The guest token, only in the answer that created a guest cart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cart_token: Option<String>,
    /// Lines, oldest first.
    pub items: Vec<CartItem>,
    /// Units across available lines.
    pub item_count: i64,
    /// Sum of the available lines in pence.
    pub subtotal: i64,
    /// Currency of every amount.
    pub currency: String,
    /// Whether any line's price changed or became unavailable.
    pub has_changes: bool,
    /// When a guest cart lapses.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A cart row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CartRow {
    /// Id.
    pub id: Uuid,
    /// Owner, for user carts.
    pub user_id: Option<Uuid>,
    /// Lapse time of a guest cart.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A stored line.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LineRow {
    /// Id.
    pub id: Uuid,
    /// Product.
    pub product_id: Uuid,
    /// Variant.
    pub variant_id: Option<Uuid>,
    /// Units.
    pub quantity: i32,
    /// Price last seen.
    pub seen_unit_price: Option<i64>,
}

/// Who is asking for a cart.
#[derive(Debug, Clone)]
pub struct Shopper {
    /// The signed-in user.
    pub user: Option<Uuid>,
    /// The guest token sent.
    pub token: Option<String>,
}

impl Shopper {
    /// From the request's identity and token.
    pub fn new(caller: &MaybeCaller, token: &CartToken) -> Self {
        Self {
            user: caller.0.as_ref().map(|c| c.user_id),
            token: token.0.clone(),
        }
    }
}

async fn guest_cart(
    conn: &mut PgConnection,
    token: &str,
    lock: bool,
) -> OrderResult<Option<CartRow>> {
    let sql = if lock {
        "SELECT id, user_id, expires_at FROM carts
         WHERE token_hash = $1 AND expires_at > now() FOR UPDATE"
    } else {
        "SELECT id, user_id, expires_at FROM carts WHERE token_hash = $1 AND expires_at > now()"
    };
    Ok(sqlx::query_as::<_, CartRow>(sql)
        .bind(token_hash(token))
        .fetch_optional(&mut *conn)
        .await?)
}

async fn user_cart(
    conn: &mut PgConnection,
    user: Uuid,
    lock: bool,
) -> OrderResult<Option<CartRow>> {
    let sql = if lock {
        "SELECT id, user_id, expires_at FROM carts WHERE user_id = $1 FOR UPDATE"
    } else {
        "SELECT id, user_id, expires_at FROM carts WHERE user_id = $1"
    };
    Ok(sqlx::query_as::<_, CartRow>(sql)
        .bind(user)
        .fetch_optional(&mut *conn)
        .await?)
}

/// The signed-in user's cart, created if absent, locked for the transaction.
async fn user_cart_for_update(conn: &mut PgConnection, user: Uuid) -> OrderResult<CartRow> {
    sqlx::query!(
        "INSERT INTO carts (id, user_id) VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING",
        Uuid::now_v7(),
        user
    )
    .execute(&mut *conn)
    .await?;
    user_cart(conn, user, true)
        .await?
        .ok_or(OrderError::NotFound("cart"))
}

/// Moves the guest cart of `token` into `user`'s cart (quantities add, capped at
/// [`MAX_QUANTITY`]; lines beyond [`MAX_LINES`] are dropped) and deletes it. Returns whether a
/// guest cart was merged.
pub async fn merge_guest_cart(
    conn: &mut PgConnection,
    user: Uuid,
    token: &str,
) -> OrderResult<bool> {
    let target = user_cart_for_update(conn, user).await?;
    let Some(guest) = guest_cart(conn, token, true).await? else {
        return Ok(false);
    };
    let lines = lines_of(conn, guest.id).await?;
    for line in lines {
        let merged = sqlx::query!(
            "UPDATE cart_items SET quantity = LEAST(quantity + $4, $5)
             WHERE cart_id = $1 AND product_id = $2 AND variant_id IS NOT DISTINCT FROM $3",
            target.id,
            line.product_id,
            line.variant_id,
            line.quantity,
            MAX_QUANTITY
        )
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if merged == 0 {
            sqlx::query!("INSERT INTO cart_items (id, cart_id, product_id, variant_id, quantity, seen_unit_price)
                 SELECT $1, $2, $3, $4, $5, $6
                 WHERE (SELECT count(*) FROM cart_items WHERE cart_id = $2) < $7", Uuid::now_v7(), target.id, line.product_id, line.variant_id, line.quantity, line.seen_unit_price, MAX_LINES)
            .execute(&mut *conn)
            .await?;
        }
    }
    sqlx::query!("DELETE FROM carts WHERE id = $1", guest.id)
        .execute(&mut *conn)
        .await?;
    touch(conn, target.id).await?;
    Ok(true)
}

async fn touch(conn: &mut PgConnection, cart: Uuid) -> OrderResult<()> {
    sqlx::query!("UPDATE carts SET updated_at = now() WHERE id = $1", cart)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The shopper's current cart, if any (merging a guest cart into a signed-in user's first).
pub async fn current_cart(
    conn: &mut PgConnection,
    shopper: &Shopper,
) -> OrderResult<Option<CartRow>> {
    match (shopper.user, shopper.token.as_deref()) {
        (Some(user), Some(token)) => {
            merge_guest_cart(conn, user, token).await?;
            user_cart(conn, user, false).await
        }
        (Some(user), None) => user_cart(conn, user, false).await,
        (None, Some(token)) => guest_cart(conn, token, false).await,
        (None, None) => Ok(None),
    }
}

/// The lines of `cart`, oldest first.
pub async fn lines_of(conn: &mut PgConnection, cart: Uuid) -> OrderResult<Vec<LineRow>> {
    Ok(sqlx::query_as!(
        LineRow,
        "SELECT id, product_id, variant_id, quantity, seen_unit_price
         FROM cart_items WHERE cart_id = $1 ORDER BY created_at, id",
        cart
    )
    .fetch_all(&mut *conn)
    .await?)
}

/// Empties `cart` (after an order was placed from it).
pub async fn clear(conn: &mut PgConnection, cart: Uuid) -> OrderResult<()> {
    sqlx::query!("DELETE FROM cart_items WHERE cart_id = $1", cart)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

fn view_of(
    cart: Option<&CartRow>,
    lines: &[LineRow],
    snapshots: &std::collections::HashMap<Uuid, ProductSnapshot>,
) -> CartView {
    let mut items = Vec::with_capacity(lines.len());
    let (mut subtotal, mut count, mut changes) = (0i64, 0i64, false);
    for line in lines {
        let snapshot = snapshots.get(&line.product_id);
        let price = snapshot.and_then(ProductSnapshot::purchasable_price);
        let price_changed = match (price, line.seen_unit_price) {
            (Some(now), Some(seen)) => now != seen,
            _ => false,
        };
        if let Some(price) = price {
            subtotal += price * i64::from(line.quantity);
            count += i64::from(line.quantity);
        }
        changes |= price_changed || price.is_none();
        items.push(CartItem {
            id: line.id,
            product_id: line.product_id,
            variant_id: line.variant_id,
            quantity: line.quantity,
            sku: snapshot.map(|s| s.sku.clone()),
            title: snapshot.map(|s| s.title.clone()),
            image_url: snapshot.and_then(|s| s.image_url.clone()),
            unit_price: price,
            line_total: price.map(|p| p * i64::from(line.quantity)),
            available: price.is_some(),
            price_changed,
            previous_unit_price: if price_changed {
                line.seen_unit_price
            } else {
                None
            },
        });
    }
    CartView {
        id: cart.map(|c| c.id),
        cart_token: None,
        items,
        item_count: count,
        subtotal,
        currency: "GBP".to_owned(),
        has_changes: changes,
        expires_at: cart.and_then(|c| c.expires_at),
    }
}

async fn render(state: &AppState, shopper: &Shopper) -> OrderResult<CartView> {
    let mut tx = state.db.begin().await?;
    let cart = current_cart(&mut tx, shopper).await?;
    let lines = match &cart {
        Some(cart) => lines_of(&mut tx, cart.id).await?,
        None => Vec::new(),
    };
    tx.commit().await?;
    let ids: Vec<Uuid> = lines.iter().map(|l| l.product_id).collect();
    let snapshots = if ids.is_empty() {
        Default::default()
    } else {
        state.products.lookup(&ids).await?
    };
    Ok(view_of(cart.as_ref(), &lines, &snapshots))
}

/// The shopper's cart with current prices (an empty cart when there is none yet).
#[utoipa::path(
    get,
    path = "/v1/cart",
    tag = "cart",
    params(("X-Cart-Token" = Option<String>, Header, description = "A guest cart's token")),
    responses(
        (status = 200, description = "The cart", body = CartView),
        (status = 503, description = "The product service is unavailable", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn get_cart(
    State(state): State<AppState>,
    caller: MaybeCaller,
    token: CartToken,
) -> OrderResult<Json<CartView>> {
    Ok(Json(render(&state, &Shopper::new(&caller, &token)).await?))
}

/// Adds a product (or more units of one already in the cart). Creates the cart when needed; a
/// new guest cart's token comes back in `cartToken` and `X-Cart-Token`.
#[utoipa::path(
    post,
    path = "/v1/cart/items",
    tag = "cart",
    params(("X-Cart-Token" = Option<String>, Header, description = "A guest cart's token")),
    request_body = ItemRequest,
    responses(
        (status = 201, description = "Added; the cart", body = CartView),
        (status = 409, description = "Not enough stock, or the cart is full", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid, unknown or unavailable product", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn add_item(
    State(state): State<AppState>,
    caller: MaybeCaller,
    token: CartToken,
    ValidatedJson(request): ValidatedJson<ItemRequest>,
) -> OrderResult<Response> {
    let snapshots = state.products.lookup(&[request.product_id]).await?;
    let Some(snapshot) = snapshots.get(&request.product_id) else {
        return Err(OrderError::field("productId", "no such product"));
    };
    let Some(price) = snapshot.purchasable_price() else {
        return Err(OrderError::field(
            "productId",
            "is not available to buy online",
        ));
    };
    let mut shopper = Shopper::new(&caller, &token);
    let mut tx = state.db.begin().await?;
    let mut created_token = None;
    let guest = match (shopper.user, shopper.token.as_deref()) {
        (None, Some(token)) => guest_cart(&mut tx, token, true).await?,
        _ => None,
    };
    let cart = match (shopper.user, guest) {
        (Some(user), _) => {
            if let Some(token) = shopper.token.as_deref() {
                merge_guest_cart(&mut tx, user, token).await?;
            }
            user_cart_for_update(&mut tx, user).await?
        }
        (None, Some(cart)) => cart,
        // No token, or one whose cart lapsed: a new guest cart with a new token.
        (None, None) => {
            let token = new_token();
            let ttl = chrono::Duration::from_std(state.settings.guest_cart_ttl)
                .map_err(anyhow::Error::from)?;
            let cart = sqlx::query_as!(
                CartRow,
                "INSERT INTO carts (id, token_hash, expires_at) VALUES ($1, $2, $3)
                 RETURNING id, user_id, expires_at",
                Uuid::now_v7(),
                token_hash(&token),
                Utc::now() + ttl
            )
            .fetch_one(&mut *tx)
            .await?;
            shopper.token = Some(token.clone());
            created_token = Some(token);
            cart
        }
    };
    let existing = sqlx::query_as!(
        LineRow,
        "SELECT id, product_id, variant_id, quantity, seen_unit_price FROM cart_items
         WHERE cart_id = $1 AND product_id = $2 AND variant_id IS NOT DISTINCT FROM $3",
        cart.id,
        request.product_id,
        request.variant_id
    )
    .fetch_optional(&mut *tx)
    .await?;
    let quantity = existing.as_ref().map_or(0, |l| l.quantity) + request.quantity;
    if quantity > MAX_QUANTITY {
        return Err(OrderError::field(
            "quantity",
            format!("a line holds at most {MAX_QUANTITY} units"),
        ));
    }
    if let Some(available) = snapshot.available
        && available < i64::from(quantity)
    {
        return Err(OrderError::InsufficientStock(serde_json::json!([{
            "productId": request.product_id,
            "variantId": request.variant_id,
            "requested": quantity,
            "available": available.max(0),
            "reason": "INSUFFICIENT_STOCK",
        }])));
    }
    match existing {
        Some(line) => {
            sqlx::query!(
                "UPDATE cart_items SET quantity = $2, seen_unit_price = $3 WHERE id = $1",
                line.id,
                quantity,
                price
            )
            .execute(&mut *tx)
            .await?;
        }
        None => {
            let lines: i64 = sqlx::query_scalar!(
                r#"SELECT count(*) AS "count!" FROM cart_items WHERE cart_id = $1"#,
                cart.id
            )
            .fetch_one(&mut *tx)
            .await?;
            if lines >= MAX_LINES {
                return Err(OrderError::conflict(
                    "cart-full",
                    format!("A cart holds at most {MAX_LINES} different items."),
                ));
            }
            sqlx::query!("INSERT INTO cart_items (id, cart_id, product_id, variant_id, quantity, seen_unit_price)
                 VALUES ($1, $2, $3, $4, $5, $6)", Uuid::now_v7(), cart.id, request.product_id, request.variant_id, quantity, price)
            .execute(&mut *tx)
            .await?;
        }
    }
    refresh_expiry(&mut tx, &cart, &state).await?;
    tx.commit().await?;
    let mut view = render(&state, &shopper).await?;
    let mut headers = HeaderMap::new();
    if let Some(token) = created_token {
        if let Ok(value) = HeaderValue::from_str(&token) {
            headers.insert(CART_TOKEN_HEADER, value);
        }
        view.cart_token = Some(token);
    }
    Ok((StatusCode::CREATED, headers, Json(view)).into_response())
}

/// Guest carts live `GUEST_CART_TTL_DAYS` after their last change.
async fn refresh_expiry(
    conn: &mut PgConnection,
    cart: &CartRow,
    state: &AppState,
) -> OrderResult<()> {
    if cart.user_id.is_some() {
        return touch(conn, cart.id).await;
    }
    let ttl =
        chrono::Duration::from_std(state.settings.guest_cart_ttl).map_err(anyhow::Error::from)?;
    sqlx::query!(
        "UPDATE carts SET expires_at = $2 WHERE id = $1",
        cart.id,
        Utc::now() + ttl
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The shopper's cart locked for a change; 404 when they have none.
async fn cart_for_change(conn: &mut PgConnection, shopper: &Shopper) -> OrderResult<CartRow> {
    let cart = match (shopper.user, shopper.token.as_deref()) {
        (Some(user), token) => {
            if let Some(token) = token {
                merge_guest_cart(conn, user, token).await?;
            }
            user_cart(conn, user, true).await?
        }
        (None, Some(token)) => guest_cart(conn, token, true).await?,
        (None, None) => None,
    };
    cart.ok_or(OrderError::NotFound("cart"))
}

/// A new quantity for a line.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ItemPatch {
    /// Units, 1–100 (remove the line with `DELETE` instead of 0).
    #[validate(range(min = 1, max = 100, message = "must be between 1 and 100"))]
    #[schema(minimum = 1, maximum = 100)]
    pub quantity: i32,
}

/// Changes a line's quantity (and acknowledges its current price). Takes
/// `application/merge-patch+json` (plain JSON is accepted too).
#[utoipa::path(
    patch,
    path = "/v1/cart/items/{id}",
    tag = "cart",
    params(
        ("id" = Uuid, Path, description = "Line id"),
        ("X-Cart-Token" = Option<String>, Header, description = "A guest cart's token"),
    ),
    request_body(content = ItemPatch, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "The cart", body = CartView),
        (status = 404, description = "No such line in the shopper's cart", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid quantity", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn update_item(
    State(state): State<AppState>,
    caller: MaybeCaller,
    token: CartToken,
    Path(id): Path<Uuid>,
    ValidatedJson(patch): ValidatedJson<ItemPatch>,
) -> OrderResult<Json<CartView>> {
    let shopper = Shopper::new(&caller, &token);
    let mut tx = state.db.begin().await?;
    let cart = cart_for_change(&mut tx, &shopper).await?;
    let line = sqlx::query_as!(
        LineRow,
        "SELECT id, product_id, variant_id, quantity, seen_unit_price FROM cart_items
         WHERE id = $1 AND cart_id = $2",
        id,
        cart.id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(OrderError::NotFound("cart item"))?;
    let snapshots = state.products.lookup(&[line.product_id]).await?;
    let snapshot = snapshots.get(&line.product_id);
    if let Some(available) = snapshot.and_then(|s| s.available)
        && patch.quantity > line.quantity
        && available < i64::from(patch.quantity)
    {
        return Err(OrderError::InsufficientStock(serde_json::json!([{
            "productId": line.product_id,
            "variantId": line.variant_id,
            "requested": patch.quantity,
            "available": available.max(0),
            "reason": "INSUFFICIENT_STOCK",
        }])));
    }
    let seen = snapshot
        .and_then(ProductSnapshot::purchasable_price)
        .or(line.seen_unit_price);
    sqlx::query!(
        "UPDATE cart_items SET quantity = $2, seen_unit_price = $3 WHERE id = $1",
        line.id,
        patch.quantity,
        seen
    )
    .execute(&mut *tx)
    .await?;
    refresh_expiry(&mut tx, &cart, &state).await?;
    tx.commit().await?;
    Ok(Json(render(&state, &shopper).await?))
}

/// Removes a line.
#[utoipa::path(
    delete,
    path = "/v1/cart/items/{id}",
    tag = "cart",
    params(
        ("id" = Uuid, Path, description = "Line id"),
        ("X-Cart-Token" = Option<String>, Header, description = "A guest cart's token"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such line in the shopper's cart", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn remove_item(
    State(state): State<AppState>,
    caller: MaybeCaller,
    token: CartToken,
    Path(id): Path<Uuid>,
) -> OrderResult<StatusCode> {
    let shopper = Shopper::new(&caller, &token);
    let mut tx = state.db.begin().await?;
    let cart = cart_for_change(&mut tx, &shopper).await?;
    let removed = sqlx::query!(
        "DELETE FROM cart_items WHERE id = $1 AND cart_id = $2",
        id,
        cart.id
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if removed == 0 {
        return Err(OrderError::NotFound("cart item"));
    }
    refresh_expiry(&mut tx, &cart, &state).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Empties the cart.
#[utoipa::path(
    delete,
    path = "/v1/cart",
    tag = "cart",
    params(("X-Cart-Token" = Option<String>, Header, description = "A guest cart's token")),
    responses((status = 204, description = "Emptied (or there was no cart)"))
)]
async fn clear_cart(
    State(state): State<AppState>,
    caller: MaybeCaller,
    token: CartToken,
) -> OrderResult<StatusCode> {
    let shopper = Shopper::new(&caller, &token);
    let mut tx = state.db.begin().await?;
    if let Some(cart) = current_cart(&mut tx, &shopper).await? {
        clear(&mut tx, cart.id).await?;
    }
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A guest cart to merge.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MergeRequest {
    /// The guest cart's token.
    #[validate(length(min = 1, max = 128, message = "must be 1–128 characters"))]
    #[schema(min_length = 1, max_length = 128)]
    pub cart_token: String,
}

/// Merges a guest cart into the signed-in user's cart (after login). A token that matches no
/// live guest cart changes nothing.
#[utoipa::path(
    post,
    path = "/v1/cart/merge",
    tag = "cart",
    request_body = MergeRequest,
    responses(
        (status = 200, description = "The merged cart", body = CartView),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn merge(
    State(state): State<AppState>,
    caller: Caller,
    ValidatedJson(request): ValidatedJson<MergeRequest>,
) -> OrderResult<Json<CartView>> {
    let mut tx = state.db.begin().await?;
    merge_guest_cart(&mut tx, caller.user_id, &request.cart_token).await?;
    tx.commit().await?;
    let shopper = Shopper {
        user: Some(caller.user_id),
        token: None,
    };
    Ok(Json(render(&state, &shopper).await?))
}

/// Deletes guest carts past their lapse time (housekeeping).
pub async fn purge_expired(db: &sqlx::PgPool) -> OrderResult<u64> {
    Ok(
        sqlx::query!("DELETE FROM carts WHERE user_id IS NULL AND expires_at <= now()")
            .execute(db)
            .await?
            .rows_affected(),
    )
}

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_cart, clear_cart))
        .routes(routes!(add_item))
        .routes(routes!(update_item, remove_item))
        .routes(routes!(merge))
}
