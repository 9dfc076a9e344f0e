//! `/internal` routes: the sitemap refresh analytics asks for after `blog.published`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Api, customer};
use reqwest::StatusCode;
use serde_json::{Value, json};
use test_support::{INTERNAL_TOKEN_HEADER, service_token};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn catalogue(server: &MockServer, product: &str) {
    server.reset().await;
    Mock::given(method("GET"))
        .and(path("/internal/sitemap"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "products": [{"slug": product, "family": "KITCHEN", "updatedAt": "2026-11-01T10:00:00Z"}],
            "categories": []
        })))
        .mount(server)
        .await;
}

async fn sitemap(api: &Api) -> (String, String) {
    let response = api.app.get("/v1/sitemap.xml").await;
    assert_eq!(response.status(), StatusCode::OK);
    let cache = response.headers()["x-cache"].to_str().unwrap().to_owned();
    (cache, response.text().await.unwrap())
}

#[tokio::test]
async fn a_refresh_drops_the_cached_sitemap_so_the_catalogue_is_read_again() {
    let products = MockServer::start().await;
    catalogue(&products, "oak-shaker").await;
    let api = Api::spawn_with(&[
        ("PRODUCT_SERVICE_URL", &products.uri()),
        ("PUBLIC_SITE_URL", "https://shop.example"),
    ])
    .await;
    let (_, xml) = sitemap(&api).await;
    assert!(xml.contains("/products/oak-shaker</loc>"), "{xml}");

    // The catalogue changes; the cached sitemap keeps the old one.
    catalogue(&products, "walnut-slab").await;
    let (cache, xml) = sitemap(&api).await;
    assert_eq!(cache, "HIT");
    assert!(xml.contains("/products/oak-shaker</loc>"), "{xml}");

    // Only services may ask; a customer changes nothing.
    let refresh = |token: String| {
        reqwest::Client::new()
            .post(api.app.url("/internal/sitemap/refresh"))
            .header(INTERNAL_TOKEN_HEADER, token)
            .json(&json!({}))
            .send()
    };
    let response = refresh(customer().token()).await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(sitemap(&api).await.0, "HIT");

    let response = refresh(service_token("analytics")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"cacheEntryDropped": true, "cdn": "LOGGED"}));
    let (cache, xml) = sitemap(&api).await;
    assert_eq!(cache, "MISS");
    assert!(xml.contains("/products/walnut-slab</loc>"), "{xml}");
    assert!(!xml.contains("oak-shaker"), "{xml}");

    // Idempotent: a second call finds the fresh entry and drops it too.
    let response = refresh(service_token("analytics")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
