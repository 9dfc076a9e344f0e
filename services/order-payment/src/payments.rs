//! Payments: a Stripe PaymentIntent per payment attempt of an order, and the one place where a
//! PaymentIntent's state is applied to ours ([`apply_intent`]), used by the webhook and the
//! reconciliation job alike.
//!
//! - `POST /v1/payments/create-intent {orderId}` (customer, `Idempotency-Key` required): the
//!   order must be the caller's (else 404) and unpaid and pending (else 409). Creates a
//!   PaymentIntent for the order total in pence (GBP, metadata `orderId`/`userId`/`orderNumber`)
//!   under a Stripe idempotency key derived from ours, then a `payments` row `PENDING`; answers
//!   `201 {paymentId, clientSecret, paymentIntentId, amount, currency}`. The answer is stored
//!   with the key (see [`crate::idempotency`]): a replay returns the same bytes, another body
//!   422, a concurrent twin 409 — so twenty identical requests create one PaymentIntent. If
//!   Stripe fails, the key is released; Stripe itself replays its stored failure for the same
//!   derived key, so a client should retry with a new key.
//! - `GET /v1/payments/{id}` (owner or admin), `GET /v1/orders/{id}/payments` (owner or admin).
//!
//! State only moves forward: `PENDING → FAILED → SUCCEEDED`, `PENDING|FAILED → CANCELLED`;
//! `SUCCEEDED` and `CANCELLED` are final, so a late `payment_failed` never downgrades a payment.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use service_kit::shared_types::order_payment::{PaymentFailed, PaymentSucceeded};
use service_kit::{Caller, IdempotencyKey, Problem, event_bus};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::{OrderError, OrderResult};
use crate::idempotency::{self, Begin};
use crate::stripe::{IntentFacts, IntentState};
use crate::{AppState, event, invoices};

/// The body of `POST /v1/payments/create-intent`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateIntent {
    /// The order to pay.
    pub order_id: Uuid,
}

/// What the browser needs to confirm the payment with Stripe.js.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntentCreated {
    /// Our payment record.
    pub payment_id: Uuid,
    /// The PaymentIntent's client secret (for Stripe.js only).
    pub client_secret: String,
    /// `pi_...`
    pub payment_intent_id: String,
    /// Amount in pence.
    pub amount: i64,
    /// `GBP`.
    pub currency: String,
}

/// A payment attempt.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    /// Our id.
    pub id: Uuid,
    /// The order.
    pub order_id: Uuid,
    /// The paying customer.
    pub user_id: Option<Uuid>,
    /// `pi_...`
    pub payment_intent_id: String,
    /// Amount in pence.
    #[sqlx(rename = "amount_pence")]
    pub amount: i64,
    /// `GBP`.
    pub currency: String,
    /// `PENDING`, `SUCCEEDED`, `FAILED` or `CANCELLED`.
    pub status: String,
    /// The decline code of the last failed attempt.
    pub failure_code: Option<String>,
    /// Its customer-safe message.
    pub failure_message: Option<String>,
    /// Settled refunds, in pence.
    #[sqlx(rename = "amount_refunded_pence")]
    pub amount_refunded: i64,
    /// When it succeeded.
    pub succeeded_at: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

const PAYMENT_COLUMNS: &str = "id, order_id, user_id, payment_intent_id, amount_pence, currency, \
     status, failure_code, failure_message, amount_refunded_pence, succeeded_at, created_at";

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_intent))
        .routes(routes!(get_payment))
        .routes(routes!(order_payments))
}

#[derive(sqlx::FromRow)]
struct PayableOrder {
    id: Uuid,
    order_number: String,
    status: String,
    payment_status: String,
    total_pence: i64,
}

/// The Stripe idempotency key for our `(caller, key)`: stable, so a retry after a crash between
/// Stripe's answer and our commit finds the same PaymentIntent instead of creating another.
fn stripe_key(scope: &str, caller: &str, key: &str) -> String {
    let digest = Sha256::digest(format!("{scope}\n{caller}\n{key}").as_bytes());
    format!("lomash-{scope}-{}", hex::encode(&digest[..20]))
}

