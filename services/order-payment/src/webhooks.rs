//! `POST /v1/webhooks/stripe`: Stripe's events, verified before anything else and applied once.
//!
//! 1. **Signature first.** The raw body (axum `Bytes`, untouched) and `Stripe-Signature`
//!    (`t=<unix>,v1=<hex>[,v1=...]`) are checked against every configured secret (several during
//!    a rotation; any `v1` matching any secret passes), HMAC-SHA256 compared in constant time,
//!    then the timestamp must be within 300 s of our clock. Anything else is a 400 problem and
//!    nothing is read or written.
//! 2. **Once.** The event id goes into `stripe_events` (primary key) in the same transaction as
//!    the effects; a redelivery finds it and changes nothing (a concurrent twin waits on the key
//!    and then finds it).
//! 3. **Forward only.** [`payments::apply_intent`] and [`refunds::apply_refund`] never move a
//!    state backwards, so out-of-order and late events (Stripe retries for days) are `STALE`.
//! 4. **Fast.** One short transaction; the only slow follow-up (refunding a payment that arrived
//!    for an already paid or cancelled order) runs in the background after the answer.
//!
//! Handled: `payment_intent.succeeded` / `.payment_failed` / `.canceled`, `refund.updated`,
//! `charge.refund.updated`, `charge.refunded` (its listed refunds), `charge.dispute.created`
//! (flags the order). Other types are recorded as `IGNORED` and answered 200.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Serialize;
use service_kit::Problem;
use service_kit::config::Secret;
use sha2::Sha256;
use sqlx::PgConnection;
use stripe_webhook::{Event, EventObject, Webhook};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::error::{OrderError, OrderResult};
use crate::payments::{self, Applied};
use crate::refunds::{self, RefundApplied};
use crate::stripe::{IntentFacts, RefundFacts, WEBHOOK_TOLERANCE_SECS};

/// Why a webhook's signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    /// No `Stripe-Signature` header.
    Missing,
    /// A header without `t=` or any `v1=`.
    Malformed,
    /// No `v1` matches any of our secrets.
    Mismatch,
    /// Signed too long ago (or in the future).
    Expired,
}

impl SignatureError {
    fn to_problem(self) -> Problem {
        let (code, detail) = match self {
            Self::Missing => (
                "signature-missing",
                "The Stripe-Signature header is missing.",
            ),
            Self::Malformed => (
                "signature-malformed",
                "The Stripe-Signature header is malformed.",
            ),
            Self::Mismatch => ("signature-invalid", "No signature matches this payload."),
            Self::Expired => (
                "signature-expired",
                "The signature's timestamp is outside the tolerance.",
            ),
        };
        Problem::new(StatusCode::BAD_REQUEST, code, "Invalid webhook signature").with_detail(detail)
    }
}

/// Checks `header` over `body` against `secrets` at `now` (Unix seconds). Returns the signed
/// timestamp and the secret that matched.
pub fn verify_signature<'s>(
    header: Option<&str>,
    body: &[u8],
    secrets: &'s [Secret<String>],
    now: i64,
) -> Result<(i64, &'s str), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp: Option<i64> = None;
    let mut signatures: Vec<Vec<u8>> = Vec::new();
    for part in header.split(',') {
        let Some((key, value)) = part.trim().split_once('=') else {
            return Err(SignatureError::Malformed);
        };
        match key {
            "t" => timestamp = Some(value.parse().map_err(|_| SignatureError::Malformed)?),
            // An undecodable candidate simply cannot match; others may.
            "v1" => signatures.extend(hex::decode(value).ok()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() && !header.contains("v1=") {
        return Err(SignatureError::Malformed);
    }
    let signed_prefix = format!("{timestamp}.");
    let matched = secrets.iter().find(|secret| {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()) else {
            return false;
        };
        mac.update(signed_prefix.as_bytes());
        mac.update(body);
        // verify_slice compares in constant time.
        signatures
            .iter()
            .any(|candidate| mac.clone().verify_slice(candidate).is_ok())
    });
    let Some(secret) = matched else {
        return Err(SignatureError::Mismatch);
    };
    if (now - timestamp).abs() > WEBHOOK_TOLERANCE_SECS {
        return Err(SignatureError::Expired);
    }
    Ok((timestamp, secret.expose().as_str()))
}

/// The acknowledgement Stripe gets.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Received {
    /// Always true.
    pub received: bool,
    /// `APPLIED`, `IGNORED`, `STALE` or `DUPLICATE`.
    pub outcome: String,
}

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stripe_webhook))
}

