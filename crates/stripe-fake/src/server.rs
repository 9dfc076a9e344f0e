//! The HTTP side: Stripe's routes and the `/_fake/` controls.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::{
    Call, Failure, Operation, Shared, State as Inner, StoredResponse, objects, parse_form,
};

type SharedState = Arc<Shared>;

pub(crate) fn router(shared: SharedState) -> Router {
    Router::new()
        .route("/v1/payment_intents", post(create_intent))
        .route("/v1/payment_intents/{id}", get(retrieve_intent))
        .route("/v1/payment_intents/{id}/cancel", post(cancel_intent))
        .route("/v1/refunds", post(create_refund))
        .route("/v1/refunds/{id}", get(retrieve_refund))
        .route("/_fake/calls", get(list_calls))
        .route("/_fake/failures", post(script_failure))
        .route("/_fake/events", post(make_event))
        .fallback(unknown_route)
        .with_state(shared)
}

/// A Stripe answer: status and JSON body.
struct Answer {
    status: u16,
    body: Value,
}

impl Answer {
    fn ok(body: Value) -> Self {
        Self { status: 200, body }
    }

    fn error(
        status: u16,
        error_type: &str,
        code: Option<&str>,
        message: &str,
        param: Option<&str>,
    ) -> Self {
        Self {
            status,
            body: objects::error_body(error_type, code, message, param),
        }
    }

    fn invalid(message: &str, param: Option<&str>) -> Self {
        Self::error(
            400,
            "invalid_request_error",
            Some("parameter_missing"),
            message,
            param,
        )
    }

    fn missing(kind: &str, id: &str, param: &str) -> Self {
        Self::error(
            404,
            "invalid_request_error",
            Some("resource_missing"),
            &format!("No such {kind}: '{id}'"),
            Some(param),
        )
    }

    fn from_failure(failure: &Failure) -> Self {
        Self::error(
            failure.status,
            &failure.error_type,
            failure.code.as_deref(),
            &failure.message,
            None,
        )
    }
}

fn respond(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::HeaderName::from_static("request-id"), "req_fake"),
        ],
        body,
    )
        .into_response()
}

/// Runs one Stripe API call: authentication, idempotency, scripted failures, recording.
fn handle(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    operation: Operation,
    apply: impl FnOnce(&mut Inner, &Value) -> Answer,
) -> Response {
    let params = parse_form(body);
    if let Some(query) = uri.query() {
        // GET parameters (expand[]) are accepted and ignored, like unknown expansions.
        let _ = parse_form(query.as_bytes());
    }
    let idempotency_key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let api_key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(api_key_of);

    let mut state = shared.lock();
    let record = |state: &mut Inner, status: u16| {
        state.calls.push(Call {
            method: method.to_string(),
            path: uri.path().to_owned(),
            idempotency_key: idempotency_key.clone(),
            params: params.clone(),
            status,
        });
    };

    let Some(api_key) = api_key.filter(|k| k.starts_with("sk_") || k.starts_with("rk_")) else {
        let answer = Answer::error(
            401,
            "invalid_request_error",
            None,
            "You did not provide a valid API key. Provide your secret key using Bearer auth.",
            None,
        );
        record(&mut state, answer.status);
        return respond(answer.status, answer.body.to_string());
    };

    // Stripe keeps the first answer to a POST for its key and replays it; the same key with
    // different parameters is a client bug and refused.
    let fingerprint = format!("{method} {} {params}", uri.path());
    let stored_key = idempotency_key
        .clone()
        .filter(|_| *method == Method::POST)
        .map(|key| (api_key, key));
    if let Some(key) = &stored_key
        && let Some(stored) = state.idempotency.get(key).cloned()
    {
        if stored.fingerprint != fingerprint {
            let answer = Answer::error(
                400,
                "idempotency_error",
                Some("idempotency_key_in_use"),
                "Keys for idempotent requests can only be used with the same parameters they were first used with.",
                None,
            );
            record(&mut state, answer.status);
            return respond(answer.status, answer.body.to_string());
        }
        record(&mut state, stored.status);
        let mut response = respond(stored.status, stored.body);
        response.headers_mut().insert(
            header::HeaderName::from_static("idempotent-replayed"),
            header::HeaderValue::from_static("true"),
        );
        return response;
    }

    let scripted = state
        .failures
        .get_mut(&operation)
        .and_then(|queue| queue.pop_front());
    let answer = match scripted {
        Some(failure) => Answer::from_failure(&failure),
        None => apply(&mut state, &params),
    };
    let body = answer.body.to_string();
    // Parameter validation failures are not stored (as at Stripe); everything that ran is.
    if let Some(key) = stored_key
        && answer.status != 400
    {
        state.idempotency.insert(
            key,
            StoredResponse {
                fingerprint,
                status: answer.status,
                body: body.clone(),
            },
        );
    }
    record(&mut state, answer.status);
    respond(answer.status, body)
}

