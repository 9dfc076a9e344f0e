//! The orders back office (ADMIN): the filtered list with offset paging, one order with its
//! history and notes, status transitions, tracking, notes, a CSV export and a revenue summary.
//!
//! Revenue counts orders by the day they were paid (UTC), excluding cancelled ones; amounts are
//! before refunds (part B's refunds are listed per order).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use service_kit::audit::Entry;
use service_kit::{AdminCaller, Caller, OffsetPage, PageParams, ValidatedJson, ValidatedQuery};
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use validator::Validate;

use super::{
    Actor, ORDER_COLUMNS, Order, OrderRow, OrderStatus, PaymentStatus, full_view, lifecycle,
    order_row, views,
};
use crate::AppState;
use crate::error::{OrderError, OrderResult};

/// Most rows one CSV export holds.
const EXPORT_LIMIT: i64 = 50_000;

/// Filters of the admin list and export.
#[derive(Debug, Default, Deserialize, Validate, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct OrderFilter {
    /// Only this status.
    pub status: Option<OrderStatus>,
    /// Only this payment status.
    pub payment_status: Option<PaymentStatus>,
    /// Only this customer's orders.
    pub user_id: Option<Uuid>,
    /// Order number (prefix) or email (substring), case-insensitive.
    #[validate(length(min = 1, max = 100, message = "must be 1–100 characters"))]
    #[param(min_length = 1, max_length = 100)]
    pub q: Option<String>,
    /// Placed at or after.
    pub from: Option<DateTime<Utc>>,
    /// Placed before.
    pub to: Option<DateTime<Utc>>,
    /// Page number from 1 (list only).
    #[validate(range(min = 1, max = 100000, message = "must be at least 1"))]
    #[param(minimum = 1, maximum = 100000)]
    pub page: Option<u32>,
    /// Rows a page, 1–100 (list only; default 20).
    #[validate(range(min = 1, max = 100, message = "must be between 1 and 100"))]
    #[param(minimum = 1, maximum = 100)]
    pub page_size: Option<u32>,
}

/// The WHERE clause of [`OrderFilter`] over binds `$1..$6`.
const FILTER_SQL: &str = "($1::text IS NULL OR status = $1)
    AND ($2::text IS NULL OR payment_status = $2)
    AND ($3::uuid IS NULL OR user_id = $3)
    AND ($4::text IS NULL OR order_number ILIKE $4 || '%' OR customer_email ILIKE '%' || $4 || '%')
    AND ($5::timestamptz IS NULL OR created_at >= $5)
    AND ($6::timestamptz IS NULL OR created_at < $6)";

fn escape_like(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

macro_rules! bind_filter {
    ($query:expr, $filter:expr) => {
        $query
            .bind($filter.status.map(|s| s.as_str()))
            .bind($filter.payment_status.map(|s| crate::enum_to_db(&s)))
            .bind($filter.user_id)
            .bind($filter.q.as_deref().map(|q| escape_like(q.trim())))
            .bind($filter.from)
            .bind($filter.to)
    };
}

fn check_range(filter: &OrderFilter) -> OrderResult<()> {
    if let (Some(from), Some(to)) = (filter.from, filter.to)
        && to <= from
    {
        return Err(OrderError::field("to", "must be after from"));
    }
    Ok(())
}

/// Every order matching the filters, newest first (ADMIN; offset paging).
#[utoipa::path(
    get,
    path = "/v1/admin/orders",
    tag = "orders-admin",
    params(OrderFilter),
    responses(
        (status = 200, description = "A page of orders", body = OffsetPage<Order>),
        (status = 403, description = "Not an admin", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid filter", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn list(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ValidatedQuery(filter): ValidatedQuery<OrderFilter>,
) -> OrderResult<Json<OffsetPage<Order>>> {
    check_range(&filter)?;
    let paging = PageParams {
        page: filter.page,
        page_size: filter.page_size,
    };
    let mut conn = state.db.acquire().await?;
    let rows = bind_filter!(
        sqlx::query_as::<_, OrderRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE {FILTER_SQL}
             ORDER BY created_at DESC, id DESC LIMIT $7 OFFSET $8"
        ))),
        filter
    )
    .bind(i64::from(paging.page_size()))
    .bind(paging.offset())
    .fetch_all(&mut *conn)
    .await?;
    let total: i64 = bind_filter!(
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM orders WHERE {FILTER_SQL}"
        ))),
        filter
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(Json(OffsetPage {
        data: views(&mut conn, rows).await?,
        page: paging.page(),
        page_size: paging.page_size(),
        total,
    }))
}

/// An internal note on an order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Note {
    /// Id.
    pub id: Uuid,
    /// Who wrote it.
    pub author_id: Uuid,
    /// Text.
    pub body: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// An order with its history and notes.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminOrder {
    /// The order (with history).
    #[serde(flatten)]
    pub order: Order,
    /// Internal notes, oldest first.
    pub notes: Vec<Note>,
}

