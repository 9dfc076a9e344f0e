//! Stock: levels per product or size/colour variant, the movement ledger, admin adjustments,
//! and reservations for checkout.
//!
//! # Concurrency
//! A reservation locks the stock rows it needs (`FOR UPDATE`, in id order so two orders never
//! deadlock) and checks `on_hand − reserved` under the lock; the schema's checks
//! (`reserved ≤ on_hand`, both ≥ 0) back this up. N concurrent requests for the last unit
//! therefore serialise on the row: exactly one sees it available. All-or-nothing: any short
//! line → the transaction rolls back and the answer is 409 listing the short lines.
//!
//! # Life of a reservation (one per order)
//! `ACTIVE` → `COMMITTED` (payment: the units leave `on_hand` and `reserved`) or → `RELEASED`
//! (cancellation) / `EXPIRED` (the sweeper, after `ttlSeconds`). Commit and release are
//! idempotent by state: repeating one changes nothing. They run from the internal endpoints and
//! from the `payment.succeeded` / `order.cancelled` consumers (which also dedupe by event id in
//! `processed_events`). Products without tracked stock (made to order) are not reserved.
//!
//! Every change writes a ledger row and an `inventory.updated` event (with `lowStock` when
//! `available` falls to the item's threshold) in the same transaction.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use service_kit::audit::Entry;
use service_kit::event_bus::{self, HandlerError};
use service_kit::shared_types::DomainEvent;
use service_kit::shared_types::order_payment::{OrderCancelled, PaymentSucceeded};
use service_kit::shared_types::product::{InventoryChangeReason, InventoryUpdated};
use service_kit::{AdminCaller, ServiceCaller, ValidatedJson};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use validator::Validate;

use crate::common::new_id;
use crate::error::{ProductError, ProductResult};
use crate::{AppState, event};

fn reason_str(reason: InventoryChangeReason) -> &'static str {
    match reason {
        InventoryChangeReason::Restock => "RESTOCK",
        InventoryChangeReason::Reservation => "RESERVATION",
        InventoryChangeReason::ReservationReleased => "RESERVATION_RELEASED",
        InventoryChangeReason::Sale => "SALE",
        InventoryChangeReason::Return => "RETURN",
        InventoryChangeReason::Adjustment => "ADJUSTMENT",
    }
}

/// One change of a stock item.
struct Movement {
    stock_item: Uuid,
    on_hand_delta: i32,
    reserved_delta: i32,
    reason: InventoryChangeReason,
    order_id: Option<Uuid>,
    actor: Option<Uuid>,
    note: Option<String>,
}

/// Applies `movement` (the schema refuses a negative level), writes the ledger row and the
/// `inventory.updated` event; returns the item's new state.
async fn apply(conn: &mut PgConnection, movement: Movement) -> ProductResult<StockItem> {
    let row = sqlx::query!(
        r#"UPDATE stock_items s SET on_hand = s.on_hand + $2, reserved = s.reserved + $3
           FROM products p
           WHERE s.id = $1 AND p.id = s.product_id
           RETURNING s.id, s.product_id, s.size_id, s.colour_id, s.on_hand, s.reserved,
                     s.low_stock_threshold, s.updated_at, p.sku"#,
        movement.stock_item,
        movement.on_hand_delta,
        movement.reserved_delta
    )
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query!(
        "INSERT INTO stock_movements (id, stock_item_id, on_hand_delta, reserved_delta, reason,
                                      order_id, actor_id, note)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        new_id(),
        movement.stock_item,
        movement.on_hand_delta,
        movement.reserved_delta,
        reason_str(movement.reason),
        movement.order_id,
        movement.actor,
        movement.note
    )
    .execute(&mut *conn)
    .await?;
    let item = StockItem {
        id: row.id,
        product_id: row.product_id,
        size_id: row.size_id,
        colour_id: row.colour_id,
        on_hand: row.on_hand,
        reserved: row.reserved,
        available: row.on_hand - row.reserved,
        low_stock_threshold: row.low_stock_threshold,
        low_stock: row.on_hand - row.reserved <= row.low_stock_threshold,
        updated_at: row.updated_at,
    };
    let payload = InventoryUpdated {
        product_id: item.product_id,
        sku: row.sku,
        available: i64::from(item.available),
        reserved: i64::from(item.reserved),
        reason: movement.reason,
        stock_item_id: Some(item.id),
        low_stock: item.low_stock,
        order_id: movement.order_id,
        updated_at: item.updated_at,
    };
    event_bus::outbox::publish(conn, &event(payload)).await?;
    if item.low_stock {
        tracing::info!(product = %item.product_id, stock_item = %item.id, available = item.available, "low stock");
    }
    Ok(item)
}