#[utoipa::path(
    post,
    path = "/v1/webhooks/stripe",
    tag = "webhooks",
    request_body(content = EventHead, description = "A Stripe Event, signed (the `Stripe-Signature` covers these exact bytes)", content_type = "application/json"),
    params(("Stripe-Signature" = String, Header, description = "t=<unix>,v1=<hex hmac-sha256>")),
    responses(
        (status = 200, description = "Received (applied, ignored, stale or duplicate)", body = Received),
        (status = 400, description = "Missing, malformed, invalid or expired signature, or an unreadable event", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn stripe_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> OrderResult<Json<Received>> {
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    let (timestamp, secret) = verify_signature(
        signature,
        &body,
        &state.stripe_settings.webhook_secrets,
        Utc::now().timestamp(),
    )
    .map_err(|e| {
        tracing::warn!(reason = ?e, "Stripe webhook refused");
        OrderError::Problem(e.to_problem())
    })?;
    let unreadable = || {
        OrderError::Problem(
            Problem::bad_request("The event could not be read as a Stripe event.")
                .with_extension("code", serde_json::json!("event-unreadable")),
        )
    };
    let head: EventHead = serde_json::from_slice(&body).map_err(|_| unreadable())?;
    let created = DateTime::<Utc>::from_timestamp(head.created, 0).unwrap_or_else(Utc::now);
    let mut tx = state.db.begin().await?;
    let fresh = sqlx::query(
        "INSERT INTO stripe_events (id, type, object_id, outcome, created_at)
         VALUES ($1, $2, $3, 'IGNORED', $4) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&head.id)
    .bind(&head.event_type)
    .bind(head.data.object.id.as_deref())
    .bind(created)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if fresh && !HANDLED.contains(&head.event_type.as_str()) {
        // Recorded and acknowledged; we need nothing from it (and async-stripe need not be
        // able to read it, so a new or unusual type can never make Stripe retry for days).
        tx.commit().await?;
        return Ok(Json(Received {
            received: true,
            outcome: "IGNORED".to_owned(),
        }));
    }
    if !fresh {
        tx.rollback().await?;
        tracing::info!(event_id = %head.id, "duplicate Stripe event ignored");
        return Ok(Json(Received {
            received: true,
            outcome: "DUPLICATE".to_owned(),
        }));
    }
    let payload = std::str::from_utf8(&body).map_err(|_| unreadable())?;
    // Verified above with the same secret; this parses (async-stripe insists on a signature).
    let event = Webhook::construct_event_with_timestamp(
        payload,
        signature.unwrap_or_default(),
        secret,
        timestamp,
    )
    .map_err(|error| {
        tracing::error!(%error, event_type = %head.event_type, "a correctly signed Stripe event could not be parsed");
        unreadable()
    })?;
    let (outcome, surplus) = dispatch(&mut tx, &event).await?;
    sqlx::query("UPDATE stripe_events SET outcome = $2 WHERE id = $1")
        .bind(event.id.as_str())
        .bind(outcome)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::info!(event_id = %event.id.as_str(), event_type = %event.type_.as_str(), outcome, "Stripe event handled");

    if let Some(payment_id) = surplus {
        refund_surplus(state, payment_id);
    }
    Ok(Json(Received {
        received: true,
        outcome: outcome.to_owned(),
    }))
}

/// Refunds, in the background, a payment that succeeded for an order already paid or
/// cancelled (the customer must not pay twice).
pub fn refund_surplus(state: AppState, payment_id: Uuid) {
    tokio::spawn(async move {
        let reason = "Payment received for an order that was already paid or cancelled";
        if let Err(error) = refunds::refund_payment_in_full(&state, payment_id, reason, None).await
        {
            tracing::error!(%payment_id, %error, "could not refund a surplus payment; refund it by hand");
        }
    });
}

/// The event types this endpoint acts on; others are recorded and acknowledged.
const HANDLED: [&str; 7] = [
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
    "refund.updated",
    "charge.refund.updated",
    "charge.refunded",
    "charge.dispute.created",
];

/// What every Stripe event has, read before (and whether or not) async-stripe reads the rest.
/// Documented as the request body: a type the service does not handle is acknowledged with
/// `IGNORED`; a handled type's `data.object` is read as Stripe defines that type.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[schema(as = StripeEvent)]
struct EventHead {
    /// Event id (`evt_…`).
    #[schema(pattern = "^[^\\u0000]*$")]
    id: String,
    /// Event type, e.g. `payment_intent.succeeded`.
    #[serde(rename = "type")]
    #[schema(pattern = "^[^\\u0000]*$")]
    event_type: String,
    /// When the event happened (Unix seconds).
    created: i64,
    /// The object the event is about.
    data: EventHeadData,
}

/// The `data` of a Stripe event.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[schema(as = StripeEventData)]
struct EventHeadData {
    /// The object the event is about.
    object: EventHeadObject,
}

/// The object of a Stripe event, as far as every type has it.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[schema(as = StripeEventObject)]
struct EventHeadObject {
    /// Its id (`pi_…`, `re_…`).
    #[schema(pattern = "^[^\\u0000]*$")]
    id: Option<String>,
}

fn intent_outcome(applied: &Applied) -> &'static str {
    match applied {
        Applied::Changed | Applied::PaidTwice { .. } => "APPLIED",
        Applied::Stale => "STALE",
        Applied::Unknown => "IGNORED",
    }
}

fn refund_outcome(applied: RefundApplied) -> &'static str {
    match applied {
        RefundApplied::Changed => "APPLIED",
        RefundApplied::Stale => "STALE",
        RefundApplied::Unknown => "IGNORED",
    }
}