async fn admin_view(state: &AppState, id: Uuid) -> OrderResult<AdminOrder> {
    let mut conn = state.db.acquire().await?;
    let row = order_row(&mut conn, id, false)
        .await?
        .ok_or(OrderError::NotFound("order"))?;
    let order = full_view(&mut conn, row).await?;
    let notes = sqlx::query_as::<_, Note>(
        "SELECT id, author_id, body, created_at FROM order_notes WHERE order_id = $1
         ORDER BY created_at, id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(AdminOrder { order, notes })
}

/// One order with its history and notes (ADMIN).
#[utoipa::path(
    get,
    path = "/v1/admin/orders/{id}",
    tag = "orders-admin",
    params(("id" = Uuid, Path, description = "Order id")),
    responses(
        (status = 200, description = "The order", body = AdminOrder),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn get_one(
    State(state): State<AppState>,
    _admin: AdminCaller,
    Path(id): Path<Uuid>,
) -> OrderResult<Json<AdminOrder>> {
    Ok(Json(admin_view(&state, id).await?))
}

/// A status change.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransitionRequest {
    /// `PROCESSING`, `SHIPPED`, `DELIVERED` or `CANCELLED`.
    pub to: OrderStatus,
    /// Why (recorded in the history).
    #[validate(length(min = 1, max = 500, message = "must be 1–500 characters"))]
    #[schema(min_length = 1, max_length = 500)]
    pub reason: Option<String>,
}

fn staff(caller: &Caller) -> Actor {
    Actor::Staff(caller.user_id, caller.role)
}

/// Moves an order along its lifecycle (ADMIN). Steps outside the lifecycle are a 409; only a
/// payment confirms an order; cancelling a paid order refunds it in full.
#[utoipa::path(
    post,
    path = "/v1/admin/orders/{id}/transitions",
    tag = "orders-admin",
    params(("id" = Uuid, Path, description = "Order id")),
    request_body = TransitionRequest,
    responses(
        (status = 200, description = "The order", body = AdminOrder),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not a step of the lifecycle", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid request", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn transition(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<Uuid>,
    ValidatedJson(request): ValidatedJson<TransitionRequest>,
) -> OrderResult<Json<AdminOrder>> {
    let reason = request.reason.as_deref().map(str::trim);
    let mut tx = state.db.begin().await?;
    let row = order_row(&mut tx, id, true)
        .await?
        .ok_or(OrderError::NotFound("order"))?;
    let action = format!(
        "status.{}",
        crate::enum_to_db(&request.to).to_ascii_lowercase()
    );
    let entry = Entry::new(&admin, "order", id, &action)
        .before(&json!({"status": row.status, "paymentStatus": row.payment_status}));
    if request.to == OrderStatus::Cancelled {
        let cancelled = lifecycle::cancel(&mut tx, row, staff(&admin), reason).await?;
        record_status(entry, &mut tx, id).await?;
        tx.commit().await?;
        lifecycle::after_cancel(&state, &cancelled, staff(&admin)).await;
    } else {
        lifecycle::advance(&mut tx, &row, request.to, staff(&admin), reason).await?;
        record_status(entry, &mut tx, id).await?;
        tx.commit().await?;
    }
    Ok(Json(admin_view(&state, id).await?))
}

/// Completes a status change's audit entry with the order's state after it.
async fn record_status(entry: Entry, conn: &mut PgConnection, id: Uuid) -> OrderResult<()> {
    let (status, payment_status): (String, String) =
        sqlx::query_as("SELECT status, payment_status FROM orders WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *conn)
            .await?;
    entry
        .after(&json!({"status": status, "paymentStatus": payment_status}))
        .record(conn)
        .await?;
    Ok(())
}

/// The carrier and tracking number.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrackingRequest {
    /// Tracking number.
    #[validate(length(min = 1, max = 100, message = "must be 1–100 characters"))]
    #[schema(min_length = 1, max_length = 100)]
    pub tracking_number: String,
    /// Carrier, e.g. "DPD".
    #[validate(length(min = 1, max = 100, message = "must be 1–100 characters"))]
    #[schema(min_length = 1, max_length = 100)]
    pub carrier: String,
}

/// Sets an order's carrier and tracking number (ADMIN; paid orders that were not cancelled).
#[utoipa::path(
    put,
    path = "/v1/admin/orders/{id}/tracking",
    tag = "orders-admin",
    params(("id" = Uuid, Path, description = "Order id")),
    request_body = TrackingRequest,
    responses(
        (status = 200, description = "The order", body = AdminOrder),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Unpaid or cancelled", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid request", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn set_tracking(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<Uuid>,
    ValidatedJson(request): ValidatedJson<TrackingRequest>,
) -> OrderResult<Json<AdminOrder>> {
    let mut tx = state.db.begin().await?;
    let row = order_row(&mut tx, id, true)
        .await?
        .ok_or(OrderError::NotFound("order"))?;
    if matches!(row.status.as_str(), "PENDING" | "CANCELLED") {
        return Err(OrderError::conflict(
            "not-shippable",
            format!("An order that is {} is not shipped.", row.status),
        ));
    }
    let tracking = json!({
        "trackingNumber": request.tracking_number.trim(),
        "carrier": request.carrier.trim(),
    });
    sqlx::query("UPDATE orders SET tracking_number = $2, carrier = $3 WHERE id = $1")
        .bind(id)
        .bind(request.tracking_number.trim())
        .bind(request.carrier.trim())
        .execute(&mut *tx)
        .await?;
    Entry::new(&admin, "order", id, "tracking.set")
        .before(&json!({"trackingNumber": row.tracking_number, "carrier": row.carrier}))
        .after(&tracking)
        .record(&mut tx)
        .await?;
    tx.commit().await?;
    Ok(Json(admin_view(&state, id).await?))
}

/// A note to add.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NoteRequest {
    /// Text, 1–2000 characters.
    #[validate(length(min = 1, max = 2000, message = "must be 1–2000 characters"))]
    #[schema(min_length = 1, max_length = 2000)]
    pub body: String,
}

/// Adds an internal note to an order (ADMIN).
#[utoipa::path(
    post,
    path = "/v1/admin/orders/{id}/notes",
    tag = "orders-admin",
    params(("id" = Uuid, Path, description = "Order id")),
    request_body = NoteRequest,
    responses(
        (status = 201, description = "Added", body = Note),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid note", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn add_note(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<Uuid>,
    ValidatedJson(request): ValidatedJson<NoteRequest>,
) -> OrderResult<(StatusCode, Json<Note>)> {
    let body = request.body.trim();
    if body.is_empty() {
        return Err(OrderError::field("body", "must not be blank"));
    }
    let mut tx = state.db.begin().await?;
    let note = sqlx::query_as::<_, Note>(
        "INSERT INTO order_notes (id, order_id, author_id, body)
         SELECT $1, o.id, $3, $4 FROM orders o WHERE o.id = $2
         RETURNING id, author_id, body, created_at",
    )
    .bind(Uuid::now_v7())
    .bind(id)
    .bind(admin.user_id)
    .bind(body)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(OrderError::NotFound("order"))?;
    // The note's text is free text, so the trail keeps only that one was added, and its id.
    Entry::new(&admin, "order", id, "note.add")
        .after(&json!({"noteId": note.id, "body": note.body}))
        .record(&mut tx)
        .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(note)))
}