/// The API key of an `Authorization` header: `Bearer <key>` (the SDKs) or HTTP Basic with the
/// key as the user name (`curl -u sk_test_...:`), as Stripe accepts both.
fn api_key_of(value: &str) -> Option<String> {
    use base64::Engine;
    if let Some(key) = value.strip_prefix("Bearer ") {
        return Some(key.trim().to_owned());
    }
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    Some(text.split(':').next().unwrap_or_default().to_owned())
}

fn string_param<'a>(params: &'a Value, name: &str) -> Option<&'a str> {
    params
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn amount_param(params: &Value, name: &str) -> Result<Option<i64>, Answer> {
    match string_param(params, name) {
        None => Ok(None),
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|v| *v > 0)
            .map(Some)
            .ok_or_else(|| {
                Answer::error(
                    400,
                    "invalid_request_error",
                    Some("parameter_invalid_integer"),
                    &format!("Invalid integer: {raw}"),
                    Some(name),
                )
            }),
    }
}

async fn create_intent(
    State(shared): State<SharedState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(
        &shared,
        &method,
        &uri,
        &headers,
        &body,
        Operation::CreatePaymentIntent,
        |state, params| {
            let amount = match amount_param(params, "amount") {
                Ok(Some(amount)) => amount,
                Ok(None) => {
                    return Answer::invalid("Missing required param: amount.", Some("amount"));
                }
                Err(answer) => return answer,
            };
            let Some(currency) = string_param(params, "currency") else {
                return Answer::invalid("Missing required param: currency.", Some("currency"));
            };
            // Stripe's minimum charge in GBP is 30p.
            if currency == "gbp" && amount < 30 {
                return Answer::error(
                    400,
                    "invalid_request_error",
                    Some("amount_too_small"),
                    "Amount must be at least £0.30 gbp",
                    Some("amount"),
                );
            }
            let metadata = params.get("metadata").cloned().unwrap_or_else(|| json!({}));
            let intent = objects::payment_intent(
                amount,
                currency,
                metadata,
                string_param(params, "description"),
                string_param(params, "receipt_email"),
            );
            let id = intent["id"].as_str().unwrap_or_default().to_owned();
            state.intents.insert(id, intent.clone());
            Answer::ok(intent)
        },
    )
}

async fn retrieve_intent(
    State(shared): State<SharedState>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    handle(
        &shared,
        &method,
        &uri,
        &headers,
        &[],
        Operation::RetrievePaymentIntent,
        |state, _| match state.intents.get(&id) {
            Some(intent) => Answer::ok(intent.clone()),
            None => Answer::missing("payment_intent", &id, "intent"),
        },
    )
}

async fn cancel_intent(
    State(shared): State<SharedState>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(
        &shared,
        &method,
        &uri,
        &headers,
        &body,
        Operation::CancelPaymentIntent,
        |state, params| {
            let reason = string_param(params, "cancellation_reason").map(str::to_owned);
            match cancel(state, &id, reason.as_deref()) {
                Ok(intent) => Answer::ok(intent),
                Err(answer) => answer,
            }
        },
    )
}

fn cancel(state: &mut Inner, id: &str, reason: Option<&str>) -> Result<Value, Answer> {
    let Some(intent) = state.intents.get_mut(id) else {
        return Err(Answer::missing("payment_intent", id, "intent"));
    };
    let status = intent["status"].as_str().unwrap_or_default().to_owned();
    if matches!(status.as_str(), "succeeded" | "canceled") {
        return Err(Answer::error(
            400,
            "invalid_request_error",
            Some("payment_intent_unexpected_state"),
            &format!("You cannot cancel this PaymentIntent because it has a status of {status}."),
            None,
        ));
    }
    intent["status"] = json!("canceled");
    intent["canceled_at"] = json!(objects::now());
    intent["cancellation_reason"] = json!(reason);
    Ok(intent.clone())
}

