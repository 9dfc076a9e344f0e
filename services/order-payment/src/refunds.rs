//! Refunds: full or partial, never more than was captured, settled by Stripe's webhooks.
//!
//! - `POST /v1/refunds {paymentId, amount?, reason}` (ADMIN, `Idempotency-Key` required):
//!   without `amount` refunds what is left. Answers `201` with the refund `PENDING` (or already
//!   settled, if Stripe settled it at once).
//! - `GET /v1/refunds/{id}`, `GET /v1/orders/{id}/refunds` (the order's owner or an admin).
//! - [`refund_order`]: what cancelling a paid order calls (after its own transaction commits) to
//!   give every successful payment of the order back in full.
//!
//! **Never more than captured.** The refund row is written `PENDING` in a transaction that
//! locks the payment and sums its `PENDING` and `SUCCEEDED` refunds, so concurrent refunds queue
//! and each sees the others' amounts; only then is Stripe asked (outside any transaction). If
//! Stripe refuses, the row becomes `FAILED` and releases its amount. `refund.updated` /
//! `charge.refunded` settle it ([`apply_refund`]): `SUCCEEDED` adds to the payment's refunded
//! amount, moves the order to `PARTIALLY_REFUNDED`/`REFUNDED` and emits `refund.issued`.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use service_kit::audit::Entry;
use service_kit::shared_types::order_payment::RefundIssued;
use service_kit::{AdminCaller, Caller, FieldError, IdempotencyKey, Problem, event_bus};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use validator::Validate;

use crate::error::{OrderError, OrderResult};
use crate::idempotency::{self, Begin};
use crate::invoices::{money, visible_order};
use crate::stripe::{RefundFacts, RefundState};
use crate::{AppState, event};

/// The body of `POST /v1/refunds`.
#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewRefund {
    /// The payment to refund.
    pub payment_id: Uuid,
    /// Pence to refund; everything still refundable when absent.
    #[validate(range(min = 1, message = "must be at least 1 (pence)"))]
    #[schema(minimum = 1)]
    pub amount: Option<i64>,
    /// Why (shown to staff, sent with `refund.issued`).
    #[validate(length(min = 1, max = 500, message = "must be 1-500 characters"))]
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
}

/// A refund.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Refund {
    /// Our id.
    pub id: Uuid,
    /// The payment refunded.
    pub payment_id: Uuid,
    /// Its order.
    pub order_id: Uuid,
    /// Stripe's refund id (`re_...`), once Stripe has it.
    pub stripe_refund_id: Option<String>,
    /// Pence.
    #[sqlx(rename = "amount_pence")]
    pub amount: i64,
    /// `GBP`.
    pub currency: String,
    /// Why.
    pub reason: String,
    /// `PENDING`, `SUCCEEDED`, `FAILED` or `CANCELLED`.
    pub status: String,
    /// Why it failed.
    pub failure_reason: Option<String>,
    /// The admin who asked (none: the system).
    pub requested_by: Option<Uuid>,
    /// When asked.
    pub created_at: DateTime<Utc>,
    /// When settled.
    pub settled_at: Option<DateTime<Utc>>,
}

const REFUND_COLUMNS: &str = "id, payment_id, order_id, stripe_refund_id, amount_pence, currency, \
     reason, status, failure_reason, requested_by, created_at, settled_at";

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(get_refund))
        .routes(routes!(order_refunds))
}

#[utoipa::path(
    post,
    path = "/v1/refunds",
    tag = "refunds",
    request_body = NewRefund,
    params(("Idempotency-Key" = String, Header, description = "Unique per refund")),
    responses(
        (status = 201, description = "Refund requested (settled by Stripe's webhook)", body = Refund),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such payment", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Payment not refundable, or the same key in flight", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "More than is left to refund, invalid body, or key reused", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Stripe unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    key: IdempotencyKey,
    body: Bytes,
) -> OrderResult<Response> {
    let input: NewRefund = service_kit::extract::parse_json(&body)?;
    input
        .validate()
        .map_err(service_kit::extract::validation_problem)?;
    let fingerprint = idempotency::fingerprint(
        "POST",
        "/v1/refunds",
        &serde_json::to_value(&input).map_err(anyhow::Error::from)?,
    );
    let caller_key = format!("user:{}", admin.user_id);
    let claim = match idempotency::begin(&state.db, &caller_key, &key.0, &fingerprint).await? {
        Begin::Replay(response) => return Ok(response),
        Begin::Proceed(claim) => claim,
    };
    let stripe_key = derived_key(&format!("{caller_key}\n{}", key.0));
    let result = start_refund(
        &state,
        input.payment_id,
        input.amount,
        input.reason.trim(),
        Some(admin.user_id),
        Some(&admin),
        &stripe_key,
    )
    .await;
    match result {
        Ok(refund) => {
            let mut tx = state.db.begin().await?;
            let response = claim
                .complete(&mut tx, StatusCode::CREATED, &refund)
                .await?;
            tx.commit().await?;
            Ok(response)
        }
        Err(error) => {
            let problem = error.to_problem();
            if problem.status_code().is_client_error() {
                // A definite refusal (404/409/422) answers replays the same way.
                let mut tx = state.db.begin().await?;
                let response = claim.complete_problem(&mut tx, &problem).await?;
                tx.commit().await?;
                Ok(response)
            } else {
                claim.abandon(&state.db).await;
                Err(error)
            }
        }
    }
}

