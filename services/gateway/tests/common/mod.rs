//! What the gateway's integration tests share: fake services that echo what reached them, a fake
//! auth publishing a JWKS for an RSA key generated here, access-token minting, live sessions in
//! Redis, and a TCP proxy in front of Redis that a test can cut.
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, RwLock};
use std::time::Duration;

use auth_client::{AccessClaims, InternalKeys, Role};
use axum::Router;
use axum::body::Body;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use gateway_service::{GatewayService, UPSTREAMS, upstream_var};
use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sha2::Digest;
use test_support::TestApp;
use tokio::net::{TcpListener, TcpStream};
use uuid::Uuid;

/// An RSA signing key as auth would hold it.
pub struct SigningKey {
    pub kid: String,
    pub encoding: EncodingKey,
    pub public_pem: String,
    pub jwk: Value,
}

fn generate(kid: &str) -> SigningKey {
    use rsa::pkcs1::{EncodeRsaPrivateKey, EncodeRsaPublicKey, LineEnding};
    let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let pem = private.to_pkcs1_pem(LineEnding::LF).unwrap();
    let public_pem = private
        .to_public_key()
        .to_pkcs1_pem(LineEnding::LF)
        .unwrap();
    let encoding = EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
    let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256).unwrap();
    jwk.common.key_id = Some(kid.to_owned());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    jwk.common.key_algorithm = Some(KeyAlgorithm::RS256);
    SigningKey {
        kid: kid.to_owned(),
        encoding,
        public_pem,
        jwk: serde_json::to_value(jwk).unwrap(),
    }
}

/// The key the fake auth publishes.
pub static KEY: LazyLock<SigningKey> = LazyLock::new(|| generate("key-1"));
/// A key auth never published (or publishes later, for rotation).
pub static OTHER_KEY: LazyLock<SigningKey> = LazyLock::new(|| generate("key-2"));

/// Claims of a fresh access token for a new user and session.
pub fn claims(role: Role) -> AccessClaims {
    let now = chrono::Utc::now().timestamp();
    AccessClaims {
        iss: auth_client::access::ACCESS_ISSUER.to_owned(),
        aud: auth_client::access::ACCESS_AUDIENCE.to_owned(),
        sub: Uuid::now_v7(),
        role,
        sid: Uuid::now_v7(),
        amr: vec!["pwd".to_owned()],
        jti: Uuid::now_v7(),
        iat: now,
        exp: now + 900,
    }
}

/// Signs `claims` with `key` (RS256, `kid` header).
pub fn sign(key: &SigningKey, claims: &impl serde::Serialize) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
}

