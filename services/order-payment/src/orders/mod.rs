//! Orders: placing them ([`create`]), their lifecycle ([`lifecycle`]), the expiry of unpaid
//! ones ([`expiry`]), the back office ([`admin`]) and the erasure of customers' personal data
//! ([`erasure`]). This file holds the shared types and the customer's own endpoints.
//!
//! # Lifecycle
//! `PENDING → CONFIRMED (paid) → PROCESSING → SHIPPED → DELIVERED`, and
//! `PENDING | CONFIRMED → CANCELLED`. Every change is checked against that graph (an illegal
//! one is a 409), made under the order row's lock, and recorded in `order_status_history` with
//! the actor (customer, staff member, or the system) and a reason. Only a payment confirms an
//! order (part B's webhook handling). Cancelling gives the coupon use back and emits
//! `order.cancelled` (product releases the stock); cancelling a paid order refunds it in full
//! through [`crate::refunds::refund_order`] once the cancellation has committed.
//!
//! # Ownership
//! A customer sees only their own orders; anyone else's order is a 404 (never 403). Admins see
//! every order.

pub mod admin;
pub mod create;
pub mod erasure;
pub mod expiry;
pub mod lifecycle;

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use service_kit::{Caller, CursorPage, CursorParams, ValidatedQuery};
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use validator::Validate;

use crate::AppState;
use crate::checkout::Address;
use crate::error::{OrderError, OrderResult};

pub use lifecycle::{Actor, OrderStatus, PaymentStatus};

/// A line of an order, snapshotted when it was placed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct OrderItem {
    /// Line id.
    pub id: Uuid,
    /// The order.
    #[serde(skip)]
    pub order_id: Uuid,
    /// The product.
    pub product_id: Uuid,
    /// The variant.
    pub variant_id: Option<Uuid>,
    /// SKU at purchase.
    pub sku: String,
    /// Title at purchase.
    pub title: String,
    /// Image at purchase.
    pub image_url: Option<String>,
    /// Unit price at purchase, in pence.
    #[sqlx(rename = "unit_price_pence")]
    pub unit_price: i64,
    /// Units.
    pub quantity: i32,
    /// `unitPrice × quantity`, in pence.
    #[sqlx(rename = "line_total_pence")]
    pub line_total: i64,
}

/// A recorded status change.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct StatusChange {
    /// The status before (none for the first).
    pub from_status: Option<String>,
    /// The status after.
    pub to_status: String,
    /// Who (none: the system).
    pub actor_id: Option<Uuid>,
    /// `CUSTOMER`, `ADMIN`, ..., or `SYSTEM`.
    pub actor_role: String,
    /// Why.
    pub reason: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// An order row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrderRow {
    /// Id.
    pub id: Uuid,
    /// `ORD-YYYYMMDD-XXXXXX`.
    pub order_number: String,
    /// Customer.
    pub user_id: Option<Uuid>,
    /// Contact email.
    pub customer_email: Option<String>,
    /// Status.
    pub status: String,
    /// Payment status.
    pub payment_status: String,
    /// Currency.
    pub currency: String,
    /// Pence.
    pub subtotal_pence: i64,
    /// Pence.
    pub discount_pence: i64,
    /// Pence.
    pub shipping_pence: i64,
    /// Pence.
    pub tax_pence: i64,
    /// Pence.
    pub total_pence: i64,
    /// Basis points.
    pub vat_rate_bp: i32,
    /// VAT mode at purchase.
    pub prices_include_vat: bool,
    /// Coupon code used.
    pub coupon_code: Option<String>,
    /// Delivery method code.
    pub shipping_method: String,
    /// Delivery address.
    pub shipping_address: serde_json::Value,
    /// Billing address.
    pub billing_address: serde_json::Value,
    /// When an unpaid order lapses.
    pub reservation_expires_at: Option<DateTime<Utc>>,
    /// Carrier's tracking number.
    pub tracking_number: Option<String>,
    /// Carrier.
    pub carrier: Option<String>,
    /// Paid.
    pub paid_at: Option<DateTime<Utc>>,
    /// Shipped.
    pub shipped_at: Option<DateTime<Utc>>,
    /// Delivered.
    pub delivered_at: Option<DateTime<Utc>>,
    /// Cancelled.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Why it was cancelled.
    pub cancel_reason: Option<String>,
    /// Placed.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// The columns of [`OrderRow`].
pub const ORDER_COLUMNS: &str = "id, order_number, user_id, customer_email, status, payment_status, \
    currency, subtotal_pence, discount_pence, shipping_pence, tax_pence, total_pence, vat_rate_bp, \
    prices_include_vat, coupon_code, shipping_method, shipping_address, billing_address, \
    reservation_expires_at, tracking_number, carrier, paid_at, shipped_at, delivered_at, \
    cancelled_at, cancel_reason, created_at, updated_at";