async fn create_refund(
    State(shared): State<SharedState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(
        &shared,
        &method,
        &uri,
        &headers,
        &body,
        Operation::CreateRefund,
        |state, params| {
            let charge_id = if let Some(intent_id) = string_param(params, "payment_intent") {
                let Some(intent) = state.intents.get(intent_id) else {
                    return Answer::missing("payment_intent", intent_id, "payment_intent");
                };
                match intent["latest_charge"].as_str() {
                    Some(charge) if intent["status"] == "succeeded" => charge.to_owned(),
                    _ => {
                        return Answer::error(
                            400,
                            "invalid_request_error",
                            Some("charge_not_refundable"),
                            &format!(
                                "This PaymentIntent ({intent_id}) does not have a successful charge to refund."
                            ),
                            Some("payment_intent"),
                        );
                    }
                }
            } else if let Some(charge) = string_param(params, "charge") {
                charge.to_owned()
            } else {
                return Answer::invalid(
                    "One of the following params should be provided for this request: payment_intent or charge.",
                    None,
                );
            };
            let Some(charge) = state.charges.get(&charge_id).cloned() else {
                return Answer::missing("charge", &charge_id, "charge");
            };
            let remaining = charge["amount"].as_i64().unwrap_or(0)
                - charge["amount_refunded"].as_i64().unwrap_or(0);
            let amount = match amount_param(params, "amount") {
                Ok(Some(amount)) => amount,
                Ok(None) => remaining,
                Err(answer) => return answer,
            };
            if remaining <= 0 {
                return Answer::error(
                    400,
                    "invalid_request_error",
                    Some("charge_already_refunded"),
                    &format!("Charge {charge_id} has already been refunded."),
                    None,
                );
            }
            if amount > remaining {
                return Answer::error(
                    400,
                    "invalid_request_error",
                    Some("amount_too_large"),
                    &format!(
                        "Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining})"
                    ),
                    Some("amount"),
                );
            }
            let metadata = params.get("metadata").cloned().unwrap_or_else(|| json!({}));
            let refund = objects::refund(&charge, amount, string_param(params, "reason"), metadata);
            let id = refund["id"].as_str().unwrap_or_default().to_owned();
            if let Some(charge) = state.charges.get_mut(&charge_id) {
                // Stripe counts pending refunds in amount_refunded; a failed one is added back.
                let refunded = charge["amount_refunded"].as_i64().unwrap_or(0) + amount;
                charge["amount_refunded"] = json!(refunded);
                charge["refunded"] = json!(refunded >= charge["amount"].as_i64().unwrap_or(0));
                if let Some(list) = charge["refunds"]["data"].as_array_mut() {
                    list.insert(0, refund.clone());
                }
            }
            state.refunds.insert(id, refund.clone());
            Answer::ok(refund)
        },
    )
}

async fn retrieve_refund(
    State(shared): State<SharedState>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    handle(
        &shared,
        &method,
        &uri,
        &headers,
        &[],
        Operation::RetrieveRefund,
        |state, _| match state.refunds.get(&id) {
            Some(refund) => Answer::ok(refund.clone()),
            None => Answer::missing("refund", &id, "refund"),
        },
    )
}

async fn unknown_route(method: Method, uri: Uri) -> Response {
    let answer = Answer::error(
        404,
        "invalid_request_error",
        None,
        &format!("Unrecognized request URL ({method}: {}).", uri.path()),
        None,
    );
    respond(answer.status, answer.body.to_string())
}

pub(crate) fn succeed_intent(state: &mut Inner, id: &str) -> Option<Value> {
    let intent = state.intents.get_mut(id)?;
    if intent["status"] == "succeeded" {
        return Some(intent.clone());
    }
    intent["status"] = json!("succeeded");
    intent["amount_received"] = intent["amount"].clone();
    intent["last_payment_error"] = Value::Null;
    intent["payment_method"] = json!(objects::new_id("pm"));
    let charge = objects::charge(intent);
    intent["latest_charge"] = charge["id"].clone();
    let intent = intent.clone();
    let charge_id = charge["id"].as_str().unwrap_or_default().to_owned();
    state.charges.insert(charge_id, charge);
    Some(intent)
}

pub(crate) fn fail_intent(state: &mut Inner, id: &str, code: &str, message: &str) -> Option<Value> {
    let intent = state.intents.get_mut(id)?;
    if intent["status"] == "succeeded" {
        return Some(intent.clone());
    }
    intent["status"] = json!("requires_payment_method");
    intent["payment_method"] = Value::Null;
    intent["last_payment_error"] = json!({
        "type": "card_error",
        "code": code,
        "decline_code": if code == "card_declined" { json!("generic_decline") } else { Value::Null },
        "doc_url": format!("https://stripe.com/docs/error-codes/{}", code.replace('_', "-")),
        "message": message,
        "payment_method_type": "card",
        "charge": objects::new_id("ch"),
        "advice_code": null,
        "network_advice_code": null,
        "network_decline_code": null,
        "param": null,
        "request_log_url": null,
        "setup_intent": null,
        "source": null,
        "payment_method": null,
    });
    Some(intent.clone())
}

