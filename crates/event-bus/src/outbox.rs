//! The transactional outbox: events are rows written in the same transaction as the state change.

use serde::Serialize;
use shared_types::DomainEvent;
use sqlx::{PgConnection, types::Json};

use crate::trace::current_traceparent;

/// The Postgres `NOTIFY` channel that wakes the relay when an outbox row is committed.
pub const NOTIFY_CHANNEL: &str = "lomash_outbox";

/// Why an event could not be written to the outbox.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// The event could not be serialized.
    #[error("event could not be serialized: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The insert failed.
    #[error("outbox insert failed: {0}")]
    Database(#[from] sqlx::Error),
}

/// Writes `event` to the `outbox` table through `conn` — pass the open transaction of the state
/// change (`&mut tx`), so the event exists if and only if the change commits. The [`Relay`]
/// publishes it after the commit (it is woken by `NOTIFY`, which Postgres delivers only on
/// commit).
///
/// When the event carries no `traceparent`, the current span's trace context is filled in.
///
/// # Errors
/// [`OutboxError`] when the event does not serialize or the insert fails (e.g. a reused event id).
///
/// [`Relay`]: crate::Relay
pub async fn publish<T: Serialize>(
    conn: &mut PgConnection,
    event: &DomainEvent<T>,
) -> Result<(), OutboxError> {
    let mut envelope = serde_json::to_value(event)?;
    if event.traceparent.is_none()
        && let (Some(traceparent), Some(fields)) = (current_traceparent(), envelope.as_object_mut())
    {
        fields.insert("traceparent".to_owned(), traceparent.into());
    }
    sqlx::query(
        "WITH wake AS (SELECT pg_notify($4, '')) \
         INSERT INTO outbox (event_id, topic, envelope) \
         SELECT $1::uuid, $2::text, $3::jsonb FROM wake",
    )
    .bind(event.id)
    .bind(&event.topic)
    .bind(Json(&envelope))
    .bind(NOTIFY_CHANNEL)
    .execute(conn)
    .await?;
    Ok(())
}
