//! `PeerClient` against a peer that fails: the circuit breaker stops calls from reaching it, a
//! probe closes the breaker once it is back, and retries stay within the budget and never touch
//! `POST`. The peer is a raw TCP server that counts every connection it accepts and closes each
//! after one answer, so a count of accepts is a count of attempts.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use service_kit::breaker::{BreakerConfig, BreakerState, ResilienceConfig, RetryConfig};
use service_kit::{InternalKeys, PeerClient, PeerError, Problem};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the fake peer treats a connection.
const HEALTHY: u8 = 0;
/// Accepts and closes without a word.
const HANGS_UP: u8 = 1;
/// Answers 503.
const UNAVAILABLE: u8 = 2;

struct FakePeer {
    url: String,
    accepted: Arc<AtomicUsize>,
    mode: Arc<AtomicU8>,
}

impl FakePeer {
    async fn start(mode: u8) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let mode = Arc::new(AtomicU8::new(mode));
        let (count, current) = (accepted.clone(), mode.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(answer(stream, current.load(Ordering::SeqCst)));
            }
        });
        Self {
            url,
            accepted,
            mode,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }
}

/// Reads one request (head and `Content-Length` body), answers it per `mode` and closes.
async fn answer(mut stream: TcpStream, mode: u8) {
    if mode == HANGS_UP {
        return;
    }
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let Ok(n) = stream.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        received.extend_from_slice(&chunk[..n]);
        if let Some(at) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&received[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while received.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => received.extend_from_slice(&chunk[..n]),
        }
    }
    let (status, body) = if mode == HEALTHY {
        ("200 OK", r#"{"ok":true}"#)
    } else {
        ("503 Service Unavailable", r#"{"status":503}"#)
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn client(peer: &'static str, url: &str, resilience: ResilienceConfig) -> PeerClient {
    PeerClient::new(
        "customer",
        peer,
        url,
        Duration::from_secs(2),
        InternalKeys::development(),
    )
    .unwrap()
    .with_resilience(&resilience)
}

/// Metric lines labelled with `upstream`.
fn metrics_of(upstream: &str) -> Vec<String> {
    service_kit::metrics::handle()
        .render()
        .lines()
        .filter(|l| l.contains(&format!("upstream=\"{upstream}\"")))
        .map(str::to_owned)
        .collect()
}

fn metric(lines: &[String], name: &str, label: &str) -> Option<f64> {
    lines
        .iter()
        .find(|l| l.starts_with(&format!("{name}{{")) && l.contains(label))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn a_failing_peer_opens_the_breaker_which_keeps_calls_off_it_until_a_probe_succeeds() {
    let peer = FakePeer::start(HANGS_UP).await;
    let cool_down = Duration::from_millis(400);
    let resilience = ResilienceConfig {
        breaker: BreakerConfig {
            consecutive_failures: 3,
            cool_down,
            ..BreakerConfig::default()
        },
        retry: RetryConfig {
            max_retries: 0,
            ..RetryConfig::default()
        },
    };
    let client = client("peer-breaker-open", &peer.url, resilience);

    for _ in 0..3 {
        let error = client.get::<serde_json::Value>("/x").await.unwrap_err();
        assert!(matches!(error, PeerError::Unavailable { .. }), "{error:?}");
    }
    assert_eq!(peer.accepted(), 3);
    assert_eq!(client.breaker().state(), BreakerState::Open);

    // Open: the same 503 at once, and the peer sees nothing — not even with copies of the client.
    let on_behalf = client.clone();
    for _ in 0..20 {
        let error = on_behalf.get::<serde_json::Value>("/x").await.unwrap_err();
        assert!(matches!(error, PeerError::Unavailable { .. }), "{error:?}");
        assert_eq!(Problem::from(error).status_code().as_u16(), 503);
    }
    assert_eq!(
        peer.accepted(),
        3,
        "no connection while the breaker is open"
    );

    // The peer comes back; after the cool-down one probe goes through and closes the breaker.
    peer.set(HEALTHY);
    tokio::time::sleep(cool_down + Duration::from_millis(100)).await;
    let answer: serde_json::Value = client.get("/x").await.unwrap();
    assert_eq!(answer["ok"], true);
    assert_eq!(peer.accepted(), 4);
    assert_eq!(client.breaker().state(), BreakerState::Closed);
    let _: serde_json::Value = client.get("/x").await.unwrap();
    assert_eq!(peer.accepted(), 5);

    let lines = metrics_of("peer-breaker-open");
    assert_eq!(
        metric(&lines, "circuit_breaker_state", "upstream"),
        Some(0.0),
        "{lines:?}"
    );
    for to in ["open", "half_open", "closed"] {
        assert_eq!(
            metric(
                &lines,
                "circuit_breaker_transitions_total",
                &format!("to=\"{to}\"")
            ),
            Some(1.0),
            "{to}: {lines:?}"
        );
    }
    assert_eq!(
        metric(&lines, "circuit_breaker_rejected_total", "upstream"),
        Some(20.0),
        "{lines:?}"
    );
}

#[tokio::test]
async fn a_failed_probe_opens_the_breaker_again() {
    let peer = FakePeer::start(UNAVAILABLE).await;
    let cool_down = Duration::from_millis(300);
    let resilience = ResilienceConfig {
        breaker: BreakerConfig {
            consecutive_failures: 2,
            cool_down,
            ..BreakerConfig::default()
        },
        retry: RetryConfig {
            max_retries: 0,
            ..RetryConfig::default()
        },
    };
    let client = client("peer-breaker-reopen", &peer.url, resilience);
    for _ in 0..2 {
        client.get::<serde_json::Value>("/x").await.unwrap_err();
    }
    assert_eq!(client.breaker().state(), BreakerState::Open);
    tokio::time::sleep(cool_down + Duration::from_millis(100)).await;
    client.get::<serde_json::Value>("/x").await.unwrap_err();
    assert_eq!(peer.accepted(), 3, "one probe");
    assert_eq!(client.breaker().state(), BreakerState::Open);
    client.get::<serde_json::Value>("/x").await.unwrap_err();
    assert_eq!(peer.accepted(), 3, "a new cool-down");
}

#[tokio::test]
async fn posts_are_never_retried_and_gets_are_retried_only_within_the_budget() {
    let peer = FakePeer::start(UNAVAILABLE).await;
    let resilience = ResilienceConfig {
        // Never opens: this test is about retries alone.
        breaker: BreakerConfig {
            consecutive_failures: 0,
            failure_rate_percent: 0,
            ..BreakerConfig::default()
        },
        retry: RetryConfig {
            max_retries: 2,
            budget_percent: 50,
            budget_floor_per_sec: 0,
            backoff_base: Duration::from_millis(2),
            backoff_max: Duration::from_millis(10),
        },
    };
    let client = client("peer-retry-budget", &peer.url, resilience);

    for _ in 0..10 {
        let error = client
            .post::<_, serde_json::Value>("/x", &serde_json::json!({"n": 1}))
            .await
            .unwrap_err();
        assert!(matches!(error, PeerError::Unavailable { .. }), "{error:?}");
    }
    assert_eq!(peer.accepted(), 10, "a POST is sent once");

    let calls = 20;
    for _ in 0..calls {
        client.get::<serde_json::Value>("/x").await.unwrap_err();
    }
    let retries = peer.accepted() - 10 - calls;
    // The budget starts with ten retries and earns one for every two calls (the 10 POSTs found
    // it full); without it, each GET would have been tried three times (40 retries).
    assert!(retries > 0, "GETs are retried");
    assert!(retries <= 10 + calls / 2, "{retries} retries");
    let lines = metrics_of("peer-retry-budget");
    assert_eq!(
        metric(&lines, "upstream_retries_total", "upstream"),
        Some(retries as f64),
        "{lines:?}"
    );
    assert!(
        metric(&lines, "upstream_retry_budget_exhausted_total", "upstream").unwrap_or(0.0) > 0.0,
        "{lines:?}"
    );

    peer.set(HEALTHY);
    let _: serde_json::Value = client.get("/x").await.unwrap();
}

#[tokio::test]
async fn a_peer_refusing_connections_is_retried() {
    // A port nobody listens on.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let resilience = ResilienceConfig {
        breaker: BreakerConfig {
            consecutive_failures: 2,
            ..BreakerConfig::default()
        },
        retry: RetryConfig {
            max_retries: 1,
            backoff_base: Duration::from_millis(1),
            ..RetryConfig::default()
        },
    };
    let client = client("peer-refused", &format!("http://{addr}"), resilience);
    client.get::<serde_json::Value>("/x").await.unwrap_err();
    // The refused first attempt and its refused retry: two failures in a row.
    assert_eq!(client.breaker().state(), BreakerState::Open);
    let lines = metrics_of("peer-refused");
    assert_eq!(
        metric(&lines, "upstream_retries_total", "upstream"),
        Some(1.0),
        "{lines:?}"
    );
}

#[tokio::test]
async fn refusals_are_answers_and_do_not_count_against_the_peer() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = axum::Router::new().route(
        "/x",
        axum::routing::get(|| async { axum::http::StatusCode::CONFLICT }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    let resilience = ResilienceConfig {
        breaker: BreakerConfig {
            consecutive_failures: 2,
            ..BreakerConfig::default()
        },
        retry: RetryConfig::default(),
    };
    let client = client("peer-rejects", &url, resilience);
    for _ in 0..5 {
        let error = client.get::<serde_json::Value>("/x").await.unwrap_err();
        assert_eq!(error.rejected_status().map(|s| s.as_u16()), Some(409));
    }
    assert_eq!(client.breaker().state(), BreakerState::Closed);
    assert_eq!(
        metric(
            &metrics_of("peer-rejects"),
            "upstream_retries_total",
            "upstream"
        ),
        Some(0.0)
    );
}
