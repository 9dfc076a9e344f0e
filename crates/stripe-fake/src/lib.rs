//! A Stripe API stand-in: a real HTTP server that answers the calls Lomash Wood makes the way
//! Stripe does, so async-stripe can be pointed at it with `ClientBuilder::url(base_url)`.
//!
//! What it serves (form-encoded bodies, `Authorization: Bearer sk_...` required):
//! - `POST /v1/payment_intents`, `GET /v1/payment_intents/{id}`,
//!   `POST /v1/payment_intents/{id}/cancel`
//! - `POST /v1/refunds`, `GET /v1/refunds/{id}`
//!
//! Like Stripe, a `POST` with an `Idempotency-Key` is answered once and replayed byte for byte
//! afterwards (same key with other parameters → 400 `idempotency_error`), and errors come back as
//! `{"error": {type, code, message, param}}` with Stripe's status codes.
//!
//! For tests ([`FakeStripe`]): every call is recorded ([`FakeStripe::calls`]), failures can be
//! scripted for the next call of an operation ([`FakeStripe::fail_next`]), and intents and
//! refunds can be moved to their final states ([`FakeStripe::succeed_intent`],
//! [`FakeStripe::fail_intent`], [`FakeStripe::settle_refund`]). [`webhook`] builds and signs
//! events exactly like Stripe. The same controls are served over HTTP under `/_fake/` for the
//! `stripe-fake` binary that `cargo xtask up` runs.

pub mod objects;
mod server;
pub mod webhook;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use webhook::{SignedEvent, sign, sign_at, signature_header};

/// An operation whose next call can be made to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// `POST /v1/payment_intents`
    CreatePaymentIntent,
    /// `GET /v1/payment_intents/{id}`
    RetrievePaymentIntent,
    /// `POST /v1/payment_intents/{id}/cancel`
    CancelPaymentIntent,
    /// `POST /v1/refunds`
    CreateRefund,
    /// `GET /v1/refunds/{id}`
    RetrieveRefund,
}

/// A scripted failure: the HTTP status and Stripe error the next call answers with.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct Failure {
    /// HTTP status (402 card errors, 400 invalid requests, 500 API errors, ...).
    pub status: u16,
    /// Stripe's error type (`card_error`, `invalid_request_error`, `api_error`, ...).
    pub error_type: String,
    /// Stripe's error code, e.g. `card_declined`.
    pub code: Option<String>,
    /// The human-readable message.
    pub message: String,
}

impl Failure {
    /// A declined card (402 `card_error`, `card_declined`).
    pub fn card_declined() -> Self {
        Self {
            status: 402,
            error_type: "card_error".into(),
            code: Some("card_declined".into()),
            message: "Your card was declined.".into(),
        }
    }

    /// Stripe having a bad moment (500 `api_error`).
    pub fn api_error() -> Self {
        Self {
            status: 500,
            error_type: "api_error".into(),
            code: None,
            message: "An unknown error occurred".into(),
        }
    }

    /// A request Stripe refuses (400 `invalid_request_error`) with `code`.
    pub fn invalid_request(code: &str, message: &str) -> Self {
        Self {
            status: 400,
            error_type: "invalid_request_error".into(),
            code: Some(code.into()),
            message: message.into(),
        }
    }
}

/// One request the fake received.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Call {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, e.g. `/v1/payment_intents`.
    pub path: String,
    /// The `Idempotency-Key` header, if sent.
    pub idempotency_key: Option<String>,
    /// The form parameters as nested JSON (`metadata[orderId]=x` → `{"metadata":{"orderId":"x"}}`).
    pub params: Value,
    /// The status answered.
    pub status: u16,
}

#[derive(Debug, Clone)]
struct StoredResponse {
    fingerprint: String,
    status: u16,
    body: String,
}

#[derive(Debug, Default)]
struct State {
    intents: HashMap<String, Value>,
    charges: HashMap<String, Value>,
    refunds: HashMap<String, Value>,
    /// (API key, Idempotency-Key) → the first answer.
    idempotency: HashMap<(String, String), StoredResponse>,
    failures: HashMap<Operation, VecDeque<Failure>>,
    calls: Vec<Call>,
}

/// Where the binary delivers the events its `/_fake/` controls cause.
#[derive(Debug, Clone)]
pub struct WebhookTarget {
    /// The endpoint, e.g. `http://127.0.0.1:3000/v1/webhooks/stripe`.
    pub url: String,
    /// The signing secret (`whsec_...`).
    pub secret: String,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    webhook: Option<WebhookTarget>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running fake Stripe server.
pub struct FakeStripe {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl FakeStripe {
    /// Starts a fake on `127.0.0.1` at a free port.
    pub async fn start() -> anyhow::Result<Self> {
        Self::serve(TcpListener::bind("127.0.0.1:0").await?, None).await
    }