fn derived_key(seed: &str) -> String {
    let digest = Sha256::digest(seed.as_bytes());
    format!("lomash-refund-{}", hex::encode(&digest[..20]))
}

#[derive(sqlx::FromRow)]
struct RefundablePayment {
    id: Uuid,
    order_id: Uuid,
    payment_intent_id: String,
    amount_pence: i64,
    status: String,
}

/// Reserves and requests a refund of `amount` (or all that is left) of `payment_id`.
async fn start_refund(
    state: &AppState,
    payment_id: Uuid,
    amount: Option<i64>,
    reason: &str,
    requested_by: Option<Uuid>,
    audited_as: Option<&Caller>,
    stripe_key: &str,
) -> OrderResult<Refund> {
    let mut tx = state.db.begin().await?;
    // Locking the payment makes concurrent refunds of it take turns. The reserved sum is read
    // by a separate statement *after* the lock is held: in READ COMMITTED each statement sees
    // what committed before it began, so it includes the refunds of whoever held the lock
    // before us (a subquery in the locking statement would still see the old snapshot).
    let payment: Option<RefundablePayment> = sqlx::query_as(
        "SELECT id, order_id, payment_intent_id, amount_pence, status
         FROM payments WHERE id = $1 FOR UPDATE",
    )
    .bind(payment_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(payment) = payment else {
        return Err(OrderError::NotFound("payment"));
    };
    let reserved: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(amount_pence), 0)::BIGINT FROM refunds
         WHERE payment_id = $1 AND status IN ('PENDING', 'SUCCEEDED')",
    )
    .bind(payment.id)
    .fetch_one(&mut *tx)
    .await?;
    if payment.status != "SUCCEEDED" {
        return Err(OrderError::conflict(
            "payment-not-refundable",
            format!(
                "Only a succeeded payment can be refunded; this one is {}.",
                payment.status
            ),
        ));
    }
    let remaining = payment.amount_pence - reserved;
    let amount = amount.unwrap_or(remaining);
    if remaining <= 0 {
        return Err(OrderError::Validation(vec![FieldError::new(
            "amount",
            "this payment has already been refunded in full",
        )]));
    }
    if amount > remaining {
        return Err(OrderError::Validation(vec![FieldError::new(
            "amount",
            format!(
                "exceeds what is left to refund ({} of {} captured)",
                money(remaining),
                money(payment.amount_pence)
            ),
        )]));
    }
    let refund: Refund = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO refunds (id, payment_id, order_id, amount_pence, reason, requested_by)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {REFUND_COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(payment.id)
    .bind(payment.order_id)
    .bind(amount)
    .bind(reason)
    .bind(requested_by)
    .fetch_one(&mut *tx)
    .await?;
    // Refunds the system asks for follow an audited action (a cancellation) or a webhook.
    if let Some(admin) = audited_as {
        Entry::new(admin, "refund", refund.id, "create")
            .after(&refund)
            .record(&mut tx)
            .await?;
    }
    tx.commit().await?;

    let metadata = HashMap::from([
        ("orderId".to_owned(), payment.order_id.to_string()),
        ("paymentId".to_owned(), payment.id.to_string()),
    ]);
    let facts = match state
        .stripe
        .create_refund(&payment.payment_intent_id, amount, metadata, stripe_key)
        .await
    {
        Ok(facts) => facts,
        Err(error) => {
            // Release the reserved amount; the row stays as the record of the attempt.
            sqlx::query(
                "UPDATE refunds SET status = 'FAILED', failure_reason = $2, settled_at = now()
                 WHERE id = $1 AND status = 'PENDING'",
            )
            .bind(refund.id)
            .bind(error.to_string())
            .execute(&state.db)
            .await?;
            return Err(OrderError::Problem(error.to_problem()));
        }
    };

    let mut tx = state.db.begin().await?;
    sqlx::query("UPDATE refunds SET stripe_refund_id = $2 WHERE id = $1")
        .bind(refund.id)
        .bind(&facts.id)
        .execute(&mut *tx)
        .await?;
    if facts.state != RefundState::Pending {
        apply_refund(&mut tx, &facts).await?;
    }
    let refund = load(&mut tx, refund.id).await?;
    tx.commit().await?;
    tracing::info!(refund_id = %refund.id, %payment_id, amount, "refund requested");
    Ok(refund)
}

