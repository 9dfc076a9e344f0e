//! What other services ask order-payment (`/internal`, service tokens only; the gateway never
//! routes these paths).
//!
//! `GET /internal/purchases?userId=&productId=` answers whether a customer bought a product, for
//! customer-service's "verified purchase" badge on reviews. A purchase is an order of that
//! customer containing the product whose money was taken and kept:
//! - its status is `CONFIRMED`, `PROCESSING`, `SHIPPED` or `DELIVERED` — the lifecycle reaches
//!   `CONFIRMED` only through a successful payment, so `PENDING` (unpaid) never counts, and
//!   `CANCELLED` never does (a cancelled paid order is refunded in full);
//! - its payment status is `PAID` or `PARTIALLY_REFUNDED` — a full refund (e.g. a delivered order
//!   sent back) takes the purchase away; a partial one (a damaged door, a goodwill credit) does
//!   not, since a refund does not name the lines it covers.
//!
//! Delivery is reported (`delivered`) but not required: the badge says the reviewer paid for the
//! product, and delivery emits no event the reviews could be re-checked on.
//!
//! The query starts from the customer's orders (`orders_user_recent_idx`) and probes each one's
//! lines through the `(order_id, position)` unique index, so its cost follows the size of one
//! customer's order history, not the product's popularity.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use service_kit::{Problem, ServiceCaller, ValidatedQuery};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use validator::Validate;

use crate::AppState;
use crate::error::OrderResult;

/// Whose purchase of what.
#[derive(Debug, Clone, Deserialize, Validate, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct PurchaseQuery {
    /// The customer.
    pub user_id: Uuid,
    /// The product.
    pub product_id: Uuid,
}

/// Whether a customer bought a product (see the module documentation for what counts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Purchase {
    /// The customer asked about.
    pub user_id: Uuid,
    /// The product asked about.
    pub product_id: Uuid,
    /// Whether a paid, not cancelled, not fully refunded order of theirs contains the product.
    pub purchased: bool,
    /// When the earliest such order was paid (null when none).
    pub first_paid_at: Option<DateTime<Utc>>,
    /// Whether one of those orders has been delivered.
    pub delivered: bool,
    /// How many such orders there are.
    pub orders: i64,
}

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(purchase))
}

/// Whether a customer bought a product (services only).
#[utoipa::path(
    get,
    path = "/internal/purchases",
    tag = "internal",
    params(PurchaseQuery),
    responses(
        (status = 200, description = "The answer (an unknown product or customer is simply not purchased)", body = Purchase),
        (status = 401, description = "No valid internal token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a service", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A missing or malformed id", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn purchase(
    State(state): State<AppState>,
    _service: ServiceCaller,
    ValidatedQuery(query): ValidatedQuery<PurchaseQuery>,
) -> OrderResult<Json<Purchase>> {
    let row = sqlx::query!(
        r#"SELECT count(*) AS "orders!", min(o.paid_at) AS first_paid_at,
                  coalesce(bool_or(o.status = 'DELIVERED'), false) AS "delivered!"
           FROM orders o
           WHERE o.user_id = $1
             AND o.status IN ('CONFIRMED', 'PROCESSING', 'SHIPPED', 'DELIVERED')
             AND o.payment_status IN ('PAID', 'PARTIALLY_REFUNDED')
             AND EXISTS (SELECT 1 FROM order_items i
                         WHERE i.order_id = o.id AND i.product_id = $2)"#,
        query.user_id,
        query.product_id
    )
    .fetch_one(&state.db)
    .await?;
    Ok(Json(Purchase {
        user_id: query.user_id,
        product_id: query.product_id,
        purchased: row.orders > 0,
        first_paid_at: row.first_paid_at,
        delivered: row.delivered,
        orders: row.orders,
    }))
}
