//! Events this service applies (each exactly once, in the consumer's transaction):
//! - `user.erasure_requested`: the user's bookings keep their time blocks and status but lose
//!   every personal detail (names, email, phone, address, notes, reasons; the postcode is cut
//!   to its district); their future active bookings are cancelled and the slots freed (no
//!   event: there is nobody left to tell); their brochure requests are deleted.
//! - `user.email_verified`: guest bookings made with that address become the user's (only a
//!   verified owner of the address gets them).

use event_bus::{Consumer, HandlerError};
use service_kit::Infra;
use shared_types::DomainEvent;
use shared_types::auth::{UserEmailVerified, UserErasureRequested};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::bookings::{self, Actor, BookingStatus, HistoryEntry};

/// The consumer of this service's queue.
pub fn consumer(infra: &Infra) -> anyhow::Result<Consumer> {
    Ok(infra
        .consumer()?
        .on::<UserErasureRequested, _>(|event, conn| Box::pin(erase(event, conn)))
        .on::<UserEmailVerified, _>(|event, conn| Box::pin(link_guest_bookings(event, conn))))
}

/// Applies `user.erasure_requested`.
pub async fn erase(
    event: DomainEvent<UserErasureRequested>,
    conn: &mut PgConnection,
) -> Result<(), HandlerError> {
    let user_id = event.payload.user_id;
    let cancelled = sqlx::query!(
        r#"SELECT id, slot_id, status FROM bookings
           WHERE user_id = $1 AND status IN ('PENDING', 'CONFIRMED') AND lower(during) > now()
           FOR UPDATE"#,
        user_id
    )
    .fetch_all(&mut *conn)
    .await?;
    for booking in &cancelled {
        sqlx::query!(
            "UPDATE bookings SET status = 'CANCELLED', cancelled_at = now(),
                                 cancel_reason = 'account erased'
             WHERE id = $1",
            booking.id
        )
        .execute(&mut *conn)
        .await?;
        bookings::release_slot(conn, booking.slot_id).await?;
        bookings::record(
            conn,
            booking.id,
            HistoryEntry {
                action: "CANCELLED",
                from: BookingStatus::parse(&booking.status),
                to: BookingStatus::Cancelled,
                actor: Actor::SYSTEM,
                reason: Some("account erased"),
                details: None,
            },
        )
        .await?;
    }
    let erased = sqlx::query!(
        r#"UPDATE bookings SET
               user_id = NULL, first_name = 'Erased', last_name = 'Customer',
               email = 'erased+' || id || '@invalid', phone = '', address = '',
               postcode = split_part(postcode, ' ', 1), notes = NULL,
               cancel_reason = CASE WHEN cancel_reason IS NULL THEN NULL ELSE 'erased' END,
               anonymised_at = now()
           WHERE user_id = $1
           RETURNING id, status"#,
        user_id
    )
    .fetch_all(&mut *conn)
    .await?;
    let ids: Vec<Uuid> = erased.iter().map(|b| b.id).collect();
    sqlx::query!(
        "UPDATE booking_history SET reason = NULL WHERE booking_id = ANY($1)",
        &ids
    )
    .execute(&mut *conn)
    .await?;
    for booking in &erased {
        let status = BookingStatus::parse(&booking.status).unwrap_or(BookingStatus::Cancelled);
        bookings::record(
            conn,
            booking.id,
            HistoryEntry {
                action: "ANONYMISED",
                from: Some(status),
                to: status,
                actor: Actor::SYSTEM,
                reason: None,
                details: None,
            },
        )
        .await?;
    }
    sqlx::query!("DELETE FROM brochure_requests WHERE user_id = $1", user_id)
        .execute(&mut *conn)
        .await?;
    tracing::info!(
        bookings = erased.len(),
        cancelled = cancelled.len(),
        "user's appointment data erased"
    );
    Ok(())
}

/// Applies `user.email_verified`.
pub async fn link_guest_bookings(
    event: DomainEvent<UserEmailVerified>,
    conn: &mut PgConnection,
) -> Result<(), HandlerError> {
    let linked = sqlx::query!(
        "UPDATE bookings SET user_id = $1
         WHERE user_id IS NULL AND anonymised_at IS NULL AND lower(email) = lower($2)
         RETURNING id, status",
        event.payload.user_id,
        event.payload.email
    )
    .fetch_all(&mut *conn)
    .await?;
    for booking in &linked {
        let status = BookingStatus::parse(&booking.status).unwrap_or(BookingStatus::Pending);
        bookings::record(
            conn,
            booking.id,
            HistoryEntry {
                action: "LINKED",
                from: Some(status),
                to: status,
                actor: Actor::SYSTEM,
                reason: None,
                details: Some(serde_json::json!({ "userId": event.payload.user_id })),
            },
        )
        .await?;
    }
    Ok(())
}