async fn load(conn: &mut PgConnection, id: Uuid) -> OrderResult<Refund> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {REFUND_COLUMNS} FROM refunds WHERE id = $1"
    )))
    .bind(id)
    .fetch_one(&mut *conn)
    .await?)
}

/// Refunds whatever is left of one successful payment (the system asking: a surplus payment,
/// or a paid order's cancellation). `None` when nothing is left to refund.
pub async fn refund_payment_in_full(
    state: &AppState,
    payment_id: Uuid,
    reason: &str,
    requested_by: Option<Uuid>,
) -> OrderResult<Option<Refund>> {
    let reserved: Option<i64> = sqlx::query_scalar(
        "SELECT p.amount_pence - COALESCE((SELECT SUM(r.amount_pence) FROM refunds r
             WHERE r.payment_id = p.id AND r.status IN ('PENDING', 'SUCCEEDED')), 0)::BIGINT
         FROM payments p WHERE p.id = $1 AND p.status = 'SUCCEEDED'",
    )
    .bind(payment_id)
    .fetch_optional(&state.db)
    .await?;
    let Some(remaining) = reserved.filter(|r| *r > 0) else {
        return Ok(None);
    };
    // Stable per payment and amount: a retried cancellation reaches the same Stripe refund.
    let stripe_key = derived_key(&format!("full\n{payment_id}\n{remaining}"));
    match start_refund(
        state,
        payment_id,
        None,
        reason,
        requested_by,
        None,
        &stripe_key,
    )
    .await
    {
        Ok(refund) => Ok(Some(refund)),
        // Someone else refunded the rest in between.
        Err(OrderError::Validation(_)) => Ok(None),
        Err(error) => Err(error),
    }
}

/// Gives back every successful payment of `order_id` in full. Called by the order cancellation
/// (part A's `orders` module) **after** its transaction has committed, since it calls Stripe.
pub async fn refund_order(
    state: &AppState,
    order_id: Uuid,
    reason: &str,
    requested_by: Option<Uuid>,
) -> OrderResult<Vec<Refund>> {
    let payments: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM payments WHERE order_id = $1 AND status = 'SUCCEEDED' ORDER BY created_at",
    )
    .bind(order_id)
    .fetch_all(&state.db)
    .await?;
    let mut refunds = Vec::new();
    for payment_id in payments {
        if let Some(refund) =
            refund_payment_in_full(state, payment_id, reason, requested_by).await?
        {
            refunds.push(refund);
        }
    }
    Ok(refunds)
}

/// What applying a refund's state did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundApplied {
    /// Settled now.
    Changed,
    /// Already settled (a duplicate or late report), or still pending.
    Stale,
    /// Not one of ours.
    Unknown,
}

#[derive(sqlx::FromRow)]
struct RefundForUpdate {
    id: Uuid,
    payment_id: Uuid,
    order_id: Uuid,
    amount_pence: i64,
    status: String,
    reason: String,
    user_id: Option<Uuid>,
    customer_email: Option<String>,
}

