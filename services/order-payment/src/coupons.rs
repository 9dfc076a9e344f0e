//! Coupons: admin CRUD, `POST /v1/coupons/validate`, and the check checkout and orders apply.
//!
//! A coupon is `PERCENTAGE` (value in basis points, 1000 = 10%) or `FIXED` (pence), with a
//! minimum order, an optional maximum discount, an optional total usage limit and per-customer
//! limit, an optional validity window and an active flag. Codes are case-insensitive (stored in
//! upper case). Uses are the rows of `coupon_redemptions`, one per order; a cancelled order gives
//! its use back. Placing an order locks the coupon row (`FOR UPDATE`) before counting uses, so
//! concurrent orders cannot exceed a limit. The money rules are in [`crate::pricing`].

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use service_kit::audit::Entry;
use service_kit::{
    AdminCaller, MaybeCaller, OffsetPage, PageParams, ValidatedJson, ValidatedQuery,
};
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use validator::{Validate, ValidationError};

use crate::AppState;
use crate::error::{OrderError, OrderResult};
use crate::pricing::{CouponKind, CouponTerms, coupon_discount};

fn valid_code(code: &str) -> Result<(), ValidationError> {
    let ok = (3..=32).contains(&code.len())
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new("code")
            .with_message("must be 3–32 letters, digits, '-' or '_'".into()))
    }
}

/// A coupon as admins see it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Coupon {
    /// Id.
    pub id: Uuid,
    /// Code (upper case).
    pub code: String,
    /// What it is for.
    pub description: Option<String>,
    /// `PERCENTAGE` or `FIXED`.
    #[sqlx(try_from = "String")]
    #[schema(value_type = CouponKind)]
    pub kind: KindColumn,
    /// Basis points (PERCENTAGE) or pence (FIXED).
    pub value: i64,
    /// Smallest subtotal it applies to, in pence.
    #[sqlx(rename = "min_order_pence")]
    pub min_order: i64,
    /// Largest discount, in pence.
    #[sqlx(rename = "max_discount_pence")]
    pub max_discount: Option<i64>,
    /// Total uses allowed.
    pub usage_limit: Option<i32>,
    /// Uses allowed per customer.
    pub per_customer_limit: Option<i32>,
    /// Valid from.
    pub starts_at: Option<DateTime<Utc>>,
    /// Valid until.
    pub ends_at: Option<DateTime<Utc>>,
    /// Whether it can be used at all.
    pub active: bool,
    /// Uses by orders that were not cancelled.
    pub times_used: i64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// The `kind` column read as [`CouponKind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KindColumn(pub CouponKind);

impl TryFrom<String> for KindColumn {
    type Error = anyhow::Error;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        crate::enum_from_db(&value).map(Self)
    }
}

impl Coupon {
    /// Its money terms.
    pub fn terms(&self) -> CouponTerms {
        CouponTerms {
            kind: self.kind.0,
            value: self.value,
            min_order: self.min_order,
            max_discount: self.max_discount,
        }
    }
}

const COLUMNS: &str = "c.id, c.code, c.description, c.kind, c.value, c.min_order_pence, \
    c.max_discount_pence, c.usage_limit, c.per_customer_limit, c.starts_at, c.ends_at, c.active, \
    (SELECT count(*) FROM coupon_redemptions r WHERE r.coupon_id = c.id) AS times_used, \
    c.created_at, c.updated_at";

/// Why a coupon does not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Rejection {
    /// No coupon has this code.
    NotFound,
    /// Switched off.
    Inactive,
    /// Its window has not opened.
    NotStarted,
    /// Its window has closed.
    Expired,
    /// Used as often as allowed.
    UsageLimitReached,
    /// This customer used it as often as allowed.
    CustomerLimitReached,
    /// The subtotal is below its minimum order.
    BelowMinimumOrder,
}

impl Rejection {
    /// What to tell the shopper.
    pub fn message(self, coupon: Option<&Coupon>) -> String {
        match self {
            Self::NotFound => "no such coupon".into(),
            Self::Inactive => "this coupon is not active".into(),
            Self::NotStarted => "this coupon is not valid yet".into(),
            Self::Expired => "this coupon has expired".into(),
            Self::UsageLimitReached => "this coupon has been fully used".into(),
            Self::CustomerLimitReached => "you have already used this coupon".into(),
            Self::BelowMinimumOrder => match coupon {
                Some(c) => format!(
                    "needs an order of at least £{}.{:02}",
                    c.min_order / 100,
                    c.min_order % 100
                ),
                None => "the order is below this coupon's minimum".into(),
            },
        }
    }
}