/// The stock of a product or one of its variants.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StockItem {
    /// Id (the `variantId` of reservation lines for variants).
    pub id: Uuid,
    /// The product.
    pub product_id: Uuid,
    /// The size of a variant.
    pub size_id: Option<Uuid>,
    /// The colour of a variant.
    pub colour_id: Option<Uuid>,
    /// Units in stock.
    pub on_hand: i32,
    /// Units held for unpaid orders.
    pub reserved: i32,
    /// `onHand − reserved`.
    pub available: i32,
    /// At or below this, the item is low on stock.
    pub low_stock_threshold: i32,
    /// Whether `available ≤ lowStockThreshold`.
    pub low_stock: bool,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// The stock items of a product (ADMIN).
#[utoipa::path(
    get,
    path = "/v1/products/{id}/inventory",
    tag = "inventory",
    params(("id" = Uuid, Path, description = "Product id")),
    responses(
        (status = 200, description = "Stock items", body = Vec<StockItem>),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn product_stock(
    State(state): State<AppState>,
    _admin: AdminCaller,
    Path(id): Path<Uuid>,
) -> ProductResult<Json<Vec<StockItem>>> {
    let rows = sqlx::query!(
        "SELECT id, product_id, size_id, colour_id, on_hand, reserved, low_stock_threshold, updated_at
         FROM stock_items WHERE product_id = $1 ORDER BY created_at, id",
        id
    )
    .fetch_all(&state.db)
    .await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| StockItem {
                id: r.id,
                product_id: r.product_id,
                size_id: r.size_id,
                colour_id: r.colour_id,
                on_hand: r.on_hand,
                reserved: r.reserved,
                available: r.on_hand - r.reserved,
                low_stock_threshold: r.low_stock_threshold,
                low_stock: r.on_hand - r.reserved <= r.low_stock_threshold,
                updated_at: r.updated_at,
            })
            .collect(),
    ))
}

/// Why an admin changes a stock level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AdjustmentReason {
    /// New stock arrived.
    Restock,
    /// Goods came back.
    Return,
    /// A correction (stock take, damage).
    Adjustment,
}

/// A stock adjustment; the item (product, or size/colour variant) is created on first use.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Adjustment {
    /// The size of the variant (absent for the product itself).
    #[serde(default)]
    pub size_id: Option<Uuid>,
    /// The colour of the variant.
    #[serde(default)]
    pub colour_id: Option<Uuid>,
    /// Units to add (negative to remove).
    #[validate(range(min = -100000, max = 100000, message = "must be between -100000 and 100000"))]
    #[schema(minimum = -100000, maximum = 100000)]
    pub delta: i32,
    /// Why.
    pub reason: AdjustmentReason,
    /// A note for the ledger.
    #[serde(default)]
    #[validate(length(max = 500, message = "must be at most 500 characters"))]
    #[schema(max_length = 500)]
    pub note: Option<String>,
    /// A new low-stock threshold.
    #[serde(default)]
    #[validate(range(min = 0, max = 100000, message = "must be between 0 and 100000"))]
    #[schema(minimum = 0, maximum = 100000)]
    pub low_stock_threshold: Option<i32>,
}

