//! `user.erasure_requested`: erase a customer's personal data from their orders while keeping
//! the financial record (numbers, amounts, VAT, items, dates) that accounting must retain.
//!
//! Contact email is removed; both addresses keep only their country (needed for VAT records)
//! with every other field replaced by `[erased]`; the user's carts and their stored idempotent
//! responses (which echo addresses) are deleted. The user id stays on the orders as an opaque
//! key: it no longer resolves to a person once auth has erased the account. Idempotent: the
//! event id is recorded by the consumer in the same transaction, and erasing twice changes
//! nothing more.

use service_kit::event_bus::HandlerError;
use service_kit::shared_types::DomainEvent;
use service_kit::shared_types::auth::UserErasureRequested;
use sqlx::PgConnection;

/// The placeholder written over erased fields.
pub const ERASED: &str = "[erased]";

/// Erases the personal data of `event`'s user from this service.
pub async fn on_erasure_requested(
    event: DomainEvent<UserErasureRequested>,
    conn: &mut PgConnection,
) -> Result<(), HandlerError> {
    let user = event.payload.user_id;
    erase(conn, user).await.map_err(HandlerError::retry)
}

/// Erases `user`'s personal data (see the module doc).
pub async fn erase(conn: &mut PgConnection, user: uuid::Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE orders SET customer_email = NULL,
             shipping_address = jsonb_build_object('fullName', $2::text, 'line1', $2::text,
                 'city', $2::text, 'postcode', $2::text, 'country', shipping_address -> 'country'),
             billing_address = jsonb_build_object('fullName', $2::text, 'line1', $2::text,
                 'city', $2::text, 'postcode', $2::text, 'country', billing_address -> 'country'),
             erased_at = COALESCE(erased_at, now())
         WHERE user_id = $1",
        user,
        ERASED
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!("DELETE FROM carts WHERE user_id = $1", user)
        .execute(&mut *conn)
        .await?;
    sqlx::query!(
        "DELETE FROM idempotency_records WHERE caller = $1",
        format!("user:{user}")
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}