fn pounds(pence: i64) -> String {
    let sign = if pence < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", pence.abs() / 100, pence.abs() % 100)
}

/// The orders matching the filters as CSV, newest first (ADMIN; at most 50,000 rows).
#[utoipa::path(
    get,
    path = "/v1/admin/orders/export",
    tag = "orders-admin",
    params(OrderFilter),
    responses(
        (status = 200, description = "CSV", content_type = "text/csv", body = String),
        (status = 403, description = "Not an admin", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn export(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ValidatedQuery(filter): ValidatedQuery<OrderFilter>,
) -> OrderResult<Response> {
    check_range(&filter)?;
    let rows = bind_filter!(
        sqlx::query_as::<_, OrderRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE {FILTER_SQL}
             ORDER BY created_at DESC, id DESC LIMIT $7"
        ))),
        filter
    )
    .bind(EXPORT_LIMIT)
    .fetch_all(&state.db)
    .await?;
    let mut csv = String::new();
    service_kit::csv::write_row(
        &mut csv,
        [
            "order_number",
            "created_at",
            "status",
            "payment_status",
            "email",
            "subtotal",
            "discount",
            "shipping",
            "tax",
            "total",
            "currency",
            "coupon_code",
            "shipping_method",
            "postcode",
            "tracking_number",
            "carrier",
            "paid_at",
            "cancelled_at",
        ],
    );
    for row in rows {
        let postcode = row.shipping_address["postcode"]
            .as_str()
            .unwrap_or_default();
        let fields = [
            row.order_number.clone(),
            row.created_at.to_rfc3339(),
            row.status.clone(),
            row.payment_status.clone(),
            row.customer_email.clone().unwrap_or_default(),
            pounds(row.subtotal_pence),
            pounds(row.discount_pence),
            pounds(row.shipping_pence),
            pounds(row.tax_pence),
            pounds(row.total_pence),
            row.currency.clone(),
            row.coupon_code.clone().unwrap_or_default(),
            row.shipping_method.clone(),
            postcode.to_owned(),
            row.tracking_number.clone().unwrap_or_default(),
            row.carrier.clone().unwrap_or_default(),
            row.paid_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            row.cancelled_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
        ];
        service_kit::csv::write_row(&mut csv, &fields);
    }
    let mut response = csv.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"orders.csv\""),
    );
    Ok(response)
}