pub(crate) fn settle_refund(state: &mut Inner, id: &str, status: &str) -> Option<Value> {
    let refund = state.refunds.get_mut(id)?;
    let previous = refund["status"].as_str().unwrap_or_default().to_owned();
    refund["status"] = json!(status);
    if status == "failed" {
        refund["failure_reason"] = json!("expired_or_canceled_card");
    }
    let refund = refund.clone();
    let returned = matches!(status, "failed" | "canceled")
        && !matches!(previous.as_str(), "failed" | "canceled");
    if let Some(charge_id) = refund["charge"].as_str()
        && let Some(charge) = state.charges.get_mut(charge_id)
    {
        if returned {
            let refunded = charge["amount_refunded"].as_i64().unwrap_or(0)
                - refund["amount"].as_i64().unwrap_or(0);
            charge["amount_refunded"] = json!(refunded.max(0));
            charge["refunded"] = json!(false);
        }
        if let Some(list) = charge["refunds"]["data"].as_array_mut() {
            for item in list.iter_mut().filter(|r| r["id"] == refund["id"]) {
                *item = refund.clone();
            }
        }
    }
    Some(refund)
}

// ---- /_fake/ controls (used by the binary and `cargo xtask stripe-webhook`) ----

async fn list_calls(State(shared): State<SharedState>) -> Response {
    let calls = shared.lock().calls.clone();
    respond(200, json!({ "data": calls }).to_string())
}

#[derive(serde::Deserialize)]
struct ScriptFailure {
    operation: Operation,
    #[serde(flatten)]
    failure: Failure,
}

async fn script_failure(State(shared): State<SharedState>, body: Bytes) -> Response {
    match serde_json::from_slice::<ScriptFailure>(&body) {
        Ok(script) => {
            shared
                .lock()
                .failures
                .entry(script.operation)
                .or_default()
                .push_back(script.failure);
            respond(204, String::new())
        }
        Err(error) => respond(
            400,
            json!({"error": {"type": "invalid_request_error", "message": error.to_string()}})
                .to_string(),
        ),
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventRequest {
    /// e.g. `payment_intent.succeeded`.
    #[serde(rename = "type")]
    event_type: String,
    /// A PaymentIntent id (or a refund id for `refund.updated`).
    id: String,
    /// Whether to deliver it to the configured webhook target (default yes; `send-webhook`
    /// delivers itself and says no).
    #[serde(default = "deliver_by_default")]
    deliver: bool,
}

fn deliver_by_default() -> bool {
    true
}

/// Moves the named object into the state `type` describes, builds the event and — when the
/// binary was given a webhook target — delivers it signed. Answers with the event.
async fn make_event(State(shared): State<SharedState>, body: Bytes) -> Response {
    let request = match serde_json::from_slice::<EventRequest>(&body) {
        Ok(request) => request,
        Err(error) => {
            return respond(
                400,
                json!({"error": {"type": "invalid_request_error", "message": error.to_string()}})
                    .to_string(),
            );
        }
    };
    let object = {
        let mut state = shared.lock();
        event_object(&mut state, &request.event_type, &request.id)
    };
    let Some(object) = object else {
        let answer = Answer::missing("object", &request.id, "id");
        return respond(answer.status, answer.body.to_string());
    };
    let event = objects::event(&request.event_type, object);
    if let Some(target) = shared.webhook.clone().filter(|_| request.deliver) {
        let client = reqwest::Client::new();
        match crate::webhook::deliver(&client, &target.url, &target.secret, &event).await {
            Ok(status) => {
                tracing::info!(%status, event_type = %request.event_type, "webhook delivered")
            }
            Err(error) => tracing::warn!(%error, "webhook delivery failed"),
        }
    }
    respond(200, event.to_string())
}

/// The object an event of `event_type` carries after applying what it reports.
pub(crate) fn event_object(state: &mut Inner, event_type: &str, id: &str) -> Option<Value> {
    match event_type {
        "payment_intent.succeeded" => succeed_intent(state, id),
        "payment_intent.payment_failed" => {
            fail_intent(state, id, "card_declined", "Your card was declined.")
        }
        "payment_intent.canceled" => match cancel(state, id, Some("requested_by_customer")) {
            Ok(intent) => Some(intent),
            Err(_) => state.intents.get(id).cloned(),
        },
        "charge.refunded" => {
            let charge_id = state.intents.get(id)?["latest_charge"].as_str()?.to_owned();
            state.charges.get(&charge_id).cloned()
        }
        "charge.dispute.created" => {
            let charge_id = state.intents.get(id)?["latest_charge"].as_str()?.to_owned();
            state.charges.get(&charge_id).map(objects::dispute)
        }
        "refund.updated" | "charge.refund.updated" => settle_refund(state, id, "succeeded"),
        "refund.failed" => settle_refund(state, id, "failed"),
        _ => state
            .intents
            .get(id)
            .or_else(|| state.refunds.get(id))
            .cloned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_basic_authorization_both_name_the_key() {
        assert_eq!(api_key_of("Bearer sk_test_a").as_deref(), Some("sk_test_a"));
        // base64("sk_test_b:")
        assert_eq!(
            api_key_of("Basic c2tfdGVzdF9iOg==").as_deref(),
            Some("sk_test_b")
        );
        assert_eq!(api_key_of("Digest x"), None);
    }
}