/// An order as its customer (or an admin) sees it. Amounts in pence.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// Id.
    pub id: Uuid,
    /// `ORD-YYYYMMDD-XXXXXX`.
    pub order_number: String,
    /// The customer.
    pub user_id: Option<Uuid>,
    /// Contact email (absent once erased).
    pub email: Option<String>,
    /// Status.
    pub status: OrderStatus,
    /// Payment status.
    pub payment_status: PaymentStatus,
    /// Currency of every amount.
    pub currency: String,
    /// Sum of the lines.
    pub subtotal: i64,
    /// Coupon discount.
    pub discount: i64,
    /// Delivery.
    pub shipping: i64,
    /// VAT included in (or added to) the total.
    pub tax: i64,
    /// What the customer pays.
    pub total: i64,
    /// VAT rate in basis points.
    pub vat_rate_bp: i32,
    /// Whether the prices included VAT.
    pub prices_include_vat: bool,
    /// Coupon used.
    pub coupon_code: Option<String>,
    /// Delivery method.
    pub shipping_method: String,
    /// Delivery address.
    #[schema(value_type = Address)]
    pub shipping_address: serde_json::Value,
    /// Billing address.
    #[schema(value_type = Address)]
    pub billing_address: serde_json::Value,
    /// The lines.
    pub items: Vec<OrderItem>,
    /// When an unpaid order is cancelled and its stock released.
    pub reservation_expires_at: Option<DateTime<Utc>>,
    /// Carrier's tracking number.
    pub tracking_number: Option<String>,
    /// Carrier.
    pub carrier: Option<String>,
    /// Paid.
    pub paid_at: Option<DateTime<Utc>>,
    /// Shipped.
    pub shipped_at: Option<DateTime<Utc>>,
    /// Delivered.
    pub delivered_at: Option<DateTime<Utc>>,
    /// Cancelled.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Why it was cancelled.
    pub cancel_reason: Option<String>,
    /// Status changes, oldest first (single-order views only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<StatusChange>>,
    /// Placed.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl Order {
    /// The view of `row` with its `items`.
    pub fn of(row: OrderRow, items: Vec<OrderItem>) -> OrderResult<Self> {
        Ok(Self {
            id: row.id,
            order_number: row.order_number,
            user_id: row.user_id,
            email: row.customer_email,
            status: crate::enum_from_db(&row.status)?,
            payment_status: crate::enum_from_db(&row.payment_status)?,
            currency: row.currency,
            subtotal: row.subtotal_pence,
            discount: row.discount_pence,
            shipping: row.shipping_pence,
            tax: row.tax_pence,
            total: row.total_pence,
            vat_rate_bp: row.vat_rate_bp,
            prices_include_vat: row.prices_include_vat,
            coupon_code: row.coupon_code,
            shipping_method: row.shipping_method,
            shipping_address: row.shipping_address,
            billing_address: row.billing_address,
            items,
            reservation_expires_at: row.reservation_expires_at,
            tracking_number: row.tracking_number,
            carrier: row.carrier,
            paid_at: row.paid_at,
            shipped_at: row.shipped_at,
            delivered_at: row.delivered_at,
            cancelled_at: row.cancelled_at,
            cancel_reason: row.cancel_reason,
            history: None,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// The order row `id`, optionally locked for the transaction.
pub async fn order_row(
    conn: &mut PgConnection,
    id: Uuid,
    lock: bool,
) -> OrderResult<Option<OrderRow>> {
    let sql = if lock {
        format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1 FOR UPDATE")
    } else {
        format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1")
    };
    Ok(sqlx::query_as::<_, OrderRow>(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?)
}

/// The items of `orders`, in line order.
pub async fn items_of(conn: &mut PgConnection, orders: &[Uuid]) -> OrderResult<Vec<OrderItem>> {
    Ok(sqlx::query_as::<_, OrderItem>(
        "SELECT id, order_id, product_id, variant_id, sku, title, image_url, unit_price_pence,
                quantity, line_total_pence
         FROM order_items WHERE order_id = ANY($1) ORDER BY order_id, position",
    )
    .bind(orders)
    .fetch_all(&mut *conn)
    .await?)
}

/// The views of `rows`, with their items.
pub async fn views(conn: &mut PgConnection, rows: Vec<OrderRow>) -> OrderResult<Vec<Order>> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut items = items_of(conn, &ids).await?;
    rows.into_iter()
        .map(|row| {
            let (mine, rest): (Vec<OrderItem>, Vec<OrderItem>) =
                items.drain(..).partition(|i| i.order_id == row.id);
            items = rest;
            Order::of(row, mine)
        })
        .collect()
}

/// One order with its items and history.
pub async fn full_view(conn: &mut PgConnection, row: OrderRow) -> OrderResult<Order> {
    let history = sqlx::query_as::<_, StatusChange>(
        "SELECT from_status, to_status, actor_id, actor_role, reason, created_at
         FROM order_status_history WHERE order_id = $1 ORDER BY created_at, id",
    )
    .bind(row.id)
    .fetch_all(&mut *conn)
    .await?;
    let items = items_of(conn, &[row.id]).await?;
    let mut order = Order::of(row, items)?;
    order.history = Some(history);
    Ok(order)
}

/// The order `id` if `caller` may see it (its customer, or an admin); otherwise 404.
pub async fn visible_order(
    conn: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
    lock: bool,
) -> OrderResult<OrderRow> {
    let row = order_row(conn, id, lock)
        .await?
        .ok_or(OrderError::NotFound("order"))?;
    if caller.role.is_admin() || row.user_id == Some(caller.user_id) {
        Ok(row)
    } else {
        Err(OrderError::NotFound("order"))
    }
}

#[derive(Serialize, Deserialize)]
struct ListKey {
    at: DateTime<Utc>,
    id: Uuid,
}

/// The caller's orders, newest first (cursor paging).
#[utoipa::path(
    get,
    path = "/v1/orders",
    tag = "orders",
    params(CursorParams),
    responses(
        (status = 200, description = "A page of the caller's orders", body = CursorPage<Order>),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid cursor or limit", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn list_orders(
    State(state): State<AppState>,
    caller: Caller,
    ValidatedQuery(params): ValidatedQuery<CursorParams>,
) -> OrderResult<Json<CursorPage<Order>>> {
    let after = params.decode::<ListKey>()?;
    let limit = params.limit();
    let mut conn = state.db.acquire().await?;
    let rows = sqlx::query_as::<_, OrderRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {ORDER_COLUMNS} FROM orders
         WHERE user_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
         ORDER BY created_at DESC, id DESC LIMIT $4"
    )))
    .bind(caller.user_id)
    .bind(after.as_ref().map(|k| k.at))
    .bind(after.as_ref().map_or(Uuid::nil(), |k| k.id))
    .bind(i64::from(limit) + 1)
    .fetch_all(&mut *conn)
    .await?;
    let orders = views(&mut conn, rows).await?;
    Ok(Json(CursorPage::from_rows(orders, limit, |o| ListKey {
        at: o.created_at,
        id: o.id,
    })))
}

