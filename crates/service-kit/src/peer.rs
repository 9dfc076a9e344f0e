//! Calls from one service to another's `/internal` API.
//!
//! A [`PeerClient`] speaks JSON to one peer service. Every call carries a freshly minted internal
//! token (naming the calling service, or forwarding a signed-in caller's identity with
//! [`PeerClient::on_behalf_of`]), the current request id and the W3C `traceparent`, so a request can
//! be followed across services. Failures come back as a [`PeerError`] that separates "the peer is
//! away" (retry later, 502/503/504 to our client) from "the peer refused this request" (a 4xx the
//! caller may want to translate, e.g. a reservation's 409).
//!
//! Each client guards its peer with a circuit breaker and a retry budget ([`crate::breaker`],
//! shared by the client's copies): while the breaker is open a call fails at once as
//! [`PeerError::Unavailable`] (503 to our client) without a connection being made. Unreachable
//! peers, timeouts and 5xx answers count as failures; 4xx and unreadable 2xx answers do not (the
//! peer is up). Idempotent calls (`GET`; see [`crate::breaker::is_idempotent`]) are retried after a
//! jittered backoff when the peer could not be reached or answered 502/503/504, within the budget;
//! a timeout is not retried (the caller's time is spent), and neither is any `POST`.

use std::sync::Arc;
use std::time::Duration;

use auth_client::{INTERNAL_TOKEN_HEADER, InternalClaims, InternalKeys};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::breaker::{Breaker, Rejected, ResilienceConfig, RetryBudget, is_idempotent};
use crate::caller::Caller;
use crate::config::CommonConfig;
use crate::problem::Problem;
use crate::request_id;

/// Why a call to a peer service did not produce the expected answer.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The peer could not be reached, or answered 5xx.
    #[error("{peer} is unavailable: {detail}")]
    Unavailable {
        /// The peer's name.
        peer: &'static str,
        /// What happened (for logs only).
        detail: String,
    },
    /// The peer did not answer within the client's timeout.
    #[error("{peer} timed out")]
    Timeout {
        /// The peer's name.
        peer: &'static str,
    },
    /// The peer answered with a 4xx: the request itself was refused.
    #[error("{peer} refused the request with {status}")]
    Rejected {
        /// The peer's name.
        peer: &'static str,
        /// Its status.
        status: StatusCode,
        /// Its body (usually a problem document), `Null` when it was not JSON.
        body: serde_json::Value,
    },
    /// The peer answered 2xx with a body we could not decode.
    #[error("{peer} sent an unreadable answer: {detail}")]
    Invalid {
        /// The peer's name.
        peer: &'static str,
        /// The decoding error (for logs only).
        detail: String,
    },
}

impl PeerError {
    /// The status of a [`PeerError::Rejected`], `None` for the other kinds.
    pub fn rejected_status(&self) -> Option<StatusCode> {
        match self {
            Self::Rejected { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl From<PeerError> for Problem {
    /// Our client gets a gateway-style status naming nothing internal; the cause is logged.
    fn from(error: PeerError) -> Self {
        tracing::warn!(%error, "peer call failed");
        match error {
            PeerError::Timeout { .. } => Problem::new(
                StatusCode::GATEWAY_TIMEOUT,
                "upstream-timeout",
                "Upstream timeout",
            )
            .with_detail("A service this request depends on did not answer in time."),
            PeerError::Unavailable { .. } => {
                Problem::unavailable("A service this request depends on is unavailable.")
            }
            PeerError::Rejected { .. } | PeerError::Invalid { .. } => {
                Problem::new(StatusCode::BAD_GATEWAY, "bad-gateway", "Bad gateway")
                    .with_detail("A service this request depends on gave an unexpected answer.")
            }
        }
    }
}

/// A JSON client of one peer service's `/internal` API.
#[derive(Clone)]
pub struct PeerClient {
    http: reqwest::Client,
    caller_service: &'static str,
    peer: &'static str,
    base_url: String,
    keys: InternalKeys,
    on_behalf_of: Option<InternalClaims>,
    breaker: Arc<Breaker>,
    budget: Arc<RetryBudget>,
}

impl std::fmt::Debug for PeerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerClient")
            .field("caller_service", &self.caller_service)
            .field("peer", &self.peer)
            .field("base_url", &self.base_url)
            .field("breaker", &self.breaker.state())
            .finish_non_exhaustive()
    }
}

impl PeerClient {
    /// A client with which `caller_service` calls `peer` at `base_url` (no trailing slash needed),
    /// giving up on a call after `timeout`. `keys` must be able to mint. Its breaker and retry
    /// budget use [`ResilienceConfig::default`]; see [`PeerClient::with_resilience`].
    pub fn new(
        caller_service: &'static str,
        peer: &'static str,
        base_url: impl Into<String>,
        timeout: Duration,
        keys: InternalKeys,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(
            keys.can_mint(),
            "{caller_service} needs the internal private key to call {peer}"
        );
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(2)))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()?;
        let resilience = ResilienceConfig::default();
        Ok(Self {
            http,
            caller_service,
            peer,
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            keys,
            on_behalf_of: None,
            breaker: Arc::new(Breaker::new(peer, resilience.breaker)),
            budget: Arc::new(RetryBudget::new(peer, resilience.retry)),
        })
    }

