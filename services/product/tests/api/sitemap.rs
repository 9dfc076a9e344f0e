//! `GET /internal/sitemap`: what content-service's sitemap lists from the catalogue.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Api, body};

#[tokio::test]
async fn the_sitemap_lists_published_products_and_categories_but_not_drafts() {
    let api = Api::spawn().await;
    api.term(
        "categories",
        json!({"family": "KITCHEN", "name": "Shaker Kitchens"}),
    )
    .await;
    api.product(json!({"title": "Live Oak Kitchen"})).await;
    api.product(json!({"title": "Hidden Draft", "status": "DRAFT"}))
        .await;

    let (status, sitemap) = body(
        api.as_service(Method::GET, "/internal/sitemap")
            .send()
            .await
            .unwrap(),
    )
    .await;

    assert_eq!(status, StatusCode::OK, "{sitemap}");
    let slugs = |list: &Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|e| e["slug"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(slugs(&sitemap["products"]), ["live-oak-kitchen"]);
    assert_eq!(sitemap["products"][0]["family"], "KITCHEN");
    assert!(sitemap["products"][0]["updatedAt"].is_string());
    assert_eq!(slugs(&sitemap["categories"]), ["shaker-kitchens"]);
}

#[tokio::test]
async fn the_sitemap_is_for_services_only() {
    let api = Api::spawn().await;
    let response = api
        .app
        .request_as(Method::GET, "/internal/sitemap", &api.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}