/// One order with its items and status history (its customer or an admin; others 404).
#[utoipa::path(
    get,
    path = "/v1/orders/{id}",
    tag = "orders",
    params(("id" = Uuid, Path, description = "Order id")),
    responses(
        (status = 200, description = "The order", body = Order),
        (status = 404, description = "No such order of the caller's", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn get_order(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> OrderResult<Json<Order>> {
    let mut conn = state.db.acquire().await?;
    let row = visible_order(&mut conn, &caller, id, false).await?;
    Ok(Json(full_view(&mut conn, row).await?))
}

/// Why a customer cancels.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = OrderCancelRequest)]
pub struct CancelRequest {
    /// Free text.
    #[validate(length(max = 500, message = "must be at most 500 characters"))]
    #[schema(max_length = 500)]
    pub reason: Option<String>,
}

/// Cancels the caller's order while it is PENDING or CONFIRMED (a paid order is refunded in
/// full); later states are a 409.
#[utoipa::path(
    post,
    path = "/v1/orders/{id}/cancel",
    tag = "orders",
    params(("id" = Uuid, Path, description = "Order id")),
    request_body(content = CancelRequest, description = "Optional"),
    responses(
        (status = 200, description = "Cancelled", body = Order),
        (status = 404, description = "No such order of the caller's", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Too late to cancel", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn cancel_order(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    body: axum::body::Bytes,
) -> OrderResult<Json<Order>> {
    // The body is optional: an empty one cancels without a reason.
    let request: CancelRequest = if body.iter().all(u8::is_ascii_whitespace) {
        CancelRequest::default()
    } else {
        let request: CancelRequest = service_kit::extract::parse_json(&body)?;
        request
            .validate()
            .map_err(service_kit::extract::validation_problem)?;
        request
    };
    let mut tx = state.db.begin().await?;
    let row = order_row(&mut tx, id, true)
        .await?
        .filter(|row| row.user_id == Some(caller.user_id))
        .ok_or(OrderError::NotFound("order"))?;
    let actor = Actor::Customer(caller.user_id);
    let reason = request
        .reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    let cancelled = lifecycle::cancel(&mut tx, row, actor, reason.as_deref()).await?;
    tx.commit().await?;
    lifecycle::after_cancel(&state, &cancelled, actor).await;
    let mut conn = state.db.acquire().await?;
    let row = order_row(&mut conn, id, false)
        .await?
        .ok_or(OrderError::NotFound("order"))?;
    Ok(Json(full_view(&mut conn, row).await?))
}

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_orders, create::create_order))
        .routes(routes!(get_order))
        .routes(routes!(cancel_order))
        .merge(admin::router())
}
