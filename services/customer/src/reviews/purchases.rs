//! The verified-purchase badge of reviews: whether the author has a **delivered** order with the
//! product (issue #9), as order-payment's `GET /internal/purchases` answers it (`purchased`: a
//! paid order of theirs containing the product, neither cancelled nor refunded in full — the
//! rule is order-payment's, documented beside that route; `delivered`: one of those orders was
//! delivered).
//!
//! **Bought but not delivered yet**: the review is unverified and re-checked every
//! [`DELIVERY_RECHECK`] until the order is delivered (verified) or no longer counts (refunded,
//! cancelled). No event says an order was delivered, so the re-check is what notices it.
//!
//! **When order-payment cannot answer** (down, slow, its breaker open here), the review is still
//! written, unverified, and marked due for a re-check. Refusing the review would lose what the
//! customer wrote over a badge, and a review is moderated before anyone sees it, so the
//! re-check normally lands before it is public; "unverified" is the safe wrong answer (we never
//! claim a purchase we could not confirm). The re-check job ([`run`]) retries due reviews with a
//! doubling backoff (the sweep interval, then twice that, … at most an hour), forever: a review
//! stays due until order-payment answers, or until its author's data is erased.
//!
//! **When the answer may change**: a `payment.succeeded` or `refund.issued` of an author marks
//! all their reviews due ([`on_purchases_changed`]), so a review written before the payment
//! is checked again (and verified once delivered), and one whose order was refunded in full loses the badge. (A paid order
//! that is cancelled is refunded, and its `refund.issued` triggers the re-check; if that refund
//! fails, the badge stays until the next payment or refund of that customer.) Order-payment
//! commits before it publishes, so the re-check sees the new state.
//!
//! Several replicas share the job: each claims a batch with `FOR UPDATE SKIP LOCKED` and pushes
//! its due time forward (a lease), so a crashed replica's batch is picked up again later.

use std::time::Duration;

use serde::Deserialize;
use service_kit::event_bus::HandlerError;
use service_kit::{CommonConfig, PeerClient, PeerError};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The longest wait between two re-checks of one review.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// Reviews claimed by one round of the job.
const BATCH: i64 = 100;

/// How long a claimed batch is held before another replica may take it (the calls time out
/// long before).
const LEASE: Duration = Duration::from_secs(300);

/// How often a review whose product was bought but not delivered yet is checked again.
pub const DELIVERY_RECHECK: Duration = Duration::from_secs(6 * 3600);

/// What `/internal/purchases` answers (the fields we use).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PurchaseAnswer {
    purchased: bool,
    delivered: bool,
}

/// What order-payment knows of a customer's purchase of one product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purchase {
    /// No paid order of theirs (still counting) contains it.
    None,
    /// Paid for, not delivered yet.
    AwaitingDelivery,
    /// A delivered order of theirs contains it.
    Delivered,
}

impl Purchase {
    /// Whether a review gets the verified-purchase badge: only for a delivered order.
    pub fn verified(self) -> bool {
        self == Self::Delivered
    }

    /// When to ask again: only while a delivery is awaited.
    pub fn recheck_in(self) -> Option<Duration> {
        (self == Self::AwaitingDelivery).then_some(DELIVERY_RECHECK)
    }
}

/// order-payment's `/internal` API, called with a token naming this service.
#[derive(Clone, Debug)]
pub struct PurchaseClient {
    peer: PeerClient,
}

impl PurchaseClient {
    /// A client of order-payment at `base_url`, with the service's peer-call settings.
    pub fn new(common: &CommonConfig, base_url: String, timeout: Duration) -> anyhow::Result<Self> {
        Ok(Self {
            peer: PeerClient::for_service(common, "order-payment", base_url, timeout)?,
        })
    }

    /// Whether `user_id` bought `product_id`, and whether it was delivered. A `GET`, so the
    /// client retries it within its retry budget when order-payment is momentarily unreachable
    /// or answers 502/503/504.
    pub async fn purchase(&self, user_id: Uuid, product_id: Uuid) -> Result<Purchase, PeerError> {
        let answer: PurchaseAnswer = self
            .peer
            .get(&format!(
                "/internal/purchases?userId={user_id}&productId={product_id}"
            ))
            .await?;
        Ok(match (answer.purchased, answer.delivered) {
            (false, _) => Purchase::None,
            (true, false) => Purchase::AwaitingDelivery,
            (true, true) => Purchase::Delivered,
        })
    }
}

/// The wait before the next re-check of a review that failed `attempts` times in a row.
pub(crate) fn backoff(every: Duration, attempts: i32) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(0);
    every.saturating_mul(1 << doublings).min(MAX_BACKOFF)
}