/// Adjusts the stock of a product or variant with a reason (ADMIN); the ledger records it.
#[utoipa::path(
    post,
    path = "/v1/products/{id}/inventory/adjustments",
    tag = "inventory",
    params(("id" = Uuid, Path, description = "Product id")),
    request_body = Adjustment,
    responses(
        (status = 200, description = "The stock item after the change", body = StockItem),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such product", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid, or would go below zero or below the reserved units", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn adjust_stock(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<Uuid>,
    ValidatedJson(adjustment): ValidatedJson<Adjustment>,
) -> ProductResult<Json<StockItem>> {
    let mut tx = state.db.begin().await?;
    let exists = sqlx::query_scalar!(
        "SELECT 1 AS one FROM products WHERE id = $1 AND deleted_at IS NULL",
        id
    )
    .fetch_optional(&mut *tx)
    .await?;
    if exists.is_none() {
        return Err(ProductError::NotFound("product"));
    }
    let before: Option<StockLevels> = sqlx::query_as(
        "SELECT on_hand, reserved, low_stock_threshold FROM stock_items
         WHERE product_id = $1 AND size_id IS NOT DISTINCT FROM $2
           AND colour_id IS NOT DISTINCT FROM $3",
    )
    .bind(id)
    .bind(adjustment.size_id)
    .bind(adjustment.colour_id)
    .fetch_optional(&mut *tx)
    .await?;
    let item = sqlx::query_scalar!(
        "INSERT INTO stock_items (id, product_id, size_id, colour_id, low_stock_threshold)
         VALUES ($1, $2, $3, $4, coalesce($5, 0))
         ON CONFLICT ON CONSTRAINT stock_items_variant_key
         DO UPDATE SET low_stock_threshold = coalesce($5, stock_items.low_stock_threshold)
         RETURNING id",
        new_id(),
        id,
        adjustment.size_id,
        adjustment.colour_id,
        adjustment.low_stock_threshold
    )
    .fetch_one(&mut *tx)
    .await?;
    let reason = match adjustment.reason {
        AdjustmentReason::Restock => InventoryChangeReason::Restock,
        AdjustmentReason::Return => InventoryChangeReason::Return,
        AdjustmentReason::Adjustment => InventoryChangeReason::Adjustment,
    };
    let item = apply(
        &mut tx,
        Movement {
            stock_item: item,
            on_hand_delta: adjustment.delta,
            reserved_delta: 0,
            reason,
            order_id: None,
            actor: Some(admin.user_id),
            note: adjustment.note,
        },
    )
    .await?;
    let after = StockLevels {
        on_hand: item.on_hand,
        reserved: item.reserved,
        low_stock_threshold: item.low_stock_threshold,
    };
    Entry::new(
        &admin,
        "stock_item",
        item.id,
        &format!("stock.{}", reason_str(reason).to_ascii_lowercase()),
    )
    .before(&before)
    .after(&after)
    .record(&mut tx)
    .await?;
    tx.commit().await?;
    Ok(Json(item))
}

/// The levels of a stock item an adjustment changes, as the audit trail shows them.
#[derive(Debug, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
struct StockLevels {
    on_hand: i32,
    reserved: i32,
    low_stock_threshold: i32,
}

// ---------------------------------------------------------------------------------------------
// Reservations

/// One line to reserve.
#[derive(Debug, Clone, Deserialize, Serialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReservationLine {
    /// The product.
    pub product_id: Uuid,
    /// The stock item of a size/colour variant (absent: the product's own stock).
    #[serde(default)]
    pub variant_id: Option<Uuid>,
    /// Units.
    #[validate(range(min = 1, max = 10000, message = "must be between 1 and 10000"))]
    #[schema(minimum = 1, maximum = 10000)]
    pub quantity: i32,
}