/// A coupon that applies, with the discount it gives.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The coupon.
    pub coupon: Coupon,
    /// Its discount in pence.
    pub discount: i64,
}

/// Checks `code` for `user` on `subtotal` (pence; `None` skips the minimum and the discount).
/// With `lock`, the coupon row stays locked for the transaction (placing an order).
pub async fn check(
    conn: &mut PgConnection,
    code: &str,
    user: Option<Uuid>,
    subtotal: Option<i64>,
    lock: bool,
) -> OrderResult<Result<Applied, (Rejection, Option<Coupon>)>> {
    let code = code.trim().to_ascii_uppercase();
    if lock {
        sqlx::query("SELECT 1 FROM coupons WHERE code = $1 FOR UPDATE")
            .bind(&code)
            .execute(&mut *conn)
            .await?;
    }
    let Some(coupon) = sqlx::query_as::<_, Coupon>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM coupons c WHERE c.code = $1"
    )))
    .bind(&code)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(Err((Rejection::NotFound, None)));
    };
    let now = Utc::now();
    let rejection = if !coupon.active {
        Some(Rejection::Inactive)
    } else if coupon.starts_at.is_some_and(|s| now < s) {
        Some(Rejection::NotStarted)
    } else if coupon.ends_at.is_some_and(|e| now >= e) {
        Some(Rejection::Expired)
    } else if coupon
        .usage_limit
        .is_some_and(|limit| coupon.times_used >= i64::from(limit))
    {
        Some(Rejection::UsageLimitReached)
    } else {
        None
    };
    if let Some(rejection) = rejection {
        return Ok(Err((rejection, Some(coupon))));
    }
    if let (Some(limit), Some(user)) = (coupon.per_customer_limit, user) {
        let used: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM coupon_redemptions WHERE coupon_id = $1 AND user_id = $2",
        )
        .bind(coupon.id)
        .bind(user)
        .fetch_one(&mut *conn)
        .await?;
        if used >= i64::from(limit) {
            return Ok(Err((Rejection::CustomerLimitReached, Some(coupon))));
        }
    }
    let discount = match subtotal {
        Some(subtotal) => match coupon_discount(&coupon.terms(), subtotal) {
            Ok(discount) => discount,
            Err(_) => return Ok(Err((Rejection::BelowMinimumOrder, Some(coupon)))),
        },
        None => 0,
    };
    Ok(Ok(Applied { coupon, discount }))
}

/// Records that `order` used `applied` (inside the order's transaction).
pub async fn redeem(
    conn: &mut PgConnection,
    applied: &Applied,
    order: Uuid,
    user: Option<Uuid>,
) -> OrderResult<()> {
    sqlx::query(
        "INSERT INTO coupon_redemptions (id, coupon_id, order_id, user_id, amount_pence)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(Uuid::now_v7())
    .bind(applied.coupon.id)
    .bind(order)
    .bind(user)
    .bind(applied.discount)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Gives a cancelled order's use back.
pub async fn release(conn: &mut PgConnection, order: Uuid) -> OrderResult<()> {
    sqlx::query("DELETE FROM coupon_redemptions WHERE order_id = $1")
        .bind(order)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Validation by shoppers

/// A code to check.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValidateRequest {
    /// The code (any case).
    #[validate(length(min = 1, max = 64, message = "must be 1–64 characters"))]
    #[schema(min_length = 1, max_length = 64)]
    pub code: String,
    /// The subtotal to price it on, in pence (absent: the minimum order is not checked).
    #[validate(range(
        min = 0,
        max = 100_000_000,
        message = "must be between 0 and 100000000"
    ))]
    #[serde(default)]
    #[schema(minimum = 0, maximum = 100000000)]
    pub subtotal: Option<i64>,
}

/// Whether a code applies, and what it gives.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValidateResponse {
    /// Whether it applies.
    pub valid: bool,
    /// The code (upper case).
    pub code: String,
    /// Its kind, when it exists.
    pub kind: Option<CouponKind>,
    /// Its value (basis points or pence), when it exists.
    pub value: Option<i64>,
    /// Its minimum order in pence, when it exists.
    pub min_order: Option<i64>,
    /// The discount on `subtotal` in pence, when valid and a subtotal was given.
    pub discount: Option<i64>,
    /// Why not, when invalid.
    pub reason: Option<Rejection>,
    /// Why not, in words.
    pub message: Option<String>,
}

