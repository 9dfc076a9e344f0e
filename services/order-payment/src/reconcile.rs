//! The reconciliation job: a payment still `PENDING` (or `FAILED`, which a customer may still
//! retry on the same intent) an hour after it began is checked with Stripe, and what Stripe
//! says is applied exactly as a webhook would ([`payments::apply_intent`]), so a missed webhook
//! cannot strand an order.
//!
//! Replica-safe: a batch is claimed with `FOR UPDATE SKIP LOCKED` and stamped `checked_at` in a
//! short transaction, so other replicas skip it (now and for the next `after`); Stripe is asked
//! outside any transaction, and each answer is applied in its own transaction under the row
//! lock `apply_intent` takes. Payments older than 30 days are left alone (Stripe cancels
//! abandoned intents itself).

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::AppState;
use crate::error::OrderResult;
use crate::payments::{self, Applied};

/// Payments checked per batch.
const BATCH: i64 = 20;

/// Runs [`sweep`] every `every` until cancelled.
pub async fn run(state: AppState, after: Duration, every: Duration, token: CancellationToken) {
    loop {
        tokio::select! {
            () = token.cancelled() => break,
            () = tokio::time::sleep(every) => {}
        }
        match sweep(&state, after).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(checked = n, "payments reconciled with Stripe"),
            Err(error) => tracing::warn!(%error, "payment reconciliation failed; retrying later"),
        }
    }
}

/// Claims up to a batch of stale payments for this replica.
async fn claim(db: &PgPool, after: Duration) -> OrderResult<Vec<(Uuid, String)>> {
    let after_secs = i64::try_from(after.as_secs()).unwrap_or(i64::MAX);
    let rows: Vec<(Uuid, String)> = sqlx::query_as(
        "UPDATE payments SET checked_at = now()
         WHERE id IN (
             SELECT id FROM payments
             WHERE status IN ('PENDING', 'FAILED')
               AND created_at < now() - make_interval(secs => $1)
               AND created_at > now() - interval '30 days'
               AND (checked_at IS NULL OR checked_at < now() - make_interval(secs => $1))
             ORDER BY created_at
             LIMIT $2
             FOR UPDATE SKIP LOCKED)
         RETURNING id, payment_intent_id",
    )
    .bind(after_secs as f64)
    .bind(BATCH)
    .fetch_all(db)
    .await?;
    Ok(rows)
}

/// Checks every stale payment once; returns how many were checked.
pub async fn sweep(state: &AppState, after: Duration) -> OrderResult<usize> {
    let mut checked = 0;
    loop {
        let batch = claim(&state.db, after).await?;
        if batch.is_empty() {
            return Ok(checked);
        }
        for (payment_id, intent_id) in batch {
            checked += 1;
            let facts = match state.stripe.retrieve_intent(&intent_id).await {
                Ok(facts) => facts,
                Err(error) => {
                    // Checked again after `after`; one failure must not stop the batch.
                    tracing::warn!(%payment_id, %error, "could not ask Stripe about a payment");
                    continue;
                }
            };
            let mut tx = state.db.begin().await?;
            let applied = payments::apply_intent(&mut tx, &facts).await?;
            tx.commit().await?;
            match applied {
                Applied::Changed => {
                    tracing::warn!(%payment_id, intent = %intent_id, "a payment's webhook was missed; state taken from Stripe");
                }
                Applied::PaidTwice { payment_id } => {
                    crate::webhooks::refund_surplus(state.clone(), payment_id);
                }
                Applied::Stale | Applied::Unknown => {}
            }
        }
    }
}