/// A reservation request from checkout.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReservationRequest {
    /// The order the units are held for (one reservation per order).
    pub order_id: Uuid,
    /// What to hold.
    #[validate(length(min = 1, max = 100, message = "must list 1–100 items"), nested)]
    #[schema(min_items = 1, max_items = 100)]
    pub items: Vec<ReservationLine>,
    /// How long to hold them (30 s – 24 h; default `RESERVATION_DEFAULT_TTL_SECS`).
    #[serde(default)]
    #[validate(range(min = 30, max = 86400, message = "must be between 30 and 86400"))]
    #[schema(minimum = 30, maximum = 86400)]
    pub ttl_seconds: Option<u32>,
}

/// The state of a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReservationStatus {
    /// Holding stock.
    Active,
    /// Paid: the units were sold.
    Committed,
    /// Cancelled: the units went back.
    Released,
    /// Not paid in time: the units went back.
    Expired,
}

impl ReservationStatus {
    fn parse(value: &str) -> Self {
        match value {
            "COMMITTED" => Self::Committed,
            "RELEASED" => Self::Released,
            "EXPIRED" => Self::Expired,
            _ => Self::Active,
        }
    }
}

/// A held line.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReservedLine {
    /// The product.
    pub product_id: Uuid,
    /// The stock item.
    pub stock_item_id: Uuid,
    /// Units.
    pub quantity: i32,
}

/// A reservation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Reservation {
    /// Id.
    pub id: Uuid,
    /// The order.
    pub order_id: Uuid,
    /// State.
    pub status: ReservationStatus,
    /// When an active reservation lapses.
    pub expires_at: DateTime<Utc>,
    /// The held lines (products without tracked stock are not listed).
    pub items: Vec<ReservedLine>,
}

/// A line that cannot be reserved.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShortLine {
    /// The product.
    pub product_id: Uuid,
    /// The variant asked for.
    pub variant_id: Option<Uuid>,
    /// Units asked for.
    pub requested: i32,
    /// Units available.
    pub available: i32,
    /// `INSUFFICIENT_STOCK`, `UNKNOWN_VARIANT` or `NOT_FOR_SALE`.
    pub reason: String,
}