/// Checks a coupon code (anyone; the per-customer limit counts for signed-in shoppers).
#[utoipa::path(
    post,
    path = "/v1/coupons/validate",
    tag = "coupons",
    request_body = ValidateRequest,
    responses(
        (status = 200, description = "Whether it applies", body = ValidateResponse),
        (status = 422, description = "Invalid request", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn validate_coupon(
    State(state): State<AppState>,
    caller: MaybeCaller,
    ValidatedJson(request): ValidatedJson<ValidateRequest>,
) -> OrderResult<Json<ValidateResponse>> {
    let mut conn = state.db.acquire().await?;
    let user = caller.0.map(|c| c.user_id);
    let code = request.code.trim().to_ascii_uppercase();
    let outcome = check(&mut conn, &code, user, request.subtotal, false).await?;
    Ok(Json(match outcome {
        Ok(applied) => ValidateResponse {
            valid: true,
            code,
            kind: Some(applied.coupon.kind.0),
            value: Some(applied.coupon.value),
            min_order: Some(applied.coupon.min_order),
            discount: request.subtotal.map(|_| applied.discount),
            reason: None,
            message: None,
        },
        Err((reason, coupon)) => ValidateResponse {
            valid: false,
            code,
            kind: coupon.as_ref().map(|c| c.kind.0),
            value: coupon.as_ref().map(|c| c.value),
            min_order: coupon.as_ref().map(|c| c.min_order),
            discount: None,
            reason: Some(reason),
            message: Some(reason.message(coupon.as_ref())),
        },
    }))
}

// ---------------------------------------------------------------------------------------------
// Admin CRUD

/// A new coupon.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewCoupon {
    /// 3–32 letters, digits, `-` or `_` (stored upper case).
    #[validate(custom(function = "valid_code"))]
    #[schema(pattern = "^[A-Za-z0-9_-]{3,32}$")]
    pub code: String,
    /// What it is for.
    #[validate(length(max = 500, message = "must be at most 500 characters"))]
    #[schema(max_length = 500)]
    pub description: Option<String>,
    /// `PERCENTAGE` or `FIXED`.
    pub kind: CouponKind,
    /// Basis points (1–10000) or pence (> 0).
    #[validate(range(min = 1, max = 100_000_000, message = "must be positive"))]
    #[schema(minimum = 1, maximum = 100000000)]
    pub value: i64,
    /// Smallest subtotal in pence (default 0).
    #[serde(default)]
    #[validate(range(min = 0, max = 100_000_000, message = "must not be negative"))]
    #[schema(minimum = 0, maximum = 100000000)]
    pub min_order: i64,
    /// Largest discount in pence.
    #[validate(range(min = 1, max = 100_000_000, message = "must be positive"))]
    #[schema(minimum = 1, maximum = 100000000)]
    pub max_discount: Option<i64>,
    /// Total uses allowed.
    #[validate(range(min = 1, message = "must be positive"))]
    #[schema(minimum = 1)]
    pub usage_limit: Option<i32>,
    /// Uses allowed per customer.
    #[validate(range(min = 1, message = "must be positive"))]
    #[schema(minimum = 1)]
    pub per_customer_limit: Option<i32>,
    /// Valid from.
    pub starts_at: Option<DateTime<Utc>>,
    /// Valid until (after `startsAt`).
    pub ends_at: Option<DateTime<Utc>>,
    /// Default true.
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

fn check_terms(
    kind: CouponKind,
    value: i64,
    starts: Option<DateTime<Utc>>,
    ends: Option<DateTime<Utc>>,
) -> OrderResult<()> {
    let mut errors = Vec::new();
    if kind == CouponKind::Percentage && value > 10_000 {
        errors.push(service_kit::FieldError::new(
            "value",
            "a percentage is at most 10000 basis points (100%)",
        ));
    }
    if let (Some(starts), Some(ends)) = (starts, ends)
        && ends <= starts
    {
        errors.push(service_kit::FieldError::new(
            "endsAt",
            "must be after startsAt",
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(OrderError::Validation(errors))
    }
}

async fn load(conn: &mut PgConnection, id: Uuid) -> OrderResult<Coupon> {
    sqlx::query_as::<_, Coupon>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM coupons c WHERE c.id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(OrderError::NotFound("coupon"))
}

/// Creates a coupon (ADMIN).
#[utoipa::path(
    post,
    path = "/v1/coupons",
    tag = "coupons",
    request_body = NewCoupon,
    responses(
        (status = 201, description = "Created", body = Coupon),
        (status = 403, description = "Not an admin", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The code exists", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid coupon", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn create_coupon(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    ValidatedJson(new): ValidatedJson<NewCoupon>,
) -> OrderResult<(StatusCode, Json<Coupon>)> {
    check_terms(new.kind, new.value, new.starts_at, new.ends_at)?;
    let mut tx = state.db.begin().await?;
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO coupons (id, code, description, kind, value, min_order_pence, max_discount_pence,
                              usage_limit, per_customer_limit, starts_at, ends_at, active)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(id)
    .bind(new.code.to_ascii_uppercase())
    .bind(new.description.filter(|d| !d.trim().is_empty()))
    .bind(crate::enum_to_db(&new.kind))
    .bind(new.value)
    .bind(new.min_order)
    .bind(new.max_discount)
    .bind(new.usage_limit)
    .bind(new.per_customer_limit)
    .bind(new.starts_at)
    .bind(new.ends_at)
    .bind(new.active)
    .execute(&mut *tx)
    .await?;
    let coupon = load(&mut tx, id).await?;
    Entry::new(&admin, "coupon", id, "create")
        .after(&coupon)
        .record(&mut tx)
        .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(coupon)))
}

/// Filters of the coupon list.
#[derive(Debug, Default, Deserialize, Validate, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct CouponFilter {
    /// Only active (true) or inactive (false) coupons.
    pub active: Option<bool>,
    /// Page number from 1.
    #[validate(range(min = 1, max = 100000, message = "must be at least 1"))]
    #[param(minimum = 1, maximum = 100000)]
    pub page: Option<u32>,
    /// Rows a page, 1–100 (default 20).
    #[validate(range(min = 1, max = 100, message = "must be between 1 and 100"))]
    #[param(minimum = 1, maximum = 100)]
    pub page_size: Option<u32>,
}

/// Lists coupons, newest first (ADMIN).
#[utoipa::path(
    get,
    path = "/v1/coupons",
    tag = "coupons",
    params(CouponFilter),
    responses(
        (status = 200, description = "A page of coupons", body = OffsetPage<Coupon>),
        (status = 403, description = "Not an admin", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn list_coupons(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ValidatedQuery(filter): ValidatedQuery<CouponFilter>,
) -> OrderResult<Json<OffsetPage<Coupon>>> {
    let paging = PageParams {
        page: filter.page,
        page_size: filter.page_size,
    };
    let rows = sqlx::query_as::<_, Coupon>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM coupons c WHERE ($1::boolean IS NULL OR c.active = $1)
         ORDER BY c.created_at DESC, c.id DESC LIMIT $2 OFFSET $3"
    )))
    .bind(filter.active)
    .bind(i64::from(paging.page_size()))
    .bind(paging.offset())
    .fetch_all(&state.db)
    .await?;
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM coupons WHERE ($1::boolean IS NULL OR active = $1)",
    )
    .bind(filter.active)
    .fetch_one(&state.db)
    .await?;
    Ok(Json(OffsetPage {
        data: rows,
        page: paging.page(),
        page_size: paging.page_size(),
        total,
    }))
}

/// One coupon (ADMIN).
#[utoipa::path(
    get,
    path = "/v1/coupons/{id}",
    tag = "coupons",
    params(("id" = Uuid, Path, description = "Coupon id")),
    responses(
        (status = 200, description = "The coupon", body = Coupon),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such coupon", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn get_coupon(
    State(state): State<AppState>,
    _admin: AdminCaller,
    Path(id): Path<Uuid>,
) -> OrderResult<Json<Coupon>> {
    let mut conn = state.db.acquire().await?;
    Ok(Json(load(&mut conn, id).await?))
}

/// Changes to a coupon (merge patch: absent = unchanged, `null` clears an optional field). The
/// code and kind cannot change; create a new coupon instead.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CouponPatch {
    /// What it is for.
    #[serde(default, deserialize_with = "service_kit::merge_patch::nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// Basis points or pence.
    #[validate(range(min = 1, max = 100_000_000, message = "must be positive"))]
    #[schema(minimum = 1, maximum = 100000000)]
    pub value: Option<i64>,
    /// Smallest subtotal in pence.
    #[validate(range(min = 0, max = 100_000_000, message = "must not be negative"))]
    #[schema(minimum = 0, maximum = 100000000)]
    pub min_order: Option<i64>,
    /// Largest discount in pence.
    #[serde(default, deserialize_with = "service_kit::merge_patch::nullable")]
    #[schema(value_type = Option<i64>, minimum = 1)]
    pub max_discount: Option<Option<i64>>,
    /// Total uses allowed.
    #[serde(default, deserialize_with = "service_kit::merge_patch::nullable")]
    #[schema(value_type = Option<i32>, minimum = 1)]
    pub usage_limit: Option<Option<i32>>,
    /// Uses allowed per customer.
    #[serde(default, deserialize_with = "service_kit::merge_patch::nullable")]
    #[schema(value_type = Option<i32>, minimum = 1)]
    pub per_customer_limit: Option<Option<i32>>,
    /// Valid from.
    #[serde(default, deserialize_with = "service_kit::merge_patch::nullable")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub starts_at: Option<Option<DateTime<Utc>>>,
    /// Valid until.
    #[serde(default, deserialize_with = "service_kit::merge_patch::nullable")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub ends_at: Option<Option<DateTime<Utc>>>,
    /// Whether it can be used.
    pub active: Option<bool>,
}

