//! The proxy itself: streamed bodies arrive intact (the Stripe webhook byte for byte), limits and
//! timeouts give the right problems, a service that is down is named but not located, and a
//! WebSocket is tunnelled.
#![allow(clippy::unwrap_used)]

mod common;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use sha2::Digest;

use common::{problem, setup};

#[tokio::test]
async fn a_large_upload_streams_through_intact() {
    let s = setup(&[]).await;
    let body: Vec<u8> = (0..5 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let expected = hex::encode(sha2::Sha256::digest(&body));
    let response = s
        .gateway
        .client
        .post(s.gateway.url("/v1/uploads"))
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let echoed: Value = response.json().await.unwrap();
    assert_eq!(echoed["service"], "content");
    assert_eq!(echoed["bodyLen"], 5 * 1024 * 1024);
    assert_eq!(echoed["bodySha256"], expected);
}

#[tokio::test]
async fn a_chunked_upload_streams_through_intact() {
    let s = setup(&[]).await;
    let chunks: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 100 * 1024]).collect();
    let all: Vec<u8> = chunks.concat();
    let response = s
        .gateway
        .client
        .post(s.gateway.url("/v1/uploads"))
        .body(common::chunked(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let echoed: Value = response.json().await.unwrap();
    assert_eq!(echoed["bodyLen"], all.len());
    assert_eq!(
        echoed["bodySha256"],
        hex::encode(sha2::Sha256::digest(&all))
    );
}

#[tokio::test]
async fn a_large_response_streams_back_intact() {
    let s = setup(&[]).await;
    let response = s.get("/v1/media/download", None).await;
    assert_eq!(response.status(), 200);
    let bytes = response.bytes().await.unwrap();
    assert_eq!(bytes.len(), 64 * 64 * 1024);
    assert!(
        bytes
            .chunks(64 * 1024)
            .enumerate()
            .all(|(i, c)| c.iter().all(|b| *b as usize == i))
    );
}

#[tokio::test]
async fn the_stripe_webhook_body_arrives_byte_for_byte() {
    let s = setup(&[]).await;
    let raw = "{\n  \"id\": \"evt_1\",  \"type\":\"payment_intent.succeeded\",\r\n\t\"data\": {\"object\": {\"amount\": 129900, \"note\": \"caf\u{e9} \u{1F600}\"}}\n}\n  ";
    let response = s
        .gateway
        .client
        .post(s.gateway.url("/v1/webhooks/stripe"))
        .header("content-type", "application/json; charset=utf-8")
        .header("stripe-signature", "t=1700000000,v1=abc")
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let echoed: Value = response.json().await.unwrap();
    assert_eq!(echoed["service"], "order-payment");
    assert_eq!(echoed["bodyText"], raw);
    assert_eq!(
        echoed["headers"]["stripe-signature"][0],
        "t=1700000000,v1=abc"
    );
    assert_eq!(
        echoed["headers"]["content-type"][0],
        "application/json; charset=utf-8"
    );
}

#[tokio::test]
async fn bodies_over_the_route_limit_get_413() {
    let s = setup(&[
        ("BODY_LIMIT_BYTES", "1024"),
        ("UPLOAD_BODY_LIMIT_BYTES", "4096"),
    ])
    .await;
    // Declared too large: refused before anything is read.
    let response = s
        .gateway
        .client
        .post(s.gateway.url("/v1/contact"))
        .body(vec![b'x'; 2000])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    problem(response).await;
    // Within the upload route's larger limit.
    let response = s
        .gateway
        .client
        .post(s.gateway.url("/v1/uploads"))
        .body(vec![b'x'; 2000])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Chunked, no length declared: cut off as it streams past the limit.
    let chunks: Vec<Vec<u8>> = (0..10).map(|_| vec![b'y'; 1000]).collect();
    let response = s
        .gateway
        .client
        .post(s.gateway.url("/v1/uploads"))
        .body(common::chunked(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    problem(response).await;
}

#[tokio::test]
async fn a_slow_service_gets_504_after_the_route_timeout() {
    let s = setup(&[("UPSTREAM_TIMEOUT_MS", "300")]).await;
    let response = s.get("/v1/blog/slow", None).await;
    assert_eq!(response.status(), 504);
    let body = problem(response).await;
    assert!(
        body["detail"].as_str().unwrap().contains("content"),
        "{body}"
    );
}

#[tokio::test]
async fn per_route_settings_come_from_the_routes_file() {
    let dir =
        std::env::temp_dir().join(format!("gateway-routes-{}", test_support::unique_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("routes.json");
    std::fs::write(
        &file,
        r#"[
            {"pattern": "/v1/faqs/**", "service": "content", "timeoutMs": 200},
            {"pattern": "/v1/brand-new/**", "service": "product", "auth": "token"}
        ]"#,
    )
    .unwrap();
    let s = setup(&[("ROUTES_FILE", file.to_str().unwrap())]).await;
    assert_eq!(s.get("/v1/faqs/slow", None).await.status(), 504);
    assert_eq!(s.get("/v1/brand-new/x", None).await.status(), 401);
    let (_, token) = s.user(auth_client::Role::Customer).await;
    let response = s.get("/v1/brand-new/x", Some(&token)).await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["service"], "product");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_service_that_is_down_is_named_but_not_located() {
    let s = setup(&[("UPSTREAM_CUSTOMER_URL", "http://127.0.0.1:1")]).await;
    let (_, token) = s.user(auth_client::Role::Customer).await;
    let response = s.get("/v1/profile", Some(&token)).await;
    assert!(
        matches!(response.status().as_u16(), 502 | 503),
        "{}",
        response.status()
    );
    let body = problem(response).await;
    let text = body.to_string();
    assert!(
        body["detail"].as_str().unwrap().contains("customer"),
        "{body}"
    );
    assert!(!text.contains("127.0.0.1"), "{text}");
    assert!(!text.contains(":1"), "{text}");
}

#[tokio::test]
async fn websockets_are_tunnelled_to_the_notification_service() {
    let s = setup(&[]).await;
    let url = s
        .gateway
        .url("/v1/notifications/ws")
        .replace("http://", "ws://");
    let (mut socket, response) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(response.status(), 101);
    let hello = socket.next().await.unwrap().unwrap();
    assert_eq!(hello.into_text().unwrap().as_str(), "hello \"ANONYMOUS\"");
    socket
        .send(tokio_tungstenite::tungstenite::Message::Text("ping".into()))
        .await
        .unwrap();
    let echoed = socket.next().await.unwrap().unwrap();
    assert_eq!(echoed.into_text().unwrap().as_str(), "echo: ping");
    socket.close(None).await.unwrap();
}

#[tokio::test]
async fn upstream_connections_are_kept_alive_and_reused() {
    let s = setup(&[]).await;
    let mut peers = std::collections::HashSet::new();
    for _ in 0..30 {
        let body: Value = s.get("/v1/products", None).await.json().await.unwrap();
        peers.insert(body["peer"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        peers.len(),
        1,
        "30 sequential requests used {} connections",
        peers.len()
    );
}
