//! A service may answer before it has read a request's body (a caller refused by its role, say).
//! The client gets that answer, not a 502, and the service's breaker counts no failure.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use axum::Router;
use axum::routing::post;
use common::setup;
use service_kit::Problem;
use service_kit::http::{Shell, wrap};

/// A service built on the shared shell whose upload route refuses before reading the body.
async fn refusing_service() -> String {
    let shell = Shell {
        request_timeout: Duration::from_secs(30),
        body_limit_bytes: 8 * 1024 * 1024,
        ..Shell::bare("content")
    };
    async fn refuse() -> Result<String, Problem> {
        Err(Problem::forbidden("admins only"))
    }
    async fn accept(body: axum::body::Bytes) -> String {
        body.len().to_string()
    }
    let app = wrap(
        Router::new()
            .route("/v1/uploads/refuse-unread", post(refuse))
            .route("/v1/uploads", post(accept)),
        shell,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_large_upload_refused_unread_gets_the_services_answer() {
    let content = refusing_service().await;
    let s = setup(&[
        ("UPSTREAM_BREAKER_FAILURES", "3"),
        ("UPSTREAM_CONTENT_URL", content.as_str()),
    ])
    .await;
    for size in [1024 * 1024, 3 * 1024 * 1024] {
        for attempt in 0..5 {
            let response = s
                .gateway
                .client
                .post(s.gateway.url("/v1/uploads/refuse-unread"))
                .header("content-type", "application/octet-stream")
                .body(vec![9u8; size])
                .send()
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                403,
                "{size} bytes, attempt {attempt}: {:?}",
                response.text().await
            );
        }
    }
    // Content's breaker stayed closed: an ordinary upload still goes through.
    let response = s
        .gateway
        .client
        .post(s.gateway.url("/v1/uploads"))
        .body(vec![1u8; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn small_bodies_refused_unread_keep_the_upstream_connection_usable() {
    let content = refusing_service().await;
    let s = setup(&[
        ("UPSTREAM_BREAKER_FAILURES", "3"),
        ("UPSTREAM_CONTENT_URL", content.as_str()),
    ])
    .await;
    // The fuzzer's pattern: a method the route does not have, or a refused caller, each with a
    // small JSON body the service never reads, one after another over pooled connections.
    for attempt in 0..20 {
        let (method, path, expected) = if attempt % 2 == 0 {
            (reqwest::Method::DELETE, "/v1/uploads/refuse-unread", 405)
        } else {
            (reqwest::Method::POST, "/v1/uploads/refuse-unread", 403)
        };
        let response = s
            .gateway
            .client
            .request(method, s.gateway.url(path))
            .header("content-type", "application/json")
            .body(r#"{"name":"","hexCode":"","sortOrder":0,"active":false}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            expected,
            "attempt {attempt}: {:?}",
            response.text().await
        );
    }
}