async fn load_reservation(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> ProductResult<Option<Reservation>> {
    let Some(head) = sqlx::query!(
        "SELECT id, order_id, status, expires_at FROM reservations WHERE order_id = $1",
        order_id
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let items = sqlx::query_as!(
        ReservedLine,
        "SELECT s.product_id, ri.stock_item_id, ri.quantity
         FROM reservation_items ri JOIN stock_items s ON s.id = ri.stock_item_id
         WHERE ri.reservation_id = $1 ORDER BY s.product_id, ri.stock_item_id",
        head.id
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(Some(Reservation {
        id: head.id,
        order_id: head.order_id,
        status: ReservationStatus::parse(&head.status),
        expires_at: head.expires_at,
        items,
    }))
}

/// Holds the units of an order, all or nothing (see the module notes).
pub async fn reserve(
    db: &PgPool,
    request: &ReservationRequest,
    default_ttl: std::time::Duration,
) -> ProductResult<(StatusCode, Reservation)> {
    let mut tx = db.begin().await?;
    if let Some(existing) = load_reservation(&mut tx, request.order_id).await? {
        // A retried request for the same order gets the reservation it made.
        return match existing.status {
            ReservationStatus::Active => Ok((StatusCode::OK, existing)),
            _ => Err(ProductError::Conflict(
                "reservation-closed",
                "This order's reservation has already been committed, released or expired.".into(),
            )),
        };
    }
    // Which stock item each line draws from; untracked products are made to order.
    let mut wanted: std::collections::BTreeMap<Uuid, (Uuid, Option<Uuid>, i32)> =
        Default::default();
    let mut short: Vec<ShortLine> = Vec::new();
    for line in &request.items {
        let product = sqlx::query!(
            "SELECT status, deleted_at FROM products WHERE id = $1",
            line.product_id
        )
        .fetch_optional(&mut *tx)
        .await?;
        let for_sale = product
            .as_ref()
            .is_some_and(|p| p.status == "PUBLISHED" && p.deleted_at.is_none());
        if !for_sale {
            short.push(ShortLine {
                product_id: line.product_id,
                variant_id: line.variant_id,
                requested: line.quantity,
                available: 0,
                reason: "NOT_FOR_SALE".into(),
            });
            continue;
        }
        let item = match line.variant_id {
            Some(variant) => {
                let item = sqlx::query_scalar!(
                    "SELECT id FROM stock_items WHERE id = $1 AND product_id = $2",
                    variant,
                    line.product_id
                )
                .fetch_optional(&mut *tx)
                .await?;
                if item.is_none() {
                    short.push(ShortLine {
                        product_id: line.product_id,
                        variant_id: line.variant_id,
                        requested: line.quantity,
                        available: 0,
                        reason: "UNKNOWN_VARIANT".into(),
                    });
                    continue;
                }
                item
            }
            None => {
                sqlx::query_scalar!(
                    "SELECT id FROM stock_items
                     WHERE product_id = $1 AND size_id IS NULL AND colour_id IS NULL",
                    line.product_id
                )
                .fetch_optional(&mut *tx)
                .await?
            }
        };
        if let Some(item) = item {
            let entry = wanted
                .entry(item)
                .or_insert((line.product_id, line.variant_id, 0));
            entry.2 += line.quantity;
        }
    }
    // Lock in id order (BTreeMap keys are sorted): no deadlocks between overlapping orders.
    let ids: Vec<Uuid> = wanted.keys().copied().collect();
    let levels = sqlx::query!(
        "SELECT id, on_hand, reserved FROM stock_items WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        &ids
    )
    .fetch_all(&mut *tx)
    .await?;
    for level in &levels {
        let (product_id, variant_id, quantity) = wanted[&level.id];
        let available = level.on_hand - level.reserved;
        if available < quantity {
            short.push(ShortLine {
                product_id,
                variant_id,
                requested: quantity,
                available,
                reason: "INSUFFICIENT_STOCK".into(),
            });
        }
    }
    if !short.is_empty() {
        return Err(ProductError::InsufficientStock(
            serde_json::to_value(short).map_err(anyhow::Error::from)?,
        ));
    }
    let ttl = request.ttl_seconds.map_or(default_ttl, |s| {
        std::time::Duration::from_secs(u64::from(s))
    });
    let expires_at = Utc::now() + chrono::Duration::from_std(ttl).map_err(anyhow::Error::from)?;
    let id = new_id();
    sqlx::query!(
        "INSERT INTO reservations (id, order_id, expires_at) VALUES ($1, $2, $3)",
        id,
        request.order_id,
        expires_at
    )
    .execute(&mut *tx)
    .await?;
    for (item, (_, _, quantity)) in &wanted {
        sqlx::query!(
            "INSERT INTO reservation_items (reservation_id, stock_item_id, quantity) VALUES ($1, $2, $3)",
            id,
            item,
            quantity
        )
        .execute(&mut *tx)
        .await?;
        apply(
            &mut tx,
            Movement {
                stock_item: *item,
                on_hand_delta: 0,
                reserved_delta: *quantity,
                reason: InventoryChangeReason::Reservation,
                order_id: Some(request.order_id),
                actor: None,
                note: None,
            },
        )
        .await?;
    }
    let reservation = load_reservation(&mut tx, request.order_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("new reservation vanished"))?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, reservation))
}

/// What a commit or release found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// It happened now.
    Done,
    /// It had happened before (a repeat): nothing changed.
    AlreadyDone,
    /// The reservation is in a state that forbids it (e.g. releasing a committed one).
    Refused(ReservationStatus),
    /// The order holds no reservation.
    Missing,
}

/// Sells the units of `order_id`'s reservation (payment succeeded). Idempotent.
pub async fn commit(conn: &mut PgConnection, order_id: Uuid) -> ProductResult<Transition> {
    transition(conn, order_id, ReservationStatus::Committed).await
}

/// Returns the units of `order_id`'s reservation (cancelled, or `Expired` by the sweeper).
/// Idempotent.
pub async fn release(
    conn: &mut PgConnection,
    order_id: Uuid,
    to: ReservationStatus,
) -> ProductResult<Transition> {
    transition(conn, order_id, to).await
}