/// URL-safe base64 without padding.
pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Sets or removes a live session.
pub async fn redis() -> redis::aio::MultiplexedConnection {
    redis::Client::open("redis://127.0.0.1:6379")
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// A fake service that echoes what reached it.
pub struct Fake {
    pub name: &'static str,
    pub url: String,
    pub hits: Arc<AtomicUsize>,
    pub jwks: Arc<RwLock<Value>>,
    pub jwks_fetches: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct FakeState {
    name: &'static str,
    hits: Arc<AtomicUsize>,
    jwks: Arc<RwLock<Value>>,
    jwks_fetches: Arc<AtomicUsize>,
}

fn verify_internal(headers: &HeaderMap) -> Result<auth_client::InternalClaims, Response> {
    let token = headers
        .get(auth_client::INTERNAL_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| (StatusCode::UNAUTHORIZED, "no internal token").into_response())?;
    InternalKeys::development()
        .verify(token)
        .map_err(|_| (StatusCode::UNAUTHORIZED, "bad internal token").into_response())
}

async fn echo(
    State(state): State<FakeState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    state.hits.fetch_add(1, Ordering::SeqCst);
    let claims = match verify_internal(request.headers()) {
        Ok(claims) => claims,
        Err(response) => return response,
    };
    let path = request
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str().to_owned())
        .unwrap_or_default();
    if path.contains("/slow") {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    if path.contains("/download") {
        // 4 MB streamed in 64 KB chunks.
        let chunks = futures::stream::iter(
            (0..64u8).map(|i| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![i; 64 * 1024]))),
        );
        return Body::from_stream(chunks).into_response();
    }
    let mut headers = BTreeMap::new();
    for (name, value) in request.headers() {
        headers
            .entry(name.as_str().to_owned())
            .or_insert_with(Vec::new)
            .push(value.to_str().unwrap_or("<binary>").to_owned());
    }
    let method = request.method().to_string();
    let body = axum::body::to_bytes(request.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    let text = if body.len() <= 64 * 1024 {
        String::from_utf8(body.to_vec()).ok()
    } else {
        None
    };
    axum::Json(json!({
        "service": state.name,
        "peer": peer.to_string(),
        "method": method,
        "path": path,
        "headers": headers,
        "claims": claims,
        "bodyLen": body.len(),
        "bodySha256": hex::encode(sha2::Sha256::digest(&body)),
        "bodyText": text,
    }))
    .into_response()
}

async fn jwks(State(state): State<FakeState>, headers: HeaderMap) -> Response {
    state.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    match verify_internal(&headers) {
        Ok(claims) if claims.service_name() == Some("gateway") => {
            axum::Json(state.jwks.read().unwrap().clone()).into_response()
        }
        Ok(_) => (StatusCode::FORBIDDEN, "services only").into_response(),
        Err(response) => response,
    }
}

async fn openapi(State(state): State<FakeState>) -> Response {
    let paths = match state.name {
        "product" => json!({
            "/v1/products": { "get": { "responses": { "200": { "description": "ok" } } } },
            "/internal/products/lookup": { "post": { "responses": { "200": { "description": "ok" } } } }
        }),
        "customer" => json!({
            "/v1/products/{id}/reviews": { "get": { "responses": { "200": { "description": "ok" } } } },
            "/v1/profile": { "get": { "responses": { "200": { "description": "ok" } } } }
        }),
        _ => json!({}),
    };
    axum::Json(json!({
        "openapi": "3.1.0",
        "info": { "title": state.name, "version": "1" },
        "paths": paths,
        "components": { "schemas": { format!("{}Thing", state.name): { "type": "object" } } }
    }))
    .into_response()
}

async fn ws(
    State(state): State<FakeState>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let kind = match verify_internal(&headers) {
        Ok(claims) => serde_json::to_value(claims.kind).unwrap(),
        Err(response) => return response,
    };
    state.hits.fetch_add(1, Ordering::SeqCst);
    upgrade.on_upgrade(move |socket: WebSocket| async move {
        let mut socket = socket;
        let _ = socket
            .send(Message::Text(format!("hello {kind}").into()))
            .await;
        while let Some(Ok(message)) = socket.recv().await {
            if let Message::Text(text) = message
                && socket
                    .send(Message::Text(format!("echo: {text}").into()))
                    .await
                    .is_err()
            {
                break;
            }
        }
    })
}

/// Starts a fake `name` service on 127.0.0.1:0.
pub async fn fake(name: &'static str) -> Fake {
    let state = FakeState {
        name,
        hits: Arc::default(),
        jwks: Arc::new(RwLock::new(json!({ "keys": [KEY.jwk.clone()] }))),
        jwks_fetches: Arc::default(),
    };
    let router = Router::new()
        .route("/openapi.json", get(openapi))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/v1/notifications/ws", any(ws))
        .fallback(echo)
        .with_state(state.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    Fake {
        name,
        url: format!("http://{addr}"),
        hits: state.hits,
        jwks: state.jwks,
        jwks_fetches: state.jwks_fetches,
    }
}

/// A gateway in front of eight fake services.
pub struct Setup {
    pub gateway: TestApp,
    pub fakes: Vec<Fake>,
    /// Auth's session key prefix this gateway reads.
    pub session_prefix: String,
}

impl Setup {
    /// The fake called `name`.
    pub fn fake(&self, name: &str) -> &Fake {
        self.fakes.iter().find(|f| f.name == name).unwrap()
    }

    /// Makes the session of `claims` live in Redis.
    pub async fn open_session(&self, claims: &AccessClaims) {
        let key = auth_client::session_key(&self.session_prefix, claims.sid);
        let _: () = redis::cmd("SET")
            .arg(&key)
            .arg(claims.sub.to_string())
            .arg("EX")
            .arg(900)
            .query_async(&mut redis().await)
            .await
            .unwrap();
    }

    /// Ends the session of `claims`.
    pub async fn end_session(&self, claims: &AccessClaims) {
        let key = auth_client::session_key(&self.session_prefix, claims.sid);
        let _: () = redis::cmd("DEL")
            .arg(&key)
            .query_async(&mut redis().await)
            .await
            .unwrap();
    }

    /// A signed-in user with a live session and their token.
    pub async fn user(&self, role: Role) -> (AccessClaims, String) {
        let claims = claims(role);
        self.open_session(&claims).await;
        let token = sign(&KEY, &claims);
        (claims, token)
    }

    /// `GET path` through the gateway with optional bearer token.
    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.gateway.client.get(self.gateway.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }
}

/// Spawns fakes for every service and a gateway in front of them with `extra` settings.
pub async fn setup(extra: &[(&str, &str)]) -> Setup {
    setup_with_redis(extra, None).await
}

/// Like [`setup`], with the gateway's Redis at `redis_url`.
pub async fn setup_with_redis(extra: &[(&str, &str)], redis_url: Option<&str>) -> Setup {
    let mut fakes = Vec::new();
    for (name, _) in UPSTREAMS {
        fakes.push(fake(name).await);
    }
    let session_prefix = format!("test-{}-auth", test_support::unique_suffix());
    let mut env: Vec<(String, String)> = fakes
        .iter()
        .map(|f| (upstream_var(f.name), f.url.clone()))
        .collect();
    env.push(("SESSION_KEY_PREFIX".into(), session_prefix.clone()));
    env.push(("JWKS_MIN_REFETCH_MS".into(), "0".into()));
    if let Some(url) = redis_url {
        env.push(("REDIS_URL".into(), url.to_owned()));
    }
    for (k, v) in extra {
        env.retain(|(name, _)| name != k);
        env.push(((*k).to_owned(), (*v).to_owned()));
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let gateway = TestApp::spawn_with::<GatewayService>(&env).await;
    Setup {
        gateway,
        fakes,
        session_prefix,
    }
}

/// The problem document of a response, asserting its media type.
pub async fn problem(response: reqwest::Response) -> Value {
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json",
        "status {}",
        response.status()
    );
    response.json().await.unwrap()
}

/// A TCP proxy in front of the local Redis that can be cut, to take Redis away from a running
/// gateway.
pub struct RedisProxy {
    pub url: String,
    connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: tokio::task::AbortHandle,
}

impl RedisProxy {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let tracked = connections.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect("127.0.0.1:6379").await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tracked.lock().unwrap().push(task.abort_handle());
            }
        })
        .abort_handle();
        Self {
            url: format!("redis://{addr}"),
            connections,
            accept,
        }
    }

    /// Closes the port and every connection through it.
    pub fn cut(&self) {
        self.accept.abort();
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }
}

/// A request body sent in `chunks` with no declared length (chunked transfer encoding).
pub fn chunked(chunks: Vec<Vec<u8>>) -> reqwest::Body {
    let frames = futures::stream::iter(
        chunks
            .into_iter()
            .map(|c| Ok::<_, std::io::Error>(hyper::body::Frame::data(bytes::Bytes::from(c)))),
    );
    reqwest::Body::wrap(http_body_util::StreamBody::new(frames))
}