#[utoipa::path(
    post,
    path = "/v1/payments/create-intent",
    tag = "payments",
    request_body = CreateIntent,
    params(("Idempotency-Key" = String, Header, description = "Unique per payment attempt")),
    responses(
        (status = 201, description = "PaymentIntent created", body = IntentCreated),
        (status = 400, description = "Missing Idempotency-Key or bad JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Order already paid or not payable, or the same key in flight", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Key reused with another body, or invalid body", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Stripe unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_intent(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    body: Bytes,
) -> OrderResult<Response> {
    let input: CreateIntent = service_kit::extract::parse_json(&body)?;
    let fingerprint = idempotency::fingerprint(
        "POST",
        "/v1/payments/create-intent",
        &serde_json::json!({ "orderId": input.order_id }),
    );
    let caller_key = format!("user:{}", caller.user_id);
    let claim = match idempotency::begin(&state.db, &caller_key, &key.0, &fingerprint).await? {
        Begin::Replay(response) => return Ok(response),
        Begin::Proceed(claim) => claim,
    };
    match create_intent_claimed(&state, &caller, &input, &caller_key, &key.0, &claim).await {
        Ok(response) => Ok(response),
        Err(error) => {
            // Only definite answers are kept with the key; anything else may be retried.
            claim.abandon(&state.db).await;
            Err(error)
        }
    }
}

async fn create_intent_claimed(
    state: &AppState,
    caller: &Caller,
    input: &CreateIntent,
    caller_key: &str,
    key: &str,
    claim: &idempotency::Claim,
) -> OrderResult<Response> {
    let order: Option<PayableOrder> = sqlx::query_as(
        "SELECT id, order_number, status, payment_status, total_pence FROM orders
         WHERE id = $1 AND user_id = $2",
    )
    .bind(input.order_id)
    .bind(caller.user_id)
    .fetch_optional(&state.db)
    .await?;
    let refusal = match &order {
        None => Some(Problem::not_found("No such order.")),
        Some(order) if order.payment_status != "UNPAID" => Some(Problem::conflict(
            "order-already-paid",
            "This order has already been paid.",
        )),
        Some(order) if order.status != "PENDING" => Some(Problem::conflict(
            "order-not-payable",
            format!("An order that is {} cannot be paid.", order.status),
        )),
        Some(order) if order.total_pence < 30 => Some(Problem::conflict(
            "order-not-payable",
            "Orders under £0.30 cannot be paid by card.",
        )),
        _ => None,
    };
    let order = match (refusal, order) {
        (None, Some(order)) => order,
        (refusal, _) => {
            // A definite refusal is stored with the key, like a success.
            let problem = refusal.unwrap_or_else(|| Problem::not_found("No such order."));
            let mut tx = state.db.begin().await?;
            let response = claim.complete_problem(&mut tx, &problem).await?;
            tx.commit().await?;
            return Ok(response);
        }
    };

    let metadata = HashMap::from([
        ("orderId".to_owned(), order.id.to_string()),
        ("orderNumber".to_owned(), order.order_number.clone()),
        ("userId".to_owned(), caller.user_id.to_string()),
    ]);
    let intent = state
        .stripe
        .create_intent(
            order.total_pence,
            metadata,
            &format!("Lomash Wood order {}", order.order_number),
            &stripe_key("intent", caller_key, key),
        )
        .await
        .map_err(|e| OrderError::Problem(e.to_problem()))?;
    let Some(client_secret) = intent.client_secret.clone() else {
        return Err(
            anyhow::anyhow!("Stripe returned a PaymentIntent without a client secret").into(),
        );
    };

    let mut tx = state.db.begin().await?;
    // The same derived Stripe key yields the same intent: after a crash the row may exist.
    let payment_id: Uuid = sqlx::query_scalar(
        "WITH inserted AS (
             INSERT INTO payments (id, order_id, user_id, payment_intent_id, amount_pence)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (payment_intent_id) DO NOTHING
             RETURNING id)
         SELECT id FROM inserted
         UNION ALL SELECT id FROM payments WHERE payment_intent_id = $4
         LIMIT 1",
    )
    .bind(Uuid::now_v7())
    .bind(order.id)
    .bind(caller.user_id)
    .bind(&intent.id)
    .bind(order.total_pence)
    .fetch_one(&mut *tx)
    .await?;
    let body = IntentCreated {
        payment_id,
        client_secret,
        payment_intent_id: intent.id.clone(),
        amount: order.total_pence,
        currency: "GBP".to_owned(),
    };
    let response = claim.complete(&mut tx, StatusCode::CREATED, &body).await?;
    tx.commit().await?;
    tracing::info!(order_id = %order.id, %payment_id, payment_intent = %intent.id, "payment intent created");
    Ok(response)
}

