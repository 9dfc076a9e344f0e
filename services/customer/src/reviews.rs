//! Product reviews: one per customer per product (409 on a second), moderated
//! `PENDING → APPROVED | REJECTED` by administrators, back to `PENDING` when edited; only
//! approved reviews are public, and the rating aggregate is computed from them on each read (an
//! index on approved rows per product keeps it cheap), so it is right after every approve,
//! reject, edit or delete. `verifiedPurchase` comes from order-payment ([`purchases`]).

pub mod purchases;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use service_kit::audit;
use service_kit::shared_types::customer::{ReviewCreated, ReviewStatus};
use service_kit::{
    AdminCaller, Caller, CursorPage, OffsetPage, PageParams, Problem, ValidatedJson,
    ValidatedQuery, event_bus,
};
use sqlx::PgConnection;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use validator::Validate;

use crate::AppState;
use crate::error::{CustomerError, CustomerResult};
use crate::profiles::JsonValue;

/// A review.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Review {
    /// Id.
    pub id: Uuid,
    /// The product.
    pub product_id: Uuid,
    /// Stars, 1–5.
    pub rating: i16,
    /// Headline.
    pub title: String,
    /// Text.
    pub body: String,
    /// Photo media ids.
    pub photos: Vec<Uuid>,
    /// Author as shown ("Jane D."), null when anonymised.
    pub author_name: Option<String>,
    /// Whether the author bought the product: a paid order of theirs contains it, neither
    /// cancelled nor refunded in full (order-payment's answer when the review was written,
    /// re-checked after the author's payments and refunds; false while it could not be asked).
    pub verified_purchase: bool,
    /// "Helpful" votes.
    pub helpful_count: i64,
    /// Moderation state.
    #[schema(value_type = String, example = "APPROVED")]
    pub status: ReviewStatus,
    /// Why it was rejected or approved (shown to its author and admins only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moderation_reason: Option<String>,
    /// Written.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct ReviewRow {
    id: Uuid,
    product_id: Uuid,
    user_id: Option<Uuid>,
    rating: i16,
    title: String,
    body: String,
    photos: Vec<Uuid>,
    author_name: Option<String>,
    verified_purchase: bool,
    helpful_count: i64,
    status: String,
    moderation_reason: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

fn status_of(value: &str) -> ReviewStatus {
    match value {
        "APPROVED" => ReviewStatus::Approved,
        "REJECTED" => ReviewStatus::Rejected,
        _ => ReviewStatus::Pending,
    }
}