/// Applies one event; returns its outcome and a surplus payment to refund, if any.
async fn dispatch(
    conn: &mut PgConnection,
    event: &Event,
) -> OrderResult<(&'static str, Option<Uuid>)> {
    match &event.data.object {
        EventObject::PaymentIntentSucceeded(pi)
        | EventObject::PaymentIntentPaymentFailed(pi)
        | EventObject::PaymentIntentCanceled(pi) => {
            let mut facts = IntentFacts::of(pi);
            // The event type is the statement; the embedded object agrees with it in practice,
            // but a failure event without `last_payment_error` must still count as a failure.
            facts.state = match &event.data.object {
                EventObject::PaymentIntentSucceeded(_) => crate::stripe::IntentState::Succeeded,
                EventObject::PaymentIntentPaymentFailed(_) => crate::stripe::IntentState::Failed,
                _ => crate::stripe::IntentState::Cancelled,
            };
            let applied = payments::apply_intent(conn, &facts).await?;
            let surplus = match applied {
                Applied::PaidTwice { payment_id } => Some(payment_id),
                _ => None,
            };
            Ok((intent_outcome(&applied), surplus))
        }
        EventObject::RefundUpdated(refund) | EventObject::ChargeRefundUpdated(refund) => {
            let applied = refunds::apply_refund(conn, &RefundFacts::of(refund)).await?;
            Ok((refund_outcome(applied), None))
        }
        EventObject::ChargeRefunded(charge) => {
            // Recent API versions leave `refunds` out of the charge; `refund.updated` then
            // carries the settlement.
            let mut outcome = "IGNORED";
            for refund in charge.refunds.iter().flat_map(|list| list.data.iter()) {
                match refunds::apply_refund(conn, &RefundFacts::of(refund)).await? {
                    RefundApplied::Changed => outcome = "APPLIED",
                    RefundApplied::Stale if outcome == "IGNORED" => outcome = "STALE",
                    _ => {}
                }
            }
            Ok((outcome, None))
        }
        EventObject::ChargeDisputeCreated(dispute) => {
            let intent = dispute
                .payment_intent
                .as_ref()
                .map(|p| p.id().as_str().to_owned());
            let flagged = sqlx::query(
                "UPDATE orders SET disputed_at = now(), dispute_id = $3, dispute_reason = $4
                 WHERE id = (SELECT order_id FROM payments
                             WHERE payment_intent_id = $1 OR charge_id = $2 LIMIT 1)
                   AND disputed_at IS NULL",
            )
            .bind(intent)
            .bind(dispute.charge.id().as_str())
            .bind(dispute.id.as_str())
            .bind(&dispute.reason)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if flagged == 1 {
                tracing::warn!(dispute = %dispute.id.as_str(), "a dispute was opened; order flagged");
                Ok(("APPLIED", None))
            } else {
                Ok(("STALE", None))
            }
        }
        _ => Ok(("IGNORED", None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn secrets(values: &[&str]) -> Vec<Secret<String>> {
        values
            .iter()
            .map(|v| Secret::new((*v).to_owned()))
            .collect()
    }

    fn sign(secret: &str, t: i64, body: &str) -> String {
        stripe_fake::signature_header(&[secret], t, body)
    }

    #[test]
    fn a_correct_signature_passes() {
        let header = sign("whsec_a", NOW, "{}");
        let keys = secrets(&["whsec_a"]);
        assert_eq!(
            verify_signature(Some(&header), b"{}", &keys, NOW),
            Ok((NOW, "whsec_a"))
        );
    }

    #[test]
    fn any_v1_under_any_secret_passes_during_a_rotation() {
        let header = stripe_fake::signature_header(&["whsec_other", "whsec_new"], NOW, "{}");
        let keys = secrets(&["whsec_old", "whsec_new"]);
        assert_eq!(
            verify_signature(Some(&header), b"{}", &keys, NOW),
            Ok((NOW, "whsec_new"))
        );
    }

    #[test]
    fn a_changed_body_or_wrong_secret_fails() {
        let header = sign("whsec_a", NOW, "{}");
        let keys = secrets(&["whsec_a"]);
        assert_eq!(
            verify_signature(Some(&header), b"{ }", &keys, NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(Some(&header), b"{}", &secrets(&["whsec_b"]), NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn old_and_future_timestamps_fail_beyond_five_minutes() {
        let keys = secrets(&["whsec_a"]);
        let old = sign("whsec_a", NOW - 301, "{}");
        assert_eq!(
            verify_signature(Some(&old), b"{}", &keys, NOW),
            Err(SignatureError::Expired)
        );
        let edge = sign("whsec_a", NOW - 300, "{}");
        assert!(verify_signature(Some(&edge), b"{}", &keys, NOW).is_ok());
        let future = sign("whsec_a", NOW + 301, "{}");
        assert_eq!(
            verify_signature(Some(&future), b"{}", &keys, NOW),
            Err(SignatureError::Expired)
        );
    }

    #[test]
    fn missing_and_malformed_headers_fail() {
        let keys = secrets(&["whsec_a"]);
        assert_eq!(
            verify_signature(None, b"{}", &keys, NOW),
            Err(SignatureError::Missing)
        );
        for header in [
            "",
            "garbage",
            "v1=abcd",
            "t=notanumber,v1=abcd",
            "t=1800000000",
        ] {
            assert_eq!(
                verify_signature(Some(header), b"{}", &keys, NOW),
                Err(SignatureError::Malformed),
                "{header}"
            );
        }
        let not_hex = format!("t={NOW},v1=zz");
        assert_eq!(
            verify_signature(Some(&not_hex), b"{}", &keys, NOW),
            Err(SignatureError::Mismatch)
        );
    }
}
