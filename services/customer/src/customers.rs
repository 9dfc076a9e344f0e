//! Administrators' view of customers: a searchable table and a 360° summary.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use service_kit::{AdminCaller, OffsetPage, PageParams, Problem, ValidatedQuery};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use validator::Validate;

use crate::AppState;
use crate::addresses::Address;
use crate::error::{CustomerError, CustomerResult};
use crate::loyalty::LoyaltyAccount;
use crate::profiles::Profile;

/// Search and paging.
#[derive(Debug, Clone, Default, Deserialize, Validate, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct CustomerQuery {
    /// Part of a name or email, or a postcode (any spacing).
    #[validate(length(min = 1, max = 100, message = "must be 1–100 characters"))]
    #[param(min_length = 1, max_length = 100)]
    pub q: Option<String>,
    /// Page from 1.
    #[validate(range(min = 1, max = 100000, message = "must be at least 1"))]
    #[param(minimum = 1, maximum = 100000)]
    pub page: Option<u32>,
    /// Rows a page, 1–100.
    #[validate(range(min = 1, max = 100, message = "must be between 1 and 100"))]
    #[param(minimum = 1, maximum = 100)]
    pub page_size: Option<u32>,
}

/// Customers, by last name (ADMIN).
#[utoipa::path(
    get,
    path = "/v1/customers",
    tag = "customers",
    params(CustomerQuery),
    responses(
        (status = 200, description = "A page of profiles", body = OffsetPage<Profile>),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ValidatedQuery(query): ValidatedQuery<CustomerQuery>,
) -> CustomerResult<Json<OffsetPage<Profile>>> {
    let paging = PageParams {
        page: query.page,
        page_size: query.page_size,
    };
    let term = query.q.as_deref().map(str::trim).unwrap_or_default();
    let like = format!(
        "%{}%",
        term.to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let postcode = validation::UkPostcode::parse(term).ok().map(String::from);
    let filter = "($1 = '' OR lower(p.first_name || ' ' || p.last_name) LIKE $2 \
         OR lower(p.email) LIKE $2 \
         OR EXISTS (SELECT 1 FROM addresses a WHERE a.user_id = p.user_id AND a.postcode = $3))";
    let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM profiles p WHERE {filter}"
    )))
    .bind(term)
    .bind(&like)
    .bind(&postcode)
    .fetch_one(&state.db)
    .await?;
    let ids: Vec<Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT p.user_id FROM profiles p WHERE {filter} \
         ORDER BY lower(p.last_name), lower(p.first_name), p.user_id LIMIT $4 OFFSET $5"
    )))
    .bind(term)
    .bind(&like)
    .bind(&postcode)
    .bind(i64::from(paging.page_size()))
    .bind(paging.offset())
    .fetch_all(&state.db)
    .await?;
    let mut conn = state.db.acquire().await?;
    let data = crate::profiles::load_many(&mut conn, &ids).await?;
    Ok(Json(OffsetPage {
        data,
        page: paging.page(),
        page_size: paging.page_size(),
        total,
    }))
}

/// A customer at a glance.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerSummary {
    /// Profile.
    pub profile: Profile,
    /// Addresses.
    pub addresses: Vec<Address>,
    /// Loyalty account.
    pub loyalty: LoyaltyAccount,
    /// Tickets not yet resolved or closed.
    pub open_tickets: i64,
    /// Reviews written.
    pub review_count: i64,
    /// Products on the wishlist.
    pub wishlist_count: i64,
}

/// One customer's 360° summary (ADMIN).
#[utoipa::path(
    get,
    path = "/v1/customers/{id}",
    tag = "customers",
    params(("id" = Uuid, Path, description = "The customer's user id")),
    responses(
        (status = 200, description = "The summary", body = CustomerSummary),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such customer", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn summary(
    State(state): State<AppState>,
    _admin: AdminCaller,
    Path(id): Path<Uuid>,
) -> CustomerResult<Json<CustomerSummary>> {
    let mut tx = state.db.begin().await?;
    let profile = crate::profiles::load(&mut tx, id)
        .await?
        .ok_or(CustomerError::NotFound("customer"))?;
    let addresses = crate::addresses::list_for(&mut tx, id).await?;
    let loyalty = crate::loyalty::account(&mut tx, id, state.settings.points_per_pound).await?;
    let (open_tickets, review_count, wishlist_count): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM tickets WHERE user_id = $1 \
                   AND status NOT IN ('RESOLVED', 'CLOSED')), \
                (SELECT count(*) FROM reviews WHERE user_id = $1), \
                (SELECT count(*) FROM wishlist_items WHERE user_id = $1)",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Json(CustomerSummary {
        profile,
        addresses,
        loyalty,
        open_tickets,
        review_count,
        wishlist_count,
    }))
}

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(summary))
}