impl ReviewRow {
    fn into_review(self, with_moderation: bool) -> Review {
        Review {
            id: self.id,
            product_id: self.product_id,
            rating: self.rating,
            title: self.title,
            body: self.body,
            photos: self.photos,
            author_name: self.author_name,
            verified_purchase: self.verified_purchase,
            helpful_count: self.helpful_count,
            status: status_of(&self.status),
            moderation_reason: self.moderation_reason.filter(|_| with_moderation),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

const COLUMNS: &str = "id, product_id, user_id, rating, title, body, photos, author_name, \
     verified_purchase, (SELECT count(*) FROM review_votes v WHERE v.review_id = reviews.id) \
     AS helpful_count, status, moderation_reason, created_at, updated_at";

/// What a customer writes (also what a merge patch applies to).
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReviewInput {
    /// Stars, 1–5.
    #[validate(range(min = 1, max = 5, message = "must be between 1 and 5"))]
    #[schema(minimum = 1, maximum = 5)]
    pub rating: i16,
    /// Headline, 1–150 characters.
    #[validate(length(min = 1, max = 150, message = "must be 1–150 characters"))]
    #[schema(min_length = 1, max_length = 150)]
    pub title: String,
    /// Text, 1–5000 characters.
    #[validate(length(min = 1, max = 5000, message = "must be 1–5000 characters"))]
    #[schema(min_length = 1, max_length = 5000)]
    pub body: String,
    /// Up to 6 photo media ids.
    #[serde(default)]
    #[validate(length(max = 6, message = "must list at most 6 photos"))]
    #[schema(max_items = 6)]
    pub photos: Vec<Uuid>,
}

async fn load(conn: &mut PgConnection, id: Uuid) -> CustomerResult<ReviewRow> {
    let row: Option<ReviewRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM reviews WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.ok_or(CustomerError::NotFound("review"))
}

/// The caller's review of `id`, or 404 (also when it is someone else's).
async fn own(conn: &mut PgConnection, id: Uuid, caller: &Caller) -> CustomerResult<ReviewRow> {
    let row = load(conn, id).await?;
    if row.user_id == Some(caller.user_id) {
        Ok(row)
    } else {
        Err(CustomerError::NotFound("review"))
    }
}

/// Writes a review of a product (one per customer per product; waits for moderation).
#[utoipa::path(
    post,
    path = "/v1/products/{productId}/reviews",
    tag = "reviews",
    params(("productId" = Uuid, Path, description = "The product")),
    request_body = ReviewInput,
    responses(
        (status = 201, description = "Written, pending moderation", body = Review),
        (status = 409, description = "Already reviewed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(product_id): Path<Uuid>,
    ValidatedJson(input): ValidatedJson<ReviewInput>,
) -> CustomerResult<(StatusCode, Json<Review>)> {
    // Asked before the transaction opens (no row is locked while order-payment answers). When it
    // cannot answer, the review is written unverified and due for a re-check: see [`purchases`].
    let check = state.purchases.purchase(caller.user_id, product_id).await;
    let (verified, checked, due_in) = match check {
        Ok(purchase) => (
            purchase.verified(),
            true,
            purchase.recheck_in().map(|wait| wait.as_secs_f64()),
        ),
        Err(error) => {
            tracing::warn!(%error, "purchase check failed; the review is written unverified");
            let wait = purchases::backoff(state.settings.review_verify_interval, 1);
            (false, false, Some(wait.as_secs_f64()))
        }
    };
    let mut tx = state.db.begin().await?;
    crate::profiles::ensure(&mut tx, caller.user_id).await?;
    let author: Option<String> = sqlx::query_scalar(
        "SELECT nullif(trim(first_name || ' ' || coalesce(left(nullif(last_name, ''), 1) || '.', '')), '') \
         FROM profiles WHERE user_id = $1",
    )
    .bind(caller.user_id)
    .fetch_one(&mut *tx)
    .await?;
    let row: ReviewRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO reviews (id, product_id, user_id, author_name, rating, title, body, photos, \
         verified_purchase, purchase_checked_at, verify_due_at, verify_attempts) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, CASE WHEN $10 THEN now() END, \
         now() + make_interval(secs => $11), CASE WHEN $11 IS NULL OR $10 THEN 0 ELSE 1 END) \
         RETURNING {COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(product_id)
    .bind(caller.user_id)
    .bind(author)
    .bind(input.rating)
    .bind(input.title.trim())
    .bind(input.body.trim())
    .bind(&input.photos)
    .bind(verified)
    .bind(checked)
    .bind(due_in)
    .fetch_one(&mut *tx)
    .await?;
    event_bus::outbox::publish(
        &mut tx,
        &crate::event(ReviewCreated {
            review_id: row.id,
            product_id,
            user_id: caller.user_id,
            rating: u8::try_from(row.rating).unwrap_or(0),
            title: Some(row.title.clone()),
            status: ReviewStatus::Pending,
            verified_purchase: row.verified_purchase,
            created_at: row.created_at,
        }),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(row.into_review(true))))
}

/// Changes the caller's review (merge patch); it goes back to `PENDING`.
#[utoipa::path(
    patch,
    path = "/v1/reviews/{id}",
    tag = "reviews",
    params(("id" = Uuid, Path, description = "Review id")),
    request_body(content = ReviewInput, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "Changed, pending moderation again", body = Review),
        (status = 404, description = "No such review of yours", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    ValidatedJson(patch): ValidatedJson<JsonValue>,
) -> CustomerResult<Json<Review>> {
    let mut tx = state.db.begin().await?;
    let current = own(&mut tx, id, &caller).await?;
    let document = serde_json::to_value(ReviewInput {
        rating: current.rating,
        title: current.title,
        body: current.body,
        photos: current.photos,
    })
    .map_err(anyhow::Error::from)?;
    let input: ReviewInput = crate::patched(document, &patch.0)?;
    let row: ReviewRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE reviews SET rating = $2, title = $3, body = $4, photos = $5, status = 'PENDING', \
         moderation_reason = NULL, moderated_by = NULL, moderated_at = NULL \
         WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(input.rating)
    .bind(input.title.trim())
    .bind(input.body.trim())
    .bind(&input.photos)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Json(row.into_review(true)))
}

/// Deletes a review (its author, or an administrator).
#[utoipa::path(
    delete,
    path = "/v1/reviews/{id}",
    tag = "reviews",
    params(("id" = Uuid, Path, description = "Review id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such review of yours", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> CustomerResult<StatusCode> {
    let mut tx = state.db.begin().await?;
    let deleted: ReviewRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "DELETE FROM reviews WHERE id = $1 AND (user_id = $2 OR $3) RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(caller.user_id)
    .bind(caller.role.is_admin())
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(CustomerError::NotFound("review"))?;
    // An administrator taking down someone's review is moderation; a customer deleting their own
    // is not an act of staff.
    if deleted.user_id != Some(caller.user_id) {
        audit::Entry::new(&caller, "review", id, "delete")
            .before(&Moderated::from(&deleted))
            .record(&mut tx)
            .await?;
    }
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sort order of the public list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
pub enum ReviewSort {
    /// Newest first (default).
    #[default]
    #[serde(rename = "-createdAt")]
    Newest,
    /// Highest rating first, newest first among equals.
    #[serde(rename = "-rating")]
    Rating,
}

/// Query of the public list.
#[derive(Debug, Clone, Default, Deserialize, Validate, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReviewListParams {
    /// `-createdAt` (default) or `-rating`.
    #[param(value_type = Option<String>, pattern = "^-(createdAt|rating)$")]
    pub sort: Option<ReviewSort>,
    /// Opaque cursor.
    pub cursor: Option<String>,
    /// 1–100 (default 20).
    #[validate(range(min = 1, max = 100, message = "must be between 1 and 100"))]
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

/// Keyset position: (rating, id) for `-rating`, (created_at, id) for `-createdAt`.
#[derive(Debug, Serialize, Deserialize)]
struct ReviewCursor {
    r: Option<i16>,
    t: Option<DateTime<Utc>>,
    id: Uuid,
}

/// A product's approved reviews (cursor pages).
#[utoipa::path(
    get,
    path = "/v1/products/{productId}/reviews",
    tag = "reviews",
    params(("productId" = Uuid, Path, description = "The product"), ReviewListParams),
    responses(
        (status = 200, description = "A page of approved reviews", body = CursorPage<Review>),
        (status = 422, description = "Unknown sort, bad cursor or limit", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn public_list(
    State(state): State<AppState>,
    Path(product_id): Path<Uuid>,
    ValidatedQuery(params): ValidatedQuery<ReviewListParams>,
) -> CustomerResult<Json<CursorPage<Review>>> {
    let sort = params.sort.unwrap_or_default();
    let limit = params.limit.unwrap_or(20);
    let after: Option<ReviewCursor> = service_kit::CursorParams {
        cursor: params.cursor.clone(),
        limit: params.limit,
    }
    .decode()?;
    let rows: Vec<ReviewRow> = match sort {
        ReviewSort::Newest => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM reviews WHERE product_id = $1 AND status = 'APPROVED' \
                 AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3)) \
                 ORDER BY created_at DESC, id DESC LIMIT $4"
            )))
            .bind(product_id)
            .bind(after.as_ref().and_then(|c| c.t))
            .bind(after.as_ref().map(|c| c.id))
            .bind(i64::from(limit) + 1)
            .fetch_all(&state.db)
            .await?
        }
        ReviewSort::Rating => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM reviews WHERE product_id = $1 AND status = 'APPROVED' \
                 AND ($2::smallint IS NULL OR (rating, id) < ($2, $3)) \
                 ORDER BY rating DESC, id DESC LIMIT $4"
            )))
            .bind(product_id)
            .bind(after.as_ref().and_then(|c| c.r))
            .bind(after.as_ref().map(|c| c.id))
            .bind(i64::from(limit) + 1)
            .fetch_all(&state.db)
            .await?
        }
    };
    let reviews: Vec<Review> = rows.into_iter().map(|r| r.into_review(false)).collect();
    Ok(Json(CursorPage::from_rows(
        reviews,
        limit,
        |r| match sort {
            ReviewSort::Newest => ReviewCursor {
                r: None,
                t: Some(r.created_at),
                id: r.id,
            },
            ReviewSort::Rating => ReviewCursor {
                r: Some(r.rating),
                t: None,
                id: r.id,
            },
        },
    )))
}

