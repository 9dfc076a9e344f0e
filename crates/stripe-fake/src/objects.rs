//! Complete Stripe objects built from Stripe's own example fixtures (`fixtures/`, copied from the
//! `stripe/openapi` repository, MIT licence).
//!
//! Webhook parsers such as async-stripe's insist on complete objects, so every object starts from
//! the fixture and only the fields that carry meaning are changed. A few fixture fields hold
//! placeholder values that no real object would (`"type": "type"`, a transfer destination, an
//! ACH source on a card charge); those are reset to what Stripe sends for a plain card payment.

use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::{Map, Value, json};

/// The Stripe API version these objects are rendered in (the one async-stripe 1.0.0-rc.10 was
/// generated from, so its parser never warns about a mismatch).
pub const API_VERSION: &str = "2026-09-30.endive";

fn fixture(text: &str) -> Value {
    // The fixtures are compiled in and checked by the tests; an unparsable one is a build mistake
    // that the first test run reports, so an empty object is a safe fallback here.
    serde_json::from_str(text).unwrap_or_else(|_| Value::Object(Map::new()))
}

static PAYMENT_INTENT: LazyLock<Value> =
    LazyLock::new(|| fixture(include_str!("../fixtures/payment_intent.json")));
static CHARGE: LazyLock<Value> = LazyLock::new(|| fixture(include_str!("../fixtures/charge.json")));
static REFUND: LazyLock<Value> = LazyLock::new(|| fixture(include_str!("../fixtures/refund.json")));
static DISPUTE: LazyLock<Value> =
    LazyLock::new(|| fixture(include_str!("../fixtures/dispute.json")));
static EVENT: LazyLock<Value> = LazyLock::new(|| fixture(include_str!("../fixtures/event.json")));

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// A Stripe-style identifier: `prefix_` followed by 24 random alphanumerics.
pub fn new_id(prefix: &str) -> String {
    let tail: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    format!("{prefix}_{tail}")
}

fn set(object: &mut Value, key: &str, value: Value) {
    if let Value::Object(map) = object {
        map.insert(key.to_owned(), value);
    }
}

/// A new PaymentIntent awaiting a payment method.
pub fn payment_intent(
    amount: i64,
    currency: &str,
    metadata: Value,
    description: Option<&str>,
    receipt_email: Option<&str>,
) -> Value {
    let mut intent = PAYMENT_INTENT.clone();
    let id = new_id("pi");
    let secret = new_id("secret");
    for (key, value) in [
        ("client_secret", json!(format!("{id}_{secret}"))),
        ("id", json!(id)),
        ("amount", json!(amount)),
        ("amount_received", json!(0)),
        ("amount_capturable", json!(0)),
        ("currency", json!(currency)),
        ("created", json!(now())),
        ("metadata", metadata),
        ("description", json!(description)),
        ("receipt_email", json!(receipt_email)),
        ("status", json!("requires_payment_method")),
        ("canceled_at", Value::Null),
        ("cancellation_reason", Value::Null),
        ("last_payment_error", Value::Null),
        ("latest_charge", Value::Null),
        ("next_action", Value::Null),
        ("processing", Value::Null),
        ("shipping", Value::Null),
        ("transfer_data", Value::Null),
        ("managed_payments", Value::Null),
        ("payment_method", Value::Null),
    ] {
        set(&mut intent, key, value);
    }
    intent
}

/// The charge of a PaymentIntent that succeeded.
pub fn charge(intent: &Value) -> Value {
    let mut charge = CHARGE.clone();
    let amount = intent["amount"].clone();
    let id = new_id("ch");
    for (key, value) in [
        ("id", json!(id)),
        ("amount", amount.clone()),
        ("amount_captured", amount),
        ("amount_refunded", json!(0)),
        ("captured", json!(true)),
        ("paid", json!(true)),
        ("refunded", json!(false)),
        ("currency", intent["currency"].clone()),
        ("created", json!(now())),
        ("metadata", intent["metadata"].clone()),
        ("description", intent["description"].clone()),
        ("receipt_email", intent["receipt_email"].clone()),
        ("payment_intent", intent["id"].clone()),
        ("payment_method", intent["payment_method"].clone()),
        ("balance_transaction", json!(new_id("txn"))),
        ("status", json!("succeeded")),
        ("shipping", Value::Null),
        ("source", Value::Null),
        ("transfer_data", Value::Null),
        (
            "refunds",
            json!({"object": "list", "data": [], "has_more": false, "url": format!("/v1/charges/{id}/refunds")}),
        ),
    ] {
        set(&mut charge, key, value);
    }
    charge["outcome"]["type"] = json!("authorized");
    charge["outcome"]["network_status"] = json!("approved_by_network");
    charge["outcome"]["seller_message"] = json!("Payment complete.");
    charge["outcome"]["risk_level"] = json!("normal");
    charge["payment_method_details"]["card"]["wallet"] = Value::Null;
    charge
}

/// A refund of `amount` against `charge`, in `status`.
pub fn refund(charge: &Value, amount: i64, reason: Option<&str>, metadata: Value) -> Value {
    let mut refund = REFUND.clone();
    for (key, value) in [
        ("id", json!(new_id("re"))),
        ("amount", json!(amount)),
        ("charge", charge["id"].clone()),
        ("payment_intent", charge["payment_intent"].clone()),
        ("currency", charge["currency"].clone()),
        ("created", json!(now())),
        ("metadata", metadata),
        ("reason", json!(reason)),
        ("status", json!("pending")),
        ("balance_transaction", json!(new_id("txn"))),
    ] {
        set(&mut refund, key, value);
    }
    refund
}

/// A dispute opened on `charge`.
pub fn dispute(charge: &Value) -> Value {
    let mut dispute = DISPUTE.clone();
    for (key, value) in [
        ("id", json!(new_id("dp"))),
        ("amount", charge["amount"].clone()),
        ("charge", charge["id"].clone()),
        ("payment_intent", charge["payment_intent"].clone()),
        ("currency", charge["currency"].clone()),
        ("created", json!(now())),
        ("reason", json!("fraudulent")),
        ("status", json!("needs_response")),
    ] {
        set(&mut dispute, key, value);
    }
    dispute
}

/// A webhook `Event` of `event_type` carrying `object` (a complete Stripe object).
pub fn event(event_type: &str, object: Value) -> Value {
    let mut event = EVENT.clone();
    for (key, value) in [
        ("id", json!(new_id("evt"))),
        ("api_version", json!(API_VERSION)),
        ("created", json!(now())),
        ("data", json!({ "object": object })),
        ("livemode", json!(false)),
        ("pending_webhooks", json!(1)),
        ("request", json!({"id": null, "idempotency_key": null})),
        ("type", json!(event_type)),
    ] {
        set(&mut event, key, value);
    }
    event
}

/// A Stripe error body: `{"error": {type, code, message, ...}}`.
pub fn error_body(
    error_type: &str,
    code: Option<&str>,
    message: &str,
    param: Option<&str>,
) -> Value {
    json!({
        "error": {
            "type": error_type,
            "code": code,
            "message": message,
            "param": param,
            "doc_url": code.map(|c| format!("https://stripe.com/docs/error-codes/{}", c.replace('_', "-"))),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixture_parses() {
        for fixture in [&*PAYMENT_INTENT, &*CHARGE, &*REFUND, &*DISPUTE, &*EVENT] {
            assert!(fixture["id"].is_string(), "{fixture}");
        }
    }

    #[test]
    fn ids_look_like_stripe_ids() {
        let id = new_id("pi");
        assert!(id.starts_with("pi_"));
        assert_eq!(id.len(), 27);
    }
}