fn positive(field: &str, value: Option<Option<i64>>) -> OrderResult<()> {
    match value {
        Some(Some(v)) if v <= 0 => Err(OrderError::field(field, "must be positive")),
        _ => Ok(()),
    }
}

/// Changes a coupon (ADMIN; `application/merge-patch+json`).
#[utoipa::path(
    patch,
    path = "/v1/coupons/{id}",
    tag = "coupons",
    params(("id" = Uuid, Path, description = "Coupon id")),
    request_body(content = CouponPatch, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "The coupon", body = Coupon),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such coupon", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid change", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn update_coupon(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<Uuid>,
    ValidatedJson(patch): ValidatedJson<CouponPatch>,
) -> OrderResult<Json<Coupon>> {
    positive("maxDiscount", patch.max_discount)?;
    positive("usageLimit", patch.usage_limit.map(|v| v.map(i64::from)))?;
    positive(
        "perCustomerLimit",
        patch.per_customer_limit.map(|v| v.map(i64::from)),
    )?;
    let mut tx = state.db.begin().await?;
    sqlx::query("SELECT 1 FROM coupons WHERE id = $1 FOR UPDATE")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let current = load(&mut tx, id).await?;
    let entry = Entry::new(&admin, "coupon", id, "update").before(&current);
    let value = patch.value.unwrap_or(current.value);
    let starts_at = patch.starts_at.unwrap_or(current.starts_at);
    let ends_at = patch.ends_at.unwrap_or(current.ends_at);
    check_terms(current.kind.0, value, starts_at, ends_at)?;
    sqlx::query(
        "UPDATE coupons SET description = $2, value = $3, min_order_pence = $4,
             max_discount_pence = $5, usage_limit = $6, per_customer_limit = $7,
             starts_at = $8, ends_at = $9, active = $10
         WHERE id = $1",
    )
    .bind(id)
    .bind(patch.description.unwrap_or(current.description))
    .bind(value)
    .bind(patch.min_order.unwrap_or(current.min_order))
    .bind(patch.max_discount.unwrap_or(current.max_discount))
    .bind(patch.usage_limit.unwrap_or(current.usage_limit))
    .bind(
        patch
            .per_customer_limit
            .unwrap_or(current.per_customer_limit),
    )
    .bind(starts_at)
    .bind(ends_at)
    .bind(patch.active.unwrap_or(current.active))
    .execute(&mut *tx)
    .await?;
    let coupon = load(&mut tx, id).await?;
    entry.after(&coupon).record(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(coupon))
}

/// Deletes a coupon no order has used (ADMIN); a used one can only be deactivated (409).
#[utoipa::path(
    delete,
    path = "/v1/coupons/{id}",
    tag = "coupons",
    params(("id" = Uuid, Path, description = "Coupon id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such coupon", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Orders used it; deactivate it instead", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn delete_coupon(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<Uuid>,
) -> OrderResult<StatusCode> {
    let mut tx = state.db.begin().await?;
    let used: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM orders WHERE coupon_id = $1)")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
    if used {
        return Err(OrderError::conflict(
            "coupon-used",
            "Orders used this coupon, so it is kept for their records; deactivate it instead.",
        ));
    }
    let before = load(&mut tx, id).await?;
    let deleted = sqlx::query("DELETE FROM coupons WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if deleted == 0 {
        return Err(OrderError::NotFound("coupon"));
    }
    Entry::new(&admin, "coupon", id, "delete")
        .before(&before)
        .record(&mut tx)
        .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(validate_coupon))
        .routes(routes!(list_coupons, create_coupon))
        .routes(routes!(get_coupon, update_coupon, delete_coupon))
}