/// A product's rating over its approved reviews.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rating {
    /// Mean stars to two decimals (null without reviews).
    pub average: Option<f64>,
    /// Approved reviews.
    pub count: i64,
    /// Reviews with 1, 2, 3, 4 and 5 stars.
    pub histogram: [i64; 5],
}

/// A product's rating aggregate.
#[utoipa::path(
    get,
    path = "/v1/products/{productId}/rating",
    tag = "reviews",
    params(("productId" = Uuid, Path, description = "The product")),
    responses((status = 200, description = "The aggregate", body = Rating))
)]
async fn rating(
    State(state): State<AppState>,
    Path(product_id): Path<Uuid>,
) -> CustomerResult<Json<Rating>> {
    let counts: Vec<(i16, i64)> = sqlx::query_as(
        "SELECT rating, count(*) FROM reviews WHERE product_id = $1 AND status = 'APPROVED' \
         GROUP BY rating",
    )
    .bind(product_id)
    .fetch_all(&state.db)
    .await?;
    let mut histogram = [0i64; 5];
    for (stars, count) in counts {
        if let Some(slot) = usize::try_from(stars - 1)
            .ok()
            .and_then(|i| histogram.get_mut(i))
        {
            *slot = count;
        }
    }
    let count: i64 = histogram.iter().sum();
    let stars: i64 = histogram
        .iter()
        .zip(1i64..)
        .map(|(count, stars)| count * stars)
        .sum();
    #[allow(clippy::cast_precision_loss)]
    let average = (count > 0).then(|| ((stars as f64 / count as f64) * 100.0).round() / 100.0);
    Ok(Json(Rating {
        average,
        count,
        histogram,
    }))
}