async fn transition(
    conn: &mut PgConnection,
    order_id: Uuid,
    to: ReservationStatus,
) -> ProductResult<Transition> {
    let Some(head) = sqlx::query!(
        "SELECT id, status FROM reservations WHERE order_id = $1 FOR UPDATE",
        order_id
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(Transition::Missing);
    };
    let status = ReservationStatus::parse(&head.status);
    let releasing = matches!(to, ReservationStatus::Released | ReservationStatus::Expired);
    match status {
        ReservationStatus::Active => {}
        s if s == to => return Ok(Transition::AlreadyDone),
        // Released and expired are both "given back": either satisfies a release.
        ReservationStatus::Released | ReservationStatus::Expired if releasing => {
            return Ok(Transition::AlreadyDone);
        }
        other => return Ok(Transition::Refused(other)),
    }
    let lines = sqlx::query!(
        "SELECT stock_item_id, quantity FROM reservation_items WHERE reservation_id = $1 ORDER BY stock_item_id",
        head.id
    )
    .fetch_all(&mut *conn)
    .await?;
    for line in lines {
        let movement = if releasing {
            Movement {
                stock_item: line.stock_item_id,
                on_hand_delta: 0,
                reserved_delta: -line.quantity,
                reason: InventoryChangeReason::ReservationReleased,
                order_id: Some(order_id),
                actor: None,
                note: (to == ReservationStatus::Expired).then(|| "expired".to_owned()),
            }
        } else {
            Movement {
                stock_item: line.stock_item_id,
                on_hand_delta: -line.quantity,
                reserved_delta: -line.quantity,
                reason: InventoryChangeReason::Sale,
                order_id: Some(order_id),
                actor: None,
                note: None,
            }
        };
        apply(conn, movement).await?;
    }
    let label = match to {
        ReservationStatus::Committed => "COMMITTED",
        ReservationStatus::Expired => "EXPIRED",
        _ => "RELEASED",
    };
    sqlx::query!(
        "UPDATE reservations SET status = $2 WHERE id = $1",
        head.id,
        label
    )
    .execute(&mut *conn)
    .await?;
    Ok(Transition::Done)
}

