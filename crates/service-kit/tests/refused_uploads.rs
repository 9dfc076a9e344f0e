//! A large request body refused before it is read (a caller check, say) still gets its answer
//! over a real connection, instead of the connection being reset under the client.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use reqwest::StatusCode;
use service_kit::Problem;
use service_kit::http::{Shell, wrap};

const LIMIT: usize = 8 * 1024 * 1024;

/// Refuses at once, never reading the body (as an extractor refusing a caller does).
async fn refuse_unread() -> Result<String, Problem> {
    Err(Problem::forbidden("admins only"))
}

/// Reads the body, then answers with its size.
async fn accept(body: Bytes) -> String {
    body.len().to_string()
}

async fn serve() -> String {
    let shell = Shell {
        request_timeout: Duration::from_secs(30),
        body_limit_bytes: LIMIT,
        ..Shell::bare("test")
    };
    let app = wrap(
        Router::new()
            .route("/refuse", post(refuse_unread))
            .route("/accept", post(accept)),
        shell,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_large_body_refused_unread_still_gets_its_problem() {
    let base = serve().await;
    let client = reqwest::Client::new();
    for size in [3 * 1024 * 1024, 6 * 1024 * 1024] {
        for _ in 0..3 {
            let response = client
                .post(format!("{base}/refuse"))
                .header("content-type", "application/octet-stream")
                .body(vec![7u8; size])
                .send()
                .await
                .unwrap_or_else(|error| panic!("{size} bytes: no answer: {error:?}"));
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{size} bytes");
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json"
            );
        }
    }
    // A body that is read is unaffected.
    let response = client
        .post(format!("{base}/accept"))
        .body(vec![1u8; 3 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.text().await.unwrap(),
        (3 * 1024 * 1024).to_string()
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_still_refused_with_413() {
    let base = serve().await;
    let response = reqwest::Client::new()
        .post(format!("{base}/accept"))
        .body(vec![1u8; LIMIT + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}