/// Seconds as Postgres `make_interval` takes them.
fn secs(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

/// Consumer side: `user_id` paid or was refunded, so each of their reviews is due for a re-check
/// (a handful of rows through `reviews_user_idx`; the job makes the calls, outside the event's
/// transaction).
pub async fn on_purchases_changed(
    conn: &mut PgConnection,
    user_id: Option<Uuid>,
) -> Result<(), HandlerError> {
    let Some(user_id) = user_id else {
        return Ok(()); // a guest checkout wrote no reviews
    };
    sqlx::query!(
        "UPDATE reviews SET verify_due_at = now(), verify_attempts = 0 WHERE user_id = $1",
        user_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A review claimed for a re-check.
struct Due {
    id: Uuid,
    user_id: Uuid,
    product_id: Uuid,
    attempts: i32,
    lease: chrono::DateTime<chrono::Utc>,
}

/// Claims up to [`BATCH`] due reviews, pushing their due time to the end of a lease.
async fn claim(db: &PgPool) -> sqlx::Result<Vec<Due>> {
    // Anonymised reviews (their author erased) have nobody to check: they are settled as they are.
    sqlx::query!(
        "UPDATE reviews SET verify_due_at = NULL
         WHERE verify_due_at IS NOT NULL AND user_id IS NULL"
    )
    .execute(db)
    .await?;
    let rows = sqlx::query!(
        r#"UPDATE reviews r SET verify_due_at = now() + make_interval(secs => $2)
           FROM (SELECT id FROM reviews
                 WHERE verify_due_at <= now() AND user_id IS NOT NULL
                 ORDER BY verify_due_at LIMIT $1 FOR UPDATE SKIP LOCKED) due
           WHERE r.id = due.id
           RETURNING r.id, r.user_id AS "user_id!", r.product_id, r.verify_attempts,
                     r.verify_due_at AS "lease!""#,
        BATCH,
        secs(LEASE)
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Due {
            id: r.id,
            user_id: r.user_id,
            product_id: r.product_id,
            attempts: r.verify_attempts,
            lease: r.lease,
        })
        .collect())
}

/// Records order-payment's answer. The review stays due when its lease was replaced meanwhile
/// (an event asked for a newer check), and becomes due again later while a delivery is awaited.
async fn settle(db: &PgPool, due: &Due, purchase: Purchase) -> sqlx::Result<()> {
    let mut tx = db.begin().await?;
    sqlx::query!(
        "UPDATE reviews SET verified_purchase = $2, purchase_checked_at = now(), verify_attempts = 0,
                verify_due_at = CASE WHEN verify_due_at = $3 THEN NULL ELSE verify_due_at END
         WHERE id = $1",
        due.id,
        purchase.verified(),
        due.lease
    )
    .execute(&mut *tx)
    .await?;
    if let Some(wait) = purchase.recheck_in() {
        sqlx::query(
            "UPDATE reviews SET verify_due_at = now() + make_interval(secs => $2)
             WHERE id = $1 AND verify_due_at IS NULL",
        )
        .bind(due.id)
        .bind(secs(wait))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// Records a failed check: the next one after the backoff (unless an event asked for one since).
async fn postpone(db: &PgPool, due: &Due, every: Duration) -> sqlx::Result<()> {
    let attempts = due.attempts.saturating_add(1);
    sqlx::query!(
        "UPDATE reviews SET verify_attempts = $2,
                verify_due_at = CASE WHEN verify_due_at = $3
                                     THEN now() + make_interval(secs => $4) ELSE verify_due_at END
         WHERE id = $1",
        due.id,
        attempts,
        due.lease,
        secs(backoff(every, attempts))
    )
    .execute(db)
    .await?;
    Ok(())
}

/// One round: re-checks the reviews due now; returns how many were settled. Stops calling at
/// the first failure (order-payment is away: the rest of the batch is postponed without a call,
/// rather than fed to an open breaker one by one).
pub async fn verify_due(
    db: &PgPool,
    purchases: &PurchaseClient,
    every: Duration,
) -> anyhow::Result<usize> {
    let mut settled = 0;
    loop {
        let batch = claim(db).await?;
        let full = i64::try_from(batch.len()).unwrap_or(i64::MAX) >= BATCH;
        let mut away = false;
        for due in &batch {
            if away {
                postpone(db, due, every).await?;
                continue;
            }
            match purchases.purchase(due.user_id, due.product_id).await {
                Ok(purchase) => {
                    settle(db, due, purchase).await?;
                    settled += 1;
                }
                Err(error) => {
                    tracing::warn!(%error, review_id = %due.id, "purchase check failed; will retry");
                    postpone(db, due, every).await?;
                    away = true;
                }
            }
        }
        if away || !full {
            return Ok(settled);
        }
    }
}

/// The re-check job: a round every `every` until `token` is cancelled.
pub async fn run(db: PgPool, purchases: PurchaseClient, every: Duration, token: CancellationToken) {
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        match verify_due(&db, &purchases, every).await {
            Ok(0) => {}
            Ok(settled) => tracing::info!(settled, "review purchase checks settled"),
            Err(error) => tracing::warn!(%error, "review purchase re-check failed; will retry"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_from_the_interval_up_to_an_hour() {
        let every = Duration::from_secs(30);
        assert_eq!(backoff(every, 0), every);
        assert_eq!(backoff(every, 1), every);
        assert_eq!(backoff(every, 2), Duration::from_secs(60));
        assert_eq!(backoff(every, 4), Duration::from_secs(240));
        assert_eq!(backoff(every, 8), MAX_BACKOFF);
        assert_eq!(backoff(every, i32::MAX), MAX_BACKOFF);
    }
}
