//! GDPR: the caller's data as one JSON document, and erasure on `user.erasure_requested`.
//!
//! Erasure deletes the profile (and with it the addresses) and the wishlist; reviews and
//! tickets stay (product ratings and the support history are the business's records) but lose
//! every link to the person: author id and name cleared, the customer's ticket subjects and
//! messages replaced by `[erased]`. The loyalty ledger is append-only and kept for accounting: the
//! account moves to a random pseudonymous id (cascading to its rows), so nothing links it back.
//! Published outbox rows that name the user are deleted too. See `docs/gdpr.md`.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use service_kit::event_bus::HandlerError;
use service_kit::shared_types::DomainEvent;
use service_kit::shared_types::auth::UserErasureRequested;
use service_kit::{Caller, Problem};
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::error::CustomerResult;

/// Text that replaces an erased customer's writing.
pub const ERASED: &str = "[erased]";

/// Everything this service holds about the caller.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Export {
    /// When the export was made.
    pub exported_at: chrono::DateTime<chrono::Utc>,
    /// The profile.
    pub profile: Option<crate::profiles::Profile>,
    /// Addresses.
    pub addresses: Vec<crate::addresses::Address>,
    /// Wishlist product ids, newest first.
    pub wishlist: Vec<Uuid>,
    /// Reviews written (any status).
    #[schema(value_type = Vec<Object>)]
    pub reviews: Vec<serde_json::Value>,
    /// Tickets with their threads (internal staff notes excluded).
    #[schema(value_type = Vec<Object>)]
    pub tickets: Vec<serde_json::Value>,
    /// The loyalty account and its whole ledger.
    #[schema(value_type = Object)]
    pub loyalty: serde_json::Value,
}

/// Everything this service holds about the caller, as JSON.
#[utoipa::path(
    get,
    path = "/v1/profile/export",
    tag = "profile",
    responses(
        (status = 200, description = "The caller's data", body = Export),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn export(State(state): State<AppState>, caller: Caller) -> CustomerResult<Json<Export>> {
    let mut tx = state.db.begin().await?;
    let user = caller.user_id;
    let profile = crate::profiles::load(&mut tx, user).await?;
    let addresses = crate::addresses::list_for(&mut tx, user).await?;
    let wishlist: Vec<Uuid> = sqlx::query_scalar(
        "SELECT product_id FROM wishlist_items WHERE user_id = $1 ORDER BY created_at DESC",
    )
    .bind(user)
    .fetch_all(&mut *tx)
    .await?;
    let reviews: Vec<serde_json::Value> = sqlx::query_scalar(
        "SELECT jsonb_build_object('id', id, 'productId', product_id, 'rating', rating, \
           'title', title, 'body', body, 'photos', photos, 'status', status, \
           'moderationReason', moderation_reason, 'createdAt', created_at, 'updatedAt', updated_at) \
         FROM reviews WHERE user_id = $1 ORDER BY created_at",
    )
    .bind(user)
    .fetch_all(&mut *tx)
    .await?;
    let tickets: Vec<serde_json::Value> = sqlx::query_scalar(
        "SELECT jsonb_build_object('id', t.id, 'reference', t.reference, 'subject', t.subject, \
           'category', t.category, 'status', t.status, 'orderId', t.order_id, \
           'bookingId', t.booking_id, 'createdAt', t.created_at, \
           'messages', coalesce((SELECT jsonb_agg(jsonb_build_object('authorRole', m.author_role, \
               'body', m.body, 'createdAt', m.created_at) ORDER BY m.created_at, m.id) \
             FROM ticket_messages m WHERE m.ticket_id = t.id AND NOT m.internal), '[]'::jsonb)) \
         FROM tickets t WHERE t.user_id = $1 ORDER BY t.created_at",
    )
    .bind(user)
    .fetch_all(&mut *tx)
    .await?;
    let ledger: serde_json::Value = sqlx::query_scalar(
        "SELECT coalesce(jsonb_agg(jsonb_build_object('id', id, 'kind', kind, 'points', points, \
           'balanceAfter', balance_after, 'orderId', order_id, 'paymentId', payment_id, \
           'refundId', refund_id, 'reason', reason, 'createdAt', created_at) \
           ORDER BY created_at, id), '[]'::jsonb) \
         FROM loyalty_transactions WHERE user_id = $1",
    )
    .bind(user)
    .fetch_one(&mut *tx)
    .await?;
    let balance: Option<i64> =
        sqlx::query_scalar("SELECT balance FROM loyalty_accounts WHERE user_id = $1")
            .bind(user)
            .fetch_optional(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok(Json(Export {
        exported_at: chrono::Utc::now(),
        profile,
        addresses,
        wishlist,
        reviews,
        tickets,
        loyalty: serde_json::json!({ "balance": balance.unwrap_or(0), "transactions": ledger }),
    }))
}

/// `user.erasure_requested`: deletes or anonymises everything this service holds about the user.
pub async fn on_erasure_requested(
    event: DomainEvent<UserErasureRequested>,
    conn: &mut PgConnection,
) -> Result<(), HandlerError> {
    erase(conn, event.payload.user_id).await?;
    Ok(())
}

/// The erasure itself (idempotent).
pub async fn erase(conn: &mut PgConnection, user: Uuid) -> sqlx::Result<()> {
    // Profile (addresses cascade), wishlist and helpful votes: deleted.
    sqlx::query!("DELETE FROM profiles WHERE user_id = $1", user)
        .execute(&mut *conn)
        .await?;
    sqlx::query!("DELETE FROM wishlist_items WHERE user_id = $1", user)
        .execute(&mut *conn)
        .await?;
    sqlx::query!("DELETE FROM review_votes WHERE user_id = $1", user)
        .execute(&mut *conn)
        .await?;
    // Reviews: kept for the product's rating, detached from the person.
    sqlx::query!(
        "UPDATE reviews SET user_id = NULL, author_name = NULL WHERE user_id = $1",
        user
    )
    .execute(&mut *conn)
    .await?;
    // Tickets: kept as support history; the customer's own words are erased.
    sqlx::query!(
        "UPDATE ticket_messages SET body = $2, author_id = NULL \
         WHERE author_role = 'CUSTOMER' AND (author_id = $1 \
           OR ticket_id IN (SELECT id FROM tickets WHERE user_id = $1))",
        user,
        ERASED
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE tickets SET user_id = NULL, subject = $2 WHERE user_id = $1",
        user,
        ERASED
    )
    .execute(&mut *conn)
    .await?;
    // Loyalty: pseudonymised (a random id; the ledger rows follow by ON UPDATE CASCADE).
    sqlx::query!(
        "UPDATE loyalty_accounts SET user_id = $2 WHERE user_id = $1",
        user,
        Uuid::new_v4()
    )
    .execute(&mut *conn)
    .await?;
    // Events already delivered that name the user.
    sqlx::query!(
        "DELETE FROM outbox WHERE published_at IS NOT NULL AND envelope::text LIKE '%' || $1 || '%'",
        user.to_string()
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(export))
}