/// Applies what Stripe says about a refund, inside `conn`'s transaction. Only `PENDING` refunds
/// move, so a duplicate or late report changes nothing.
pub async fn apply_refund(
    conn: &mut PgConnection,
    facts: &RefundFacts,
) -> OrderResult<RefundApplied> {
    let row: Option<RefundForUpdate> = sqlx::query_as(
        "SELECT r.id, r.payment_id, r.order_id, r.amount_pence, r.status, r.reason,
                o.user_id, o.customer_email
         FROM refunds r JOIN orders o ON o.id = r.order_id
         WHERE r.stripe_refund_id = $1
         FOR UPDATE OF r",
    )
    .bind(&facts.id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(refund) = row else {
        return Ok(RefundApplied::Unknown);
    };
    if refund.status != "PENDING" || facts.state == RefundState::Pending {
        return Ok(RefundApplied::Stale);
    }
    let now = Utc::now();
    match facts.state {
        RefundState::Succeeded => {
            sqlx::query("UPDATE refunds SET status = 'SUCCEEDED', settled_at = $2 WHERE id = $1")
                .bind(refund.id)
                .bind(now)
                .execute(&mut *conn)
                .await?;
            let (refunded, captured): (i64, i64) = sqlx::query_as(
                "UPDATE payments SET amount_refunded_pence = amount_refunded_pence + $2
                 WHERE id = $1 RETURNING amount_refunded_pence, amount_pence",
            )
            .bind(refund.payment_id)
            .bind(refund.amount_pence)
            .fetch_one(&mut *conn)
            .await?;
            let payment_status = if refunded >= captured {
                "REFUNDED"
            } else {
                "PARTIALLY_REFUNDED"
            };
            // Only the order's own (first successful) payment moves its payment status.
            sqlx::query(
                "UPDATE orders SET payment_status = $2
                 WHERE id = $1 AND payment_status IN ('PAID', 'PARTIALLY_REFUNDED')
                   AND (SELECT i.payment_id FROM invoices i WHERE i.order_id = $1
                        ORDER BY i.issued_at LIMIT 1) = $3",
            )
            .bind(refund.order_id)
            .bind(payment_status)
            .bind(refund.payment_id)
            .execute(&mut *conn)
            .await?;
            event_bus::outbox::publish(
                conn,
                &event(RefundIssued {
                    refund_id: refund.id,
                    order_id: refund.order_id,
                    payment_id: refund.payment_id,
                    user_id: refund.user_id,
                    amount: refund.amount_pence,
                    currency: "GBP".to_owned(),
                    reason: Some(refund.reason.clone()),
                    customer_email: refund.customer_email.clone(),
                    issued_at: now,
                }),
            )
            .await?;
        }
        RefundState::Failed | RefundState::Cancelled => {
            let status = if facts.state == RefundState::Failed {
                "FAILED"
            } else {
                "CANCELLED"
            };
            sqlx::query(
                "UPDATE refunds SET status = $2, failure_reason = $3, settled_at = $4 WHERE id = $1",
            )
            .bind(refund.id)
            .bind(status)
            .bind(&facts.failure_reason)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            tracing::warn!(refund_id = %refund.id, %status, "refund did not go through");
        }
        RefundState::Pending => return Ok(RefundApplied::Stale),
    }
    Ok(RefundApplied::Changed)
}

#[utoipa::path(
    get,
    path = "/v1/refunds/{id}",
    tag = "refunds",
    params(("id" = Uuid, Path, description = "Refund id")),
    responses(
        (status = 200, description = "The refund", body = Refund),
        (status = 404, description = "No such refund of yours", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_refund(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> OrderResult<Json<Refund>> {
    let refund: Option<Refund> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {REFUND_COLUMNS} FROM refunds r
         WHERE r.id = $1 AND ($3 OR EXISTS (SELECT 1 FROM orders o WHERE o.id = r.order_id AND o.user_id = $2))"
    )))
    .bind(id)
    .bind(caller.user_id)
    .bind(caller.role.is_admin())
    .fetch_optional(&state.db)
    .await?;
    refund.map(Json).ok_or(OrderError::NotFound("refund"))
}

#[utoipa::path(
    get,
    path = "/v1/orders/{id}/refunds",
    tag = "refunds",
    params(("id" = Uuid, Path, description = "Order id")),
    responses(
        (status = 200, description = "The order's refunds, oldest first", body = Vec<Refund>),
        (status = 404, description = "No such order of yours", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn order_refunds(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> OrderResult<Json<Vec<Refund>>> {
    visible_order(&state.db, id, &caller).await?;
    let refunds: Vec<Refund> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {REFUND_COLUMNS} FROM refunds WHERE order_id = $1 ORDER BY created_at, id"
    )))
    .bind(id)
    .fetch_all(&state.db)
    .await?;
    Ok(Json(refunds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_keys_are_stable_and_distinct() {
        assert_eq!(derived_key("a"), derived_key("a"));
        assert_ne!(derived_key("a"), derived_key("b"));
    }

    #[test]
    fn a_refund_needs_a_reason_and_a_positive_amount() {
        let bad = NewRefund {
            payment_id: Uuid::now_v7(),
            amount: Some(0),
            reason: String::new(),
        };
        let errors = bad.validate().expect_err("invalid");
        assert!(errors.field_errors().contains_key("amount"));
        assert!(errors.field_errors().contains_key("reason"));
    }
}
