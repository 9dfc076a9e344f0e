//! Which service a path reaches, and what reaches the service: the most specific pattern wins,
//! `/internal` and unknown paths are 404 problems, and the upstream sees a valid internal token
//! and none of the identity headers a client tried to smuggle in.
#![allow(clippy::unwrap_used)]

mod common;

use auth_client::{CallerKind, Role};
use common::{problem, setup};
use serde_json::Value;

async fn echoed(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_most_specific_pattern_wins() {
    let s = setup(&[]).await;
    for (path, service) in [
        ("/v1/products", "product"),
        ("/v1/products/oak-shaker", "product"),
        ("/v1/products/oak-shaker/related", "product"),
        ("/v1/products/oak-shaker/reviews", "customer"),
        ("/v1/products/oak-shaker/reviews?sort=-rating", "customer"),
        ("/v1/products/oak-shaker/rating", "customer"),
        ("/v1/auth/login", "auth"),
        ("/.well-known/jwks.json", "auth"),
        ("/v1/cart/items", "order-payment"),
        ("/v1/webhooks/stripe", "order-payment"),
        ("/v1/availability?type=HOME_MEASUREMENT", "appointment"),
        ("/v1/sitemap.xml", "content"),
        ("/media/2026/01/a.webp", "content"),
        ("/v1/analytics/track", "analytics"),
    ] {
        let response = s.get(path, None).await;
        if path == "/.well-known/jwks.json" {
            // The fake auth serves its JWKS to services only: the client's anonymous internal
            // token reached it (and was refused by it), so the route went to auth.
            assert_eq!(response.status(), 403, "{path}");
            continue;
        }
        let body = echoed(response).await;
        assert_eq!(body["service"], service, "{path}");
        assert_eq!(body["path"], path, "{path}");
    }
}

#[tokio::test]
async fn internal_and_unknown_paths_are_404_problems() {
    let s = setup(&[]).await;
    for path in [
        "/internal/products/lookup",
        "/internal",
        "/v1/nothing-here",
        "/",
        "/v1/products/../../internal/x",
        "/v1/products/%2e%2e/%2e%2e/internal/x",
    ] {
        let response = s.get(path, None).await;
        assert_eq!(response.status(), 404, "{path}");
        assert!(response.headers().contains_key("x-request-id"));
        let body = problem(response).await;
        assert_eq!(body["status"], 404);
    }
    let hits: usize = s
        .fakes
        .iter()
        .map(|f| f.hits.load(std::sync::atomic::Ordering::SeqCst))
        .sum();
    assert_eq!(hits, 0, "no service saw any of those requests");
}

#[tokio::test]
async fn every_response_carries_security_headers_and_a_request_id() {
    let s = setup(&[]).await;
    for path in [
        "/v1/products",
        "/v1/nothing-here",
        "/docs/openapi.json",
        "/health",
        "/ready",
    ] {
        let response = s.get(path, None).await;
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(
            headers["referrer-policy"], "strict-origin-when-cross-origin",
            "{path}"
        );
        assert!(
            headers["strict-transport-security"]
                .to_str()
                .unwrap()
                .starts_with("max-age="),
            "{path}"
        );
        assert!(headers.contains_key("x-request-id"), "{path}");
    }
}

#[tokio::test]
async fn spoofed_identity_headers_never_reach_a_service() {
    let s = setup(&[]).await;
    let forged = test_support::TestUser::new(Role::SuperAdmin).token();
    let response = s
        .gateway
        .client
        .get(s.gateway.url("/v1/products?x=1"))
        .header("x-user-id", "00000000-0000-0000-0000-000000000001")
        .header("x-user-role", "SUPER_ADMIN")
        .header("x-internal-token", forged)
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-forwarded-host", "evil.example")
        .header("forwarded", "for=6.6.6.6")
        .header("x-real-ip", "6.6.6.6")
        .header("x-request-id", "client-chosen-id-1")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .header("cookie", "cart=abc")
        .send()
        .await
        .unwrap();
    let body = echoed(response).await;
    let headers = &body["headers"];
    for name in [
        "x-user-id",
        "x-user-role",
        "x-forwarded-host",
        "forwarded",
        "x-real-ip",
        "authorization",
    ] {
        assert!(
            headers.get(name).is_none(),
            "{name} reached the service: {headers}"
        );
    }
    assert_eq!(headers["x-forwarded-for"], serde_json::json!(["127.0.0.1"]));
    assert_eq!(
        headers["x-request-id"],
        serde_json::json!(["client-chosen-id-1"])
    );
    assert!(
        headers["traceparent"][0]
            .as_str()
            .unwrap()
            .contains("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    assert_eq!(headers["cookie"], serde_json::json!(["cart=abc"]));
    assert_eq!(headers["x-internal-token"].as_array().unwrap().len(), 1);
    // The internal token is the gateway's own, for an anonymous caller; the request it belongs
    // to is named by `X-Request-Id` (asserted above), since a caller's token is reused.
    let claims = &body["claims"];
    assert_eq!(
        claims["kind"],
        serde_json::to_value(CallerKind::Anonymous).unwrap()
    );
    assert_eq!(claims["iss"], "gateway");
    assert!(claims.get("sub").is_none());
}

#[tokio::test]
async fn forwarded_for_is_believed_from_trusted_proxies_only() {
    let s = setup(&[("TRUSTED_PROXIES", "127.0.0.0/8")]).await;
    let response = s
        .gateway
        .client
        .get(s.gateway.url("/v1/products"))
        .header("x-forwarded-for", "198.51.100.20, 203.0.113.7")
        .send()
        .await
        .unwrap();
    let body = echoed(response).await;
    assert_eq!(
        body["headers"]["x-forwarded-for"],
        serde_json::json!(["203.0.113.7"])
    );
}

#[tokio::test]
async fn a_signed_in_caller_reaches_the_service_with_their_identity_only() {
    let s = setup(&[]).await;
    let (user, token) = s.user(Role::Customer).await;
    let response = s
        .gateway
        .client
        .get(s.gateway.url("/v1/profile"))
        .bearer_auth(&token)
        .header("x-user-id", "00000000-0000-0000-0000-000000000001")
        .send()
        .await
        .unwrap();
    let body = echoed(response).await;
    assert_eq!(body["service"], "customer");
    assert!(body["headers"].get("authorization").is_none(), "{body}");
    assert!(body["headers"].get("x-user-id").is_none(), "{body}");
    let claims = &body["claims"];
    assert_eq!(claims["kind"], "USER");
    assert_eq!(claims["sub"], user.sub.to_string());
    assert_eq!(claims["role"], "CUSTOMER");
    assert_eq!(claims["sid"], user.sid.to_string());
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
    assert!(
        body["headers"]["x-request-id"][0]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn the_docs_page_and_the_merged_document_are_served() {
    let s = setup(&[]).await;
    let page = s.get("/docs", None).await;
    assert_eq!(page.status(), 200);
    assert!(page.url().path().ends_with("/docs/"));
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(
        !html.contains("https://"),
        "the page loads nothing from the internet"
    );

    let init = s.get("/docs/swagger-initializer.js", None).await;
    assert_eq!(init.status(), 200);
    assert!(init.text().await.unwrap().contains("/docs/openapi.json"));
    assert_eq!(
        s.get("/docs/swagger-ui-bundle.js", None).await.status(),
        200
    );

    let doc: Value = s
        .get("/docs/openapi.json", None)
        .await
        .json()
        .await
        .unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.contains_key("/v1/products"), "{doc}");
    assert!(paths.contains_key("/v1/products/{id}/reviews"), "{doc}");
    assert!(paths.contains_key("/v1/profile"), "{doc}");
    assert!(!paths.contains_key("/internal/products/lookup"), "{doc}");
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    assert!(schemas.contains_key("productThing") && schemas.contains_key("customerThing"));
    assert!(doc.get("x-unavailable-services").is_none(), "{doc}");
}
