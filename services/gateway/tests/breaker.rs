//! Circuit breaking and retries at the gateway: a stopped service opens its breaker, after which
//! the gateway answers 503 at once without contacting it (counted at the service's socket) until
//! a probe after the cool-down finds it back; `POST`s are never retried; `GET`s whose connection
//! is refused are retried only within the budget. The metrics are process-wide and every gateway
//! registers every service's breaker, so under `cargo test` (one process) the tests take turns.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{problem, setup};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A service that counts the connections it accepts and answers each one request with `status`
/// (and closes it, so every attempt is a new connection).
struct Counting {
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Counting {
    async fn bind(addr: SocketAddr, status: &'static str) -> Self {
        let listener = TcpListener::bind(addr).await.unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(answer(stream, status));
            }
        });
        Self { accepted, task }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Counting {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(mut stream: TcpStream, status: &'static str) {
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => received.extend_from_slice(&chunk[..n]),
        }
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
    let body = r#"{"ok":true}"#;
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// An address nobody listens on (bound, learnt, released).
async fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// The value of the `name` series whose labels contain all of `labels`.
fn metric(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(&format!("{name}{{")) && labels.iter().all(|x| l.contains(x)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn a_stopped_service_opens_its_breaker_and_gets_no_connections_until_a_probe_finds_it_back() {
    let _turn = SERIAL.lock().await;
    let addr = free_addr().await;
    let cool_down = Duration::from_millis(1500);
    let s = setup(&[
        ("UPSTREAM_PRODUCT_URL", &format!("http://{addr}")),
        ("UPSTREAM_BREAKER_FAILURES", "3"),
        ("UPSTREAM_BREAKER_COOL_DOWN_MS", "1500"),
        ("UPSTREAM_RETRY_MAX", "0"),
    ])
    .await;

    // Stopped: connections are refused, three times in a row.
    for _ in 0..3 {
        let response = s.get("/v1/products", None).await;
        assert_eq!(response.status(), 503);
        assert!(response.headers().get("retry-after").is_none());
    }

    // The service is back, but the breaker is open: 503 at once, naming the service, with
    // Retry-After, and not one connection reaches it.
    let service = Counting::bind(addr, "200 OK").await;
    for _ in 0..20 {
        let response = s.get("/v1/products?page=2", None).await;
        assert_eq!(response.status(), 503);
        let retry_after: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=2).contains(&retry_after), "{retry_after}");
        let body = problem(response).await;
        assert_eq!(body["status"], 503);
        assert!(
            body["detail"].as_str().unwrap().contains("product"),
            "{body}"
        );
    }
    assert_eq!(
        service.accepted(),
        0,
        "no connection while the breaker is open"
    );
    let metrics = s.get("/metrics", None).await.text().await.unwrap();
    assert_eq!(
        metric(&metrics, "circuit_breaker_state", &["upstream=\"product\""]),
        Some(1.0),
        "{metrics}"
    );

    // After the cool-down a probe goes through and closes the breaker.
    tokio::time::sleep(cool_down + Duration::from_millis(200)).await;
    let response = s.get("/v1/products", None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(service.accepted(), 1);
    assert_eq!(s.get("/v1/products", None).await.status(), 200);
    assert_eq!(service.accepted(), 2);

    let metrics = s.get("/metrics", None).await.text().await.unwrap();
    assert_eq!(
        metric(&metrics, "circuit_breaker_state", &["upstream=\"product\""]),
        Some(0.0),
        "{metrics}"
    );
    for to in ["open", "half_open", "closed"] {
        assert_eq!(
            metric(
                &metrics,
                "circuit_breaker_transitions_total",
                &["upstream=\"product\"", &format!("to=\"{to}\"")]
            ),
            Some(1.0),
            "{to}: {metrics}"
        );
    }
    assert_eq!(
        metric(
            &metrics,
            "circuit_breaker_rejected_total",
            &["upstream=\"product\""]
        ),
        Some(20.0),
        "{metrics}"
    );
    // The other services' breakers are untouched.
    assert_eq!(
        s.fake("content").hits.load(Ordering::SeqCst),
        0,
        "nothing else was called"
    );
    assert_eq!(s.get("/v1/blog/x", None).await.status(), 200);
}

#[tokio::test]
async fn a_failing_service_gets_each_post_once_and_5xx_answers_are_not_retried() {
    let _turn = SERIAL.lock().await;
    let addr = free_addr().await;
    let service = Counting::bind(addr, "503 Service Unavailable").await;
    let s = setup(&[
        ("UPSTREAM_CONTENT_URL", &format!("http://{addr}")),
        // Never opens: this test is about retries alone.
        ("UPSTREAM_BREAKER_FAILURES", "0"),
        ("UPSTREAM_BREAKER_FAILURE_RATE_PERCENT", "0"),
        ("UPSTREAM_RETRY_MAX", "3"),
    ])
    .await;
    for _ in 0..10 {
        let response = s
            .gateway
            .client
            .post(s.gateway.url("/v1/blog/posts"))
            .json(&serde_json::json!({"title": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 503);
    }
    assert_eq!(service.accepted(), 10, "each POST is sent once");
    for _ in 0..10 {
        assert_eq!(s.get("/v1/blog/posts", None).await.status(), 503);
    }
    // The service answered: only a refused connection is worth another try.
    assert_eq!(service.accepted(), 20);
    let metrics = s.get("/metrics", None).await.text().await.unwrap();
    assert_eq!(
        metric(
            &metrics,
            "upstream_retries_total",
            &["upstream=\"content\""]
        ),
        Some(0.0),
        "{metrics}"
    );
}

#[tokio::test]
async fn refused_gets_are_retried_only_within_the_budget() {
    let _turn = SERIAL.lock().await;
    let addr = free_addr().await;
    let s = setup(&[
        ("UPSTREAM_CUSTOMER_URL", &format!("http://{addr}")),
        ("UPSTREAM_BREAKER_FAILURES", "0"),
        ("UPSTREAM_BREAKER_FAILURE_RATE_PERCENT", "0"),
        ("UPSTREAM_RETRY_MAX", "2"),
        ("UPSTREAM_RETRY_BUDGET_PERCENT", "20"),
        ("UPSTREAM_RETRY_BUDGET_FLOOR_PER_SEC", "0"),
        ("UPSTREAM_RETRY_BACKOFF_MS", "1"),
        ("UPSTREAM_RETRY_BACKOFF_MAX_MS", "4"),
    ])
    .await;
    let calls = 50;
    for _ in 0..calls {
        assert_eq!(s.get("/v1/products/p1/reviews", None).await.status(), 503);
    }
    let metrics = s.get("/metrics", None).await.text().await.unwrap();
    let retries = metric(
        &metrics,
        "upstream_retries_total",
        &["upstream=\"customer\""],
    )
    .unwrap();
    // Ten saved up plus one per five calls; without the budget, up to two per call (98).
    assert!(retries >= 10.0, "refused GETs are retried: {retries}");
    assert!(retries <= 10.0 + f64::from(calls) / 5.0, "{retries}");
    assert!(
        metric(
            &metrics,
            "upstream_retry_budget_exhausted_total",
            &["upstream=\"customer\""]
        )
        .unwrap()
            > 0.0,
        "{metrics}"
    );
}