#[utoipa::path(
    get,
    path = "/v1/payments/{id}",
    tag = "payments",
    params(("id" = Uuid, Path, description = "Payment id")),
    responses(
        (status = 200, description = "The payment", body = Payment),
        (status = 404, description = "No such payment of yours", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_payment(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> OrderResult<Json<Payment>> {
    let payment: Option<Payment> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1 AND (user_id = $2 OR $3)"
    )))
    .bind(id)
    .bind(caller.user_id)
    .bind(caller.role.is_admin())
    .fetch_optional(&state.db)
    .await?;
    payment.map(Json).ok_or(OrderError::NotFound("payment"))
}

#[utoipa::path(
    get,
    path = "/v1/orders/{id}/payments",
    tag = "payments",
    params(("id" = Uuid, Path, description = "Order id")),
    responses(
        (status = 200, description = "The order's payment attempts, oldest first", body = Vec<Payment>),
        (status = 404, description = "No such order of yours", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn order_payments(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> OrderResult<Json<Vec<Payment>>> {
    crate::invoices::visible_order(&state.db, id, &caller).await?;
    let payments: Vec<Payment> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE order_id = $1 ORDER BY created_at, id"
    )))
    .bind(id)
    .fetch_all(&state.db)
    .await?;
    Ok(Json(payments))
}

/// What applying a PaymentIntent's state did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Our state moved forward.
    Changed,
    /// Nothing to do: we are already there or further (a late or duplicate report).
    Stale,
    /// No payment of ours has this PaymentIntent.
    Unknown,
    /// The intent succeeded but its order had already been paid or cancelled: the money must go
    /// back (the caller refunds `payment_id` in full after committing).
    PaidTwice {
        /// The surplus payment.
        payment_id: Uuid,
    },
}

#[derive(sqlx::FromRow)]
struct PaymentForUpdate {
    id: Uuid,
    order_id: Uuid,
    user_id: Option<Uuid>,
    amount_pence: i64,
    status: String,
    order_status: String,
    payment_status: String,
    customer_email: Option<String>,
}

fn rank(status: &str) -> u8 {
    match status {
        "PENDING" => 0,
        "FAILED" => 1,
        // Both final.
        _ => 2,
    }
}