/// Query of the moderation queue.
#[derive(Debug, Clone, Default, Deserialize, Validate, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct QueueParams {
    /// `PENDING` (default), `APPROVED` or `REJECTED`.
    #[param(value_type = Option<String>, pattern = "^(PENDING|APPROVED|REJECTED)$")]
    pub status: Option<ReviewStatus>,
    /// Page from 1.
    #[validate(range(min = 1, max = 100000, message = "must be at least 1"))]
    #[param(minimum = 1, maximum = 100000)]
    pub page: Option<u32>,
    /// Rows a page, 1–100.
    #[validate(range(min = 1, max = 100, message = "must be between 1 and 100"))]
    #[param(minimum = 1, maximum = 100)]
    pub page_size: Option<u32>,
}

fn status_db(status: ReviewStatus) -> &'static str {
    match status {
        ReviewStatus::Pending => "PENDING",
        ReviewStatus::Approved => "APPROVED",
        ReviewStatus::Rejected => "REJECTED",
    }
}

/// The moderation queue, oldest first (ADMIN).
#[utoipa::path(
    get,
    path = "/v1/admin/reviews",
    tag = "reviews",
    params(QueueParams),
    responses(
        (status = 200, description = "A page of reviews", body = OffsetPage<Review>),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn queue(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ValidatedQuery(params): ValidatedQuery<QueueParams>,
) -> CustomerResult<Json<OffsetPage<Review>>> {
    let paging = PageParams {
        page: params.page,
        page_size: params.page_size,
    };
    let status = status_db(params.status.unwrap_or(ReviewStatus::Pending));
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM reviews WHERE status = $1")
        .bind(status)
        .fetch_one(&state.db)
        .await?;
    let rows: Vec<ReviewRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM reviews WHERE status = $1 ORDER BY created_at, id LIMIT $2 OFFSET $3"
    )))
    .bind(status)
    .bind(i64::from(paging.page_size()))
    .bind(paging.offset())
    .fetch_all(&state.db)
    .await?;
    Ok(Json(OffsetPage {
        data: rows.into_iter().map(|r| r.into_review(true)).collect(),
        page: paging.page(),
        page_size: paging.page_size(),
        total,
    }))
}

/// A moderation decision.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Moderation {
    /// `APPROVED` or `REJECTED` (a rejection needs a `reason`).
    #[schema(value_type = String, pattern = "^(APPROVED|REJECTED)$")]
    pub status: ReviewStatus,
    /// Why (required when rejecting), up to 500 characters.
    #[serde(default)]
    #[validate(length(min = 1, max = 500, message = "must be 1–500 characters"))]
    #[schema(min_length = 1, max_length = 500)]
    pub reason: Option<String>,
}