    /// The client with which the service `common` configures calls `peer` at `base_url`: named
    /// after the service, minting with its internal keys, and with the breaker and retry budget
    /// of its `PEER_BREAKER_*` / `PEER_RETRY_*` settings ([`CommonConfig::peer_resilience`]), so
    /// operators tune them without a rebuild.
    ///
    /// # Errors
    /// As [`PeerClient::new`].
    pub fn for_service(
        common: &CommonConfig,
        peer: &'static str,
        base_url: impl Into<String>,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        Ok(Self::new(
            common.service.name,
            peer,
            base_url,
            timeout,
            common.internal_keys.clone(),
        )?
        .with_resilience(&common.peer_resilience))
    }

    /// This client with a fresh breaker and retry budget configured by `config` (e.g. read with
    /// [`ResilienceConfig::from_env`]`(env, "PEER_")`).
    pub fn with_resilience(self, config: &ResilienceConfig) -> Self {
        Self {
            breaker: Arc::new(Breaker::new(self.peer, config.breaker.clone())),
            budget: Arc::new(RetryBudget::new(self.peer, config.retry.clone())),
            ..self
        }
    }

    /// The breaker guarding the peer (shared by this client's copies).
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// The peer's name.
    pub fn peer(&self) -> &'static str {
        self.peer
    }

    /// A copy of this client whose calls carry `caller`'s identity instead of the service's own
    /// (for peers that check the end user, e.g. ownership). Shares the connection pool.
    pub fn on_behalf_of(&self, caller: &Caller) -> Self {
        let mut claims = InternalClaims::user(
            self.caller_service,
            caller.user_id,
            caller.role,
            caller.session_id,
        )
        .with_amr(caller.amr.clone());
        if let Some(id) = &caller.request_id {
            claims = claims.with_request_id(id.clone());
        }
        Self {
            on_behalf_of: Some(claims),
            ..self.clone()
        }
    }

    /// `GET {base_url}{path}`, decoding a JSON answer.
    pub async fn get<R: DeserializeOwned>(&self, path: &str) -> Result<R, PeerError> {
        let request = self.http.get(self.url(path));
        self.send(request).await
    }

    /// `POST {base_url}{path}` with a JSON body, decoding a JSON answer.
    pub async fn post<B: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<R, PeerError> {
        let request = self.http.post(self.url(path)).json(body);
        self.send(request).await
    }

    /// `POST {base_url}{path}` with a JSON body, ignoring any answer body (for 204s).
    pub async fn post_no_content<B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<(), PeerError> {
        let request = self.http.post(self.url(path)).json(body);
        self.send_raw(request).await.map(|_| ())
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    fn headers(&self) -> Result<HeaderMap, PeerError> {
        let request_id = request_id::current();
        let claims = match &self.on_behalf_of {
            Some(claims) => claims.clone(),
            None => {
                let claims = InternalClaims::service(self.caller_service);
                match &request_id {
                    Some(id) => claims.with_request_id(id.clone()),
                    None => claims,
                }
            }
        };
        let token = self.keys.mint(claims).map_err(|e| PeerError::Unavailable {
            peer: self.peer,
            detail: format!("cannot mint an internal token: {e}"),
        })?;
        let mut headers = HeaderMap::new();
        let token = HeaderValue::from_str(&token).map_err(|e| PeerError::Unavailable {
            peer: self.peer,
            detail: format!("unusable internal token: {e}"),
        })?;
        headers.insert(INTERNAL_TOKEN_HEADER, token);
        if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
            headers.insert(request_id::X_REQUEST_ID.clone(), id);
        }
        crate::telemetry::inject_current(&mut headers);
        Ok(headers)
    }

    /// Sends `request`, through the breaker, retrying it within the budget when that is safe.
    async fn send_raw(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, PeerError> {
        let request =
            request
                .headers(self.headers()?)
                .build()
                .map_err(|e| PeerError::Unavailable {
                    peer: self.peer,
                    detail: format!("cannot build the request: {e}"),
                })?;
        let retryable = is_idempotent(request.method());
        self.budget.deposit();
        let mut request = request;
        let mut retry = 0;
        loop {
            let permit = self
                .breaker
                .try_acquire()
                .map_err(|rejected| self.circuit_open(rejected))?;
            // Only a body held in memory can be sent again; ours always is.
            let spare = if retryable { request.try_clone() } else { None };
            let (outcome, worth_retrying) = self.attempt(request).await;
            permit.record(!matches!(
                outcome,
                Err(PeerError::Unavailable { .. } | PeerError::Timeout { .. })
            ));
            match (outcome, spare) {
                (Err(error), Some(spare)) if worth_retrying && self.budget.try_spend(retry + 1) => {
                    retry += 1;
                    tracing::debug!(peer = self.peer, retry, %error, "retrying a peer call");
                    tokio::time::sleep(self.budget.backoff(retry)).await;
                    request = spare;
                }
                (outcome, _) => return outcome,
            }
        }
    }

    /// One attempt, and whether its failure is worth another (the peer was not reached, or said
    /// it is momentarily unable to answer).
    async fn attempt(
        &self,
        request: reqwest::Request,
    ) -> (Result<reqwest::Response, PeerError>, bool) {
        let response = match self.http.execute(request).await {
            Ok(response) => response,
            Err(e) => return (Err(self.transport_error(&e)), e.is_connect()),
        };
        let status = response.status();
        if status.is_server_error() {
            let transient = matches!(
                status,
                StatusCode::BAD_GATEWAY
                    | StatusCode::SERVICE_UNAVAILABLE
                    | StatusCode::GATEWAY_TIMEOUT
            );
            return (
                Err(PeerError::Unavailable {
                    peer: self.peer,
                    detail: format!("answered {status}"),
                }),
                transient,
            );
        }
        if status.is_client_error() {
            let body = response
                .json::<serde_json::Value>()
                .await
                .unwrap_or(serde_json::Value::Null);
            return (
                Err(PeerError::Rejected {
                    peer: self.peer,
                    status,
                    body,
                }),
                false,
            );
        }
        (Ok(response), false)
    }

    fn circuit_open(&self, rejected: Rejected) -> PeerError {
        PeerError::Unavailable {
            peer: self.peer,
            detail: format!(
                "circuit breaker open, next try in {} ms",
                rejected.retry_after.as_millis()
            ),
        }
    }

    async fn send<R: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<R, PeerError> {
        let response = self.send_raw(request).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(&e))?;
        serde_json::from_slice(&bytes).map_err(|e| PeerError::Invalid {
            peer: self.peer,
            detail: e.to_string(),
        })
    }

    fn transport_error(&self, error: &reqwest::Error) -> PeerError {
        if error.is_timeout() {
            PeerError::Timeout { peer: self.peer }
        } else {
            PeerError::Unavailable {
                peer: self.peer,
                detail: error.to_string(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use axum::Json;
    use axum::Router;
    use axum::extract::Request;
    use axum::routing::{get, post};

    async fn serve(router: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        format!("http://{addr}")
    }

    fn client(base: String, timeout: Duration) -> PeerClient {
        PeerClient::new(
            "customer",
            "product",
            base,
            timeout,
            InternalKeys::development(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_call_carries_a_token_naming_the_calling_service_and_decodes_the_answer() {
        let base = serve(Router::new().route(
            "/internal/echo",
            post(|request: Request| async move {
                let token = request.headers()[INTERNAL_TOKEN_HEADER].to_str().unwrap();
                let claims = InternalKeys::development().verify(token).unwrap();
                Json(serde_json::json!({ "issuer": claims.iss, "user": claims.user_id() }))
            }),
        ))
        .await;
        let answer: serde_json::Value = client(base, Duration::from_secs(2))
            .post("/internal/echo", &serde_json::json!({}))
            .await
            .unwrap();
        assert_eq!(answer["issuer"], "customer");
        assert!(answer["user"].is_null());
    }

    #[tokio::test]
    async fn a_service_client_takes_its_breaker_and_retries_from_peer_settings() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&hits);
        let base = serve(Router::new().route(
            "/internal/flaky",
            get(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                async { StatusCode::SERVICE_UNAVAILABLE }
            }),
        ))
        .await;
        let spec = crate::ServiceSpec {
            name: "customer",
            default_port: 3007,
            database: None,
        };
        let common = CommonConfig::from_env(
            spec,
            &crate::Env::from_pairs([
                ("PEER_BREAKER_FAILURES", "1"),
                ("PEER_BREAKER_COOL_DOWN_MS", "600000"),
                ("PEER_RETRY_MAX", "0"),
            ]),
        )
        .unwrap();
        let client =
            PeerClient::for_service(&common, "product", base, Duration::from_secs(2)).unwrap();
        assert_eq!(client.breaker().config().consecutive_failures, 1);

        // No retry (PEER_RETRY_MAX=0), and one failure opens the breaker (the default needs
        // more), so the second call fails without reaching the peer.
        let first = client.get::<serde_json::Value>("/internal/flaky").await;
        assert!(
            matches!(first, Err(PeerError::Unavailable { .. })),
            "{first:?}"
        );
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        assert_eq!(client.breaker().state(), crate::breaker::BreakerState::Open);
        let second = client.get::<serde_json::Value>("/internal/flaky").await;
        assert!(
            matches!(second, Err(PeerError::Unavailable { .. })),
            "{second:?}"
        );
        assert_eq!(
            hits.load(Ordering::SeqCst),
            1,
            "an open breaker sends nothing"
        );
    }

    #[tokio::test]
    async fn on_behalf_of_forwards_the_callers_identity() {
        let base = serve(Router::new().route(
            "/internal/me",
            get(|request: Request| async move {
                let token = request.headers()[INTERNAL_TOKEN_HEADER].to_str().unwrap();
                let claims = InternalKeys::development().verify(token).unwrap();
                Json(serde_json::json!({ "user": claims.user_id() }))
            }),
        ))
        .await;
        let caller = Caller {
            user_id: uuid::Uuid::now_v7(),
            role: auth_client::Role::Customer,
            session_id: uuid::Uuid::now_v7(),
            amr: vec!["pwd".into()],
            request_id: Some("req-1".into()),
        };
        let answer: serde_json::Value = client(base, Duration::from_secs(2))
            .on_behalf_of(&caller)
            .get("/internal/me")
            .await
            .unwrap();
        assert_eq!(answer["user"], caller.user_id.to_string());
    }

    #[tokio::test]
    async fn a_4xx_is_rejected_with_its_body_and_a_5xx_is_unavailable() {
        let base = serve(
            Router::new()
                .route(
                    "/conflict",
                    get(|| async {
                        (
                            StatusCode::CONFLICT,
                            Json(serde_json::json!({ "code": "short" })),
                        )
                    }),
                )
                .route("/broken", get(|| async { StatusCode::BAD_GATEWAY })),
        )
        .await;
        let peer = client(base, Duration::from_secs(2));
        match peer.get::<serde_json::Value>("/conflict").await {
            Err(PeerError::Rejected { status, body, .. }) => {
                assert_eq!(status, StatusCode::CONFLICT);
                assert_eq!(body["code"], "short");
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
        let error = peer.get::<serde_json::Value>("/broken").await.unwrap_err();
        assert!(matches!(error, PeerError::Unavailable { .. }), "{error:?}");
        assert_eq!(
            Problem::from(error).status_code(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[tokio::test]
    async fn a_slow_peer_times_out_as_504_and_an_absent_one_is_unavailable() {
        let base = serve(Router::new().route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        ))
        .await;
        let error = client(base, Duration::from_millis(100))
            .get::<serde_json::Value>("/slow")
            .await
            .unwrap_err();
        assert!(matches!(error, PeerError::Timeout { .. }), "{error:?}");
        assert_eq!(
            Problem::from(error).status_code(),
            StatusCode::GATEWAY_TIMEOUT
        );

        // A port nobody listens on: bind, learn the port, close.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let error = client(format!("http://{addr}"), Duration::from_secs(1))
            .get::<serde_json::Value>("/anything")
            .await
            .unwrap_err();
        assert!(matches!(error, PeerError::Unavailable { .. }), "{error:?}");
    }
}