    /// Serves on `listener`; with a `webhook` target the `/_fake/` controls also deliver the
    /// matching signed events there (what the binary does under `cargo xtask up`).
    pub async fn serve(
        listener: TcpListener,
        webhook: Option<WebhookTarget>,
    ) -> anyhow::Result<Self> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            webhook,
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let app = server::router(shared.clone());
        let task = tokio::spawn(async move {
            let result = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
            if let Err(error) = result {
                tracing::error!(%error, "fake Stripe server stopped");
            }
        });
        Ok(Self {
            addr,
            shared,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API base URL for `ClientBuilder::url` (ends with `/`, as async-stripe expects).
    pub fn base_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Every call received so far, oldest first.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.lock().calls.clone()
    }

    /// How many `method` calls to exactly `path` were received (e.g. `("POST",
    /// "/v1/payment_intents")`).
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.shared
            .lock()
            .calls
            .iter()
            .filter(|c| c.method == method && c.path == path)
            .count()
    }

    /// Makes the next call of `operation` answer with `failure` (failures queue up in order).
    pub fn fail_next(&self, operation: Operation, failure: Failure) {
        self.shared
            .lock()
            .failures
            .entry(operation)
            .or_default()
            .push_back(failure);
    }

    /// Every PaymentIntent created so far.
    pub fn payment_intents(&self) -> Vec<Value> {
        self.shared.lock().intents.values().cloned().collect()
    }

    /// The PaymentIntent `id` as Stripe would return it now.
    pub fn payment_intent(&self, id: &str) -> Option<Value> {
        self.shared.lock().intents.get(id).cloned()
    }

    /// The Refund `id` as Stripe would return it now.
    pub fn refund(&self, id: &str) -> Option<Value> {
        self.shared.lock().refunds.get(id).cloned()
    }

    /// The charge of a succeeded PaymentIntent (with its refunds listed).
    pub fn charge_of(&self, intent_id: &str) -> Option<Value> {
        let state = self.shared.lock();
        let charge_id = state.intents.get(intent_id)?["latest_charge"]
            .as_str()?
            .to_owned();
        state.charges.get(&charge_id).cloned()
    }

    /// The customer paid: the intent becomes `succeeded` with a captured charge. Returns it.
    pub fn succeed_intent(&self, id: &str) -> Option<Value> {
        server::succeed_intent(&mut self.shared.lock(), id)
    }

    /// The payment attempt failed with `code` (e.g. `card_declined`): the intent goes back to
    /// `requires_payment_method` with `last_payment_error` set. Returns it.
    pub fn fail_intent(&self, id: &str, code: &str, message: &str) -> Option<Value> {
        server::fail_intent(&mut self.shared.lock(), id, code, message)
    }

    /// A refund reached its final `status` (`succeeded`, `failed` or `canceled`). Returns it.
    pub fn settle_refund(&self, id: &str, status: &str) -> Option<Value> {
        server::settle_refund(&mut self.shared.lock(), id, status)
    }

    /// A dispute opened on the intent's charge.
    pub fn dispute(&self, intent_id: &str) -> Option<Value> {
        self.charge_of(intent_id)
            .map(|charge| objects::dispute(&charge))
    }

    /// An event of `event_type` for `object` (see [`objects::event`]).
    pub fn event(&self, event_type: &str, object: Value) -> Value {
        objects::event(event_type, object)
    }

    /// Stops the server.
    pub async fn stop(mut self) {
        self.shutdown();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Waits until the server stops (the binary).
    pub async fn wait(mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for FakeStripe {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Parses a Stripe form body (`a[b][c]=v`, `list[0]=x`) into nested JSON. Numeric indexes build
/// arrays; every leaf stays a string, as Stripe receives it.
pub fn parse_form(body: &[u8]) -> Value {
    let mut root = json!({});
    for (key, value) in form_urlencoded::parse(body) {
        let mut path: Vec<String> = Vec::new();
        match key.find('[') {
            Some(open) => {
                path.push(key[..open].to_owned());
                for part in key[open..].split('[').skip(1) {
                    path.push(part.trim_end_matches(']').to_owned());
                }
            }
            None => path.push(key.into_owned()),
        }
        insert_path(&mut root, &path, Value::String(value.into_owned()));
    }
    root
}

fn insert_path(node: &mut Value, path: &[String], value: Value) {
    let Some((head, rest)) = path.split_first() else {
        *node = value;
        return;
    };
    if let Ok(index) = head.parse::<usize>() {
        if !node.is_array() {
            *node = Value::Array(Vec::new());
        }
        if let Value::Array(items) = node {
            while items.len() <= index {
                items.push(Value::Null);
            }
            insert_path(&mut items[index], rest, value);
        }
        return;
    }
    if !node.is_object() {
        *node = json!({});
    }
    if let Value::Object(map) = node {
        insert_path(map.entry(head.clone()).or_insert(Value::Null), rest, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_form_keys_become_nested_json() {
        let parsed = parse_form(
            b"amount=1099&metadata%5BorderId%5D=o1&automatic_payment_methods[enabled]=true&payment_method_types[0]=card",
        );
        assert_eq!(
            parsed,
            json!({
                "amount": "1099",
                "metadata": {"orderId": "o1"},
                "automatic_payment_methods": {"enabled": "true"},
                "payment_method_types": ["card"],
            })
        );
    }
}
