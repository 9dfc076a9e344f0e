//! The job that cancels unpaid orders whose reservation expired, plus housekeeping (lapsed
//! guest carts, idempotency records past 24 h).
//!
//! Replica-safe: each run claims a batch of due orders with `FOR UPDATE SKIP LOCKED`, so two
//! replicas never take the same order, and cancels each in that transaction (status, history,
//! coupon use returned, `order.cancelled` in the outbox; product releases the stock when it
//! consumes the event). A payment confirming the same order takes the same row lock, so an order
//! is either paid or cancelled, never both; a payment landing after the cancellation is part B's
//! to refund.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{Actor, ORDER_COLUMNS, OrderRow, lifecycle};
use crate::error::OrderResult;

/// Orders cancelled per transaction.
const BATCH: i64 = 100;

/// The reason recorded on an expired order.
pub const EXPIRY_REASON: &str = "payment not received before the reservation expired";

/// Cancels every PENDING, UNPAID order whose reservation expired by `now`; returns how many.
pub async fn cancel_expired(db: &PgPool, now: DateTime<Utc>) -> OrderResult<usize> {
    let mut cancelled = 0;
    loop {
        let mut tx = db.begin().await?;
        let due = sqlx::query_as::<_, OrderRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {ORDER_COLUMNS} FROM orders
             WHERE status = 'PENDING' AND payment_status = 'UNPAID' AND reservation_expires_at <= $1
             ORDER BY reservation_expires_at
             LIMIT $2
             FOR UPDATE SKIP LOCKED"
        )))
        .bind(now)
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        let fetched = due.len();
        let ids: Vec<Uuid> = due.iter().map(|o| o.id).collect();
        for order in due {
            lifecycle::cancel(&mut tx, order, Actor::System, Some(EXPIRY_REASON)).await?;
        }
        tx.commit().await?;
        if !ids.is_empty() {
            tracing::info!(
                count = ids.len(),
                "cancelled unpaid orders whose reservation expired"
            );
        }
        cancelled += fetched;
        if fetched < BATCH as usize {
            return Ok(cancelled);
        }
    }
}

/// Runs [`cancel_expired`] and the housekeeping every `interval` until `token` is cancelled.
pub async fn run(db: PgPool, interval: Duration, token: CancellationToken) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            _ = ticker.tick() => {}
        }
        if let Err(error) = cancel_expired(&db, Utc::now()).await {
            tracing::warn!(%error, "cancelling expired orders failed; retrying next tick");
        }
        if let Err(error) = crate::cart::purge_expired(&db).await {
            tracing::warn!(%error, "purging lapsed guest carts failed");
        }
        if let Err(error) = crate::idempotency::purge_expired(&db).await {
            tracing::warn!(%error, "purging old idempotency records failed");
        }
    }
}