/// Approves or rejects a review (ADMIN).
#[utoipa::path(
    post,
    path = "/v1/admin/reviews/{id}/moderation",
    tag = "reviews",
    params(("id" = Uuid, Path, description = "Review id")),
    request_body = Moderation,
    responses(
        (status = 200, description = "Moderated", body = Review),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such review", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid decision", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn moderate(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<Uuid>,
    ValidatedJson(input): ValidatedJson<Moderation>,
) -> CustomerResult<Json<Review>> {
    match (input.status, &input.reason) {
        (ReviewStatus::Pending, _) => {
            return Err(CustomerError::field(
                "status",
                "must be APPROVED or REJECTED",
            ));
        }
        (ReviewStatus::Rejected, None) => {
            return Err(CustomerError::field("reason", "is required when rejecting"));
        }
        _ => {}
    }
    let mut tx = state.db.begin().await?;
    let before: ReviewRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM reviews WHERE id = $1 FOR UPDATE"
    )))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(CustomerError::NotFound("review"))?;
    let after: ReviewRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE reviews SET status = $2, moderation_reason = $3, moderated_by = $4, \
         moderated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(status_db(input.status))
    .bind(input.reason.as_deref().map(str::trim))
    .bind(admin.user_id)
    .fetch_one(&mut *tx)
    .await?;
    let action = format!("moderation.{}", after.status.to_ascii_lowercase());
    audit::Entry::new(&admin, "review", id, &action)
        .before(&Moderated::from(&before))
        .after(&Moderated::from(&after))
        .record(&mut tx)
        .await?;
    tx.commit().await?;
    Ok(Json(after.into_review(true)))
}

/// What the audit trail keeps of a moderation: the decision, never the review's text, its author
/// or the reason given (redacted by name: it may quote the customer).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Moderated<'a> {
    product_id: Uuid,
    rating: i16,
    status: &'a str,
    moderation_reason: Option<&'a str>,
}

impl<'a> From<&'a ReviewRow> for Moderated<'a> {
    fn from(row: &'a ReviewRow) -> Self {
        Self {
            product_id: row.product_id,
            rating: row.rating,
            status: &row.status,
            moderation_reason: row.moderation_reason.as_deref(),
        }
    }
}

/// Votes on a review.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Votes {
    /// "Helpful" votes now.
    pub helpful_count: i64,
}

/// Marks an approved review helpful (one vote per user; voting again changes nothing).
#[utoipa::path(
    post,
    path = "/v1/reviews/{id}/helpful",
    tag = "reviews",
    params(("id" = Uuid, Path, description = "Review id")),
    responses(
        (status = 200, description = "Counted", body = Votes),
        (status = 404, description = "No such approved review", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Your own review", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn vote(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> CustomerResult<Json<Votes>> {
    let mut tx = state.db.begin().await?;
    let row = load(&mut tx, id).await?;
    if row.status != "APPROVED" {
        return Err(CustomerError::NotFound("review"));
    }
    if row.user_id == Some(caller.user_id) {
        return Err(CustomerError::field(
            "id",
            "you cannot vote for your own review",
        ));
    }
    sqlx::query(
        "INSERT INTO review_votes (review_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(caller.user_id)
    .execute(&mut *tx)
    .await?;
    let helpful_count = load(&mut tx, id).await?.helpful_count;
    tx.commit().await?;
    Ok(Json(Votes { helpful_count }))
}

/// Withdraws the caller's vote (idempotent).
#[utoipa::path(
    delete,
    path = "/v1/reviews/{id}/helpful",
    tag = "reviews",
    params(("id" = Uuid, Path, description = "Review id")),
    responses((status = 204, description = "No vote of yours any more"))
)]
async fn unvote(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> CustomerResult<StatusCode> {
    sqlx::query("DELETE FROM review_votes WHERE review_id = $1 AND user_id = $2")
        .bind(id)
        .bind(caller.user_id)
        .execute(&state.db)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(public_list, create))
        .routes(routes!(rating))
        .routes(routes!(update, remove))
        .routes(routes!(queue))
        .routes(routes!(moderate))
        .routes(routes!(vote, unvote))
}