/// Applies what Stripe says about a PaymentIntent to our payment, its order, invoice and
/// outbox, inside `conn`'s transaction. State only moves forward.
pub async fn apply_intent(conn: &mut PgConnection, intent: &IntentFacts) -> OrderResult<Applied> {
    let row: Option<PaymentForUpdate> = sqlx::query_as(
        "SELECT p.id, p.order_id, p.user_id, p.amount_pence, p.status,
                o.status AS order_status, o.payment_status, o.customer_email
         FROM payments p JOIN orders o ON o.id = p.order_id
         WHERE p.payment_intent_id = $1
         FOR UPDATE OF p, o",
    )
    .bind(&intent.id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(payment) = row else {
        return Ok(Applied::Unknown);
    };
    let now = Utc::now();
    match intent.state {
        IntentState::Pending => Ok(Applied::Stale),
        IntentState::Failed => {
            // Strictly forward: a second failure of the same intent (or the reconciliation
            // job seeing the same failure again) changes nothing and emits nothing.
            if rank(&payment.status) >= rank("FAILED") {
                return Ok(Applied::Stale);
            }
            sqlx::query(
                "UPDATE payments SET status = 'FAILED', failure_code = $2, failure_message = $3,
                 failed_at = $4 WHERE id = $1",
            )
            .bind(payment.id)
            .bind(&intent.failure_code)
            .bind(&intent.failure_message)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            event_bus::outbox::publish(
                conn,
                &event(PaymentFailed {
                    order_id: payment.order_id,
                    payment_id: payment.id,
                    user_id: payment.user_id,
                    amount: payment.amount_pence,
                    currency: "GBP".to_owned(),
                    failure_code: intent.failure_code.clone(),
                    failure_message: intent.failure_message.clone(),
                    customer_email: payment.customer_email.clone(),
                    failed_at: now,
                }),
            )
            .await?;
            Ok(Applied::Changed)
        }
        IntentState::Cancelled => {
            if rank(&payment.status) >= rank("SUCCEEDED") {
                return Ok(Applied::Stale);
            }
            sqlx::query(
                "UPDATE payments SET status = 'CANCELLED', cancelled_at = $2 WHERE id = $1",
            )
            .bind(payment.id)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            Ok(Applied::Changed)
        }
        IntentState::Succeeded => {
            if payment.status == "SUCCEEDED" {
                return Ok(Applied::Stale);
            }
            // Stripe's word wins over a CANCELLED we recorded: the money was taken.
            sqlx::query(
                "UPDATE payments SET status = 'SUCCEEDED', charge_id = $2, succeeded_at = $3,
                 failure_code = NULL, failure_message = NULL WHERE id = $1",
            )
            .bind(payment.id)
            .bind(&intent.charge_id)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            if payment.payment_status != "UNPAID" || payment.order_status != "PENDING" {
                tracing::warn!(
                    order_id = %payment.order_id,
                    payment_id = %payment.id,
                    order_status = %payment.order_status,
                    "a payment succeeded for an order that is already paid or no longer pending; refunding it"
                );
                return Ok(Applied::PaidTwice {
                    payment_id: payment.id,
                });
            }
            sqlx::query(
                "UPDATE orders SET status = 'CONFIRMED', payment_status = 'PAID', paid_at = $2,
                 reservation_expires_at = NULL WHERE id = $1",
            )
            .bind(payment.order_id)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "INSERT INTO order_status_history (id, order_id, from_status, to_status, actor_id, actor_role, reason)
                 VALUES ($1, $2, 'PENDING', 'CONFIRMED', NULL, 'SYSTEM', 'payment succeeded')",
            )
            .bind(Uuid::now_v7())
            .bind(payment.order_id)
            .execute(&mut *conn)
            .await?;
            let invoice = invoices::issue(conn, payment.order_id, payment.id, now).await?;
            event_bus::outbox::publish(
                conn,
                &event(PaymentSucceeded {
                    order_id: payment.order_id,
                    payment_id: payment.id,
                    user_id: payment.user_id,
                    amount: payment.amount_pence,
                    currency: "GBP".to_owned(),
                    invoice_number: Some(invoice.invoice_number),
                    provider_payment_id: intent.id.clone(),
                    customer_email: payment.customer_email.clone(),
                    paid_at: now,
                }),
            )
            .await?;
            Ok(Applied::Changed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stripe_key_is_stable_per_caller_and_key_and_differs_otherwise() {
        let a = stripe_key("intent", "user:1", "k");
        assert_eq!(a, stripe_key("intent", "user:1", "k"));
        assert_ne!(a, stripe_key("intent", "user:2", "k"));
        assert_ne!(a, stripe_key("intent", "user:1", "k2"));
        assert!(a.len() <= 255);
    }

    #[test]
    fn state_ranks_only_move_forward() {
        assert!(rank("PENDING") < rank("FAILED"));
        assert!(rank("FAILED") < rank("SUCCEEDED"));
        assert_eq!(rank("SUCCEEDED"), rank("CANCELLED"));
    }
}
