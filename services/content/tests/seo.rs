//! SEO: the sitemap (pages, posts and the catalogue from product-service) and robots.txt.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Api;
use reqwest::StatusCode;
use serde_json::json;
use wiremock::matchers::{header_exists, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn product_service() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/internal/sitemap"))
        .and(header_exists("x-internal-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "products": [{"slug": "oak-shaker", "family": "KITCHEN", "updatedAt": "2026-11-01T10:00:00Z"}],
            "categories": [{"slug": "sliding-wardrobes", "family": "BEDROOM", "updatedAt": "2026-10-01T10:00:00Z"}]
        })))
        .mount(&server)
        .await;
    server
}

async fn publish(api: &Api, collection: &str, body: serde_json::Value) {
    let (status, item) = api.admin_post(&format!("/v1/{collection}"), &body).await;
    assert_eq!(status, StatusCode::CREATED, "{item}");
    let id = item["id"].as_str().unwrap();
    let (status, _) = api
        .admin_post(&format!("/v1/{collection}/{id}/publish"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_sitemap_lists_published_pages_posts_and_the_catalogue() {
    let products = product_service().await;
    let api = Api::spawn_with(&[
        ("PRODUCT_SERVICE_URL", &products.uri()),
        ("PUBLIC_SITE_URL", "https://shop.example"),
    ])
    .await;
    publish(&api, "blog", json!({"title": "Oak Care Guide"})).await;
    publish(
        &api,
        "pages",
        json!({"pageType": "ABOUT", "title": "About Us"}),
    )
    .await;
    publish(
        &api,
        "blog",
        json!({"title": "Hidden Post", "seo": {"noIndex": true}}),
    )
    .await;
    api.admin_post("/v1/blog", &json!({"title": "Draft Post"}))
        .await;

    let response = api.app.get("/v1/sitemap.xml").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/xml")
    );
    let xml = response.text().await.unwrap();
    assert!(xml.starts_with("<?xml"), "{xml}");
    for url in [
        "https://shop.example/",
        "https://shop.example/blog",
        "https://shop.example/blog/oak-care-guide",
        "https://shop.example/about-us",
        "https://shop.example/products/oak-shaker",
        "https://shop.example/bedrooms/sliding-wardrobes",
    ] {
        assert!(
            xml.contains(&format!("<loc>{url}</loc>")),
            "{url} missing from\n{xml}"
        );
    }
    assert!(
        xml.contains("<lastmod>2026-11-01T10:00:00Z</lastmod>"),
        "{xml}"
    );
    assert!(!xml.contains("draft-post"), "{xml}");
    assert!(
        !xml.contains("hidden-post"),
        "noIndex posts are left out:\n{xml}"
    );
}

#[tokio::test]
async fn the_sitemap_is_an_error_rather_than_a_partial_list_when_products_are_unavailable() {
    let down = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&down)
        .await;
    let api = Api::spawn_with(&[("PRODUCT_SERVICE_URL", &down.uri())]).await;
    let (status, _) = api.get("/v1/sitemap.xml").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn robots_txt_allows_the_storefront_and_names_the_sitemap() {
    let api = Api::spawn_with(&[("PUBLIC_SITE_URL", "https://shop.example/")]).await;
    let response = api.app.get("/robots.txt").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    assert!(text.starts_with("User-agent: *\n"), "{text}");
    assert!(text.contains("Disallow: /checkout\n"), "{text}");
    assert!(
        text.contains("Sitemap: https://shop.example/v1/sitemap.xml\n"),
        "{text}"
    );
}