/// Holds stock for an order, all or nothing (services only). A retry for the same order answers
/// 200 with the reservation it made.
#[utoipa::path(
    post,
    path = "/internal/inventory/reservations",
    tag = "internal",
    request_body = ReservationRequest,
    responses(
        (status = 201, description = "Reserved", body = Reservation),
        (status = 200, description = "Already reserved for this order", body = Reservation),
        (status = 403, description = "Not a service", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Some lines are short (listed in `items`); nothing reserved", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid request", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn create_reservation(
    State(state): State<AppState>,
    _service: ServiceCaller,
    ValidatedJson(request): ValidatedJson<ReservationRequest>,
) -> ProductResult<(StatusCode, Json<Reservation>)> {
    let (status, reservation) =
        reserve(&state.db, &request, state.settings.reservation_default_ttl).await?;
    Ok((status, Json(reservation)))
}

async fn http_transition(
    state: &AppState,
    order_id: Uuid,
    to: ReservationStatus,
) -> ProductResult<Json<Reservation>> {
    let mut tx = state.db.begin().await?;
    let outcome = match to {
        ReservationStatus::Committed => commit(&mut tx, order_id).await?,
        other => release(&mut tx, order_id, other).await?,
    };
    match outcome {
        Transition::Missing => return Err(ProductError::NotFound("reservation")),
        Transition::Refused(status) => {
            return Err(ProductError::Conflict(
                "reservation-state",
                format!("The reservation is {status:?} and cannot change that way."),
            ));
        }
        Transition::Done | Transition::AlreadyDone => {}
    }
    let reservation = load_reservation(&mut tx, order_id)
        .await?
        .ok_or(ProductError::NotFound("reservation"))?;
    tx.commit().await?;
    Ok(Json(reservation))
}

/// Sells an order's reserved units (services only; idempotent).
#[utoipa::path(
    post,
    path = "/internal/inventory/reservations/{orderId}/commit",
    tag = "internal",
    params(("orderId" = Uuid, Path, description = "Order id")),
    responses(
        (status = 200, description = "Committed (now or before)", body = Reservation),
        (status = 404, description = "No reservation for this order", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Released or expired", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn commit_reservation(
    State(state): State<AppState>,
    _service: ServiceCaller,
    Path(order_id): Path<Uuid>,
) -> ProductResult<Json<Reservation>> {
    http_transition(&state, order_id, ReservationStatus::Committed).await
}

/// Gives an order's reserved units back (services only; idempotent).
#[utoipa::path(
    post,
    path = "/internal/inventory/reservations/{orderId}/release",
    tag = "internal",
    params(("orderId" = Uuid, Path, description = "Order id")),
    responses(
        (status = 200, description = "Released (now or before)", body = Reservation),
        (status = 404, description = "No reservation for this order", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already committed", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn release_reservation(
    State(state): State<AppState>,
    _service: ServiceCaller,
    Path(order_id): Path<Uuid>,
) -> ProductResult<Json<Reservation>> {
    http_transition(&state, order_id, ReservationStatus::Released).await
}

fn handler_error(error: ProductError) -> HandlerError {
    HandlerError::retry(error)
}

/// `payment.succeeded`: the order's reservation is committed.
pub async fn on_payment_succeeded(
    event: DomainEvent<PaymentSucceeded>,
    conn: &mut PgConnection,
) -> Result<(), HandlerError> {
    let order_id = event.payload.order_id;
    match commit(conn, order_id).await.map_err(handler_error)? {
        Transition::Done | Transition::AlreadyDone | Transition::Missing => {}
        Transition::Refused(status) => {
            // The hold lapsed before the payment landed: the units may have been sold again.
            // Stock is not taken twice; staff follow up on the order.
            tracing::warn!(%order_id, ?status, "payment succeeded for a reservation that is no longer held");
        }
    }
    Ok(())
}

/// `order.cancelled`: the order's reservation is released.
pub async fn on_order_cancelled(
    event: DomainEvent<OrderCancelled>,
    conn: &mut PgConnection,
) -> Result<(), HandlerError> {
    let order_id = event.payload.order_id;
    match release(conn, order_id, ReservationStatus::Released)
        .await
        .map_err(handler_error)?
    {
        Transition::Done | Transition::AlreadyDone | Transition::Missing => {}
        Transition::Refused(status) => {
            tracing::warn!(%order_id, ?status, "order cancelled after its stock was sold; returns are handled separately");
        }
    }
    Ok(())
}

/// Releases expired reservations, a batch at a time (several replicas share the work with
/// `SKIP LOCKED`); returns how many it released.
pub async fn release_expired(db: &PgPool) -> ProductResult<usize> {
    let mut tx = db.begin().await?;
    let orders = sqlx::query_scalar!(
        "SELECT order_id FROM reservations
         WHERE status = 'ACTIVE' AND expires_at < now()
         ORDER BY expires_at LIMIT 100 FOR UPDATE SKIP LOCKED"
    )
    .fetch_all(&mut *tx)
    .await?;
    for order in &orders {
        release(&mut tx, *order, ReservationStatus::Expired).await?;
    }
    tx.commit().await?;
    Ok(orders.len())
}

/// The sweeper task.
pub async fn run_sweeper(db: PgPool, interval: std::time::Duration, token: CancellationToken) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                match release_expired(&db).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(released = n, "released expired reservations"),
                    Err(error) => tracing::warn!(%error, "reservation sweep failed"),
                }
            }
            () = token.cancelled() => break,
        }
    }
}

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(product_stock))
        .routes(routes!(adjust_stock))
        .routes(routes!(create_reservation))
        .routes(routes!(commit_reservation))
        .routes(routes!(release_reservation))
}