/// How revenue is bucketed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Period {
    /// By day.
    #[default]
    Day,
    /// By ISO week (starting Monday).
    Week,
    /// By calendar month.
    Month,
}

/// The revenue window.
#[derive(Debug, Default, Deserialize, Validate, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct RevenueQuery {
    /// `DAY` (default), `WEEK` or `MONTH`.
    pub period: Option<Period>,
    /// Paid at or after (default: 30 days ago).
    pub from: Option<DateTime<Utc>>,
    /// Paid before (default: now).
    pub to: Option<DateTime<Utc>>,
}

/// Revenue of one period, in pence.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct RevenueBucket {
    /// First day of the period (UTC).
    pub period_start: NaiveDate,
    /// Paid orders.
    pub orders: i64,
    /// What customers paid.
    pub gross: i64,
    /// Coupon discounts given.
    pub discounts: i64,
    /// Delivery charged.
    pub shipping: i64,
    /// VAT within it.
    pub tax: i64,
    /// `gross − tax`.
    pub net: i64,
}

/// Revenue by period.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Revenue {
    /// The bucketing.
    pub period: Period,
    /// Window start.
    pub from: DateTime<Utc>,
    /// Window end.
    pub to: DateTime<Utc>,
    /// Currency of every amount.
    pub currency: String,
    /// Periods with paid orders, oldest first.
    pub buckets: Vec<RevenueBucket>,
    /// The window's totals.
    pub totals: RevenueTotals,
}

/// A window's totals, in pence.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevenueTotals {
    /// Paid orders.
    pub orders: i64,
    /// What customers paid.
    pub gross: i64,
    /// VAT within it.
    pub tax: i64,
    /// `gross − tax`.
    pub net: i64,
}

/// Revenue of paid, not cancelled orders by day, week or month (ADMIN; UTC, before refunds).
#[utoipa::path(
    get,
    path = "/v1/admin/orders/revenue",
    tag = "orders-admin",
    params(RevenueQuery),
    responses(
        (status = 200, description = "Revenue", body = Revenue),
        (status = 403, description = "Not an admin", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid window", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn revenue(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ValidatedQuery(query): ValidatedQuery<RevenueQuery>,
) -> OrderResult<Json<Revenue>> {
    let to = query.to.unwrap_or_else(Utc::now);
    let from = query.from.unwrap_or(to - chrono::Duration::days(30));
    if to <= from {
        return Err(OrderError::field("to", "must be after from"));
    }
    let period = query.period.unwrap_or_default();
    let unit = match period {
        Period::Day => "day",
        Period::Week => "week",
        Period::Month => "month",
    };
    let buckets = sqlx::query_as::<_, RevenueBucket>(
        "SELECT date_trunc($1, paid_at AT TIME ZONE 'UTC')::date AS period_start,
                count(*) AS orders,
                COALESCE(sum(total_pence), 0)::bigint AS gross,
                COALESCE(sum(discount_pence), 0)::bigint AS discounts,
                COALESCE(sum(shipping_pence), 0)::bigint AS shipping,
                COALESCE(sum(tax_pence), 0)::bigint AS tax,
                COALESCE(sum(total_pence - tax_pence), 0)::bigint AS net
         FROM orders
         WHERE paid_at IS NOT NULL AND status <> 'CANCELLED' AND paid_at >= $2 AND paid_at < $3
         GROUP BY 1 ORDER BY 1",
    )
    .bind(unit)
    .bind(from)
    .bind(to)
    .fetch_all(&state.db)
    .await?;
    let totals = RevenueTotals {
        orders: buckets.iter().map(|b| b.orders).sum(),
        gross: buckets.iter().map(|b| b.gross).sum(),
        tax: buckets.iter().map(|b| b.tax).sum(),
        net: buckets.iter().map(|b| b.net).sum(),
    };
    Ok(Json(Revenue {
        period,
        from,
        to,
        currency: "GBP".to_owned(),
        buckets,
        totals,
    }))
}

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(export))
        .routes(routes!(revenue))
        .routes(routes!(get_one))
        .routes(routes!(transition))
        .routes(routes!(set_tracking))
        .routes(routes!(add_note))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pence_print_as_pounds() {
        assert_eq!(pounds(129_900), "1299.00");
        assert_eq!(pounds(5), "0.05");
        assert_eq!(pounds(-250), "-2.50");
    }
}
