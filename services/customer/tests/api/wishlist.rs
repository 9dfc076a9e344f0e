//! The wishlist against a fake product service that counts its calls (one lookup per request).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Api, customer};

struct FakeProducts {
    known: Vec<Uuid>,
    calls: AtomicUsize,
    tokens_ok: AtomicUsize,
}

async fn lookup(
    State(fake): State<Arc<FakeProducts>>,
    headers: axum::http::HeaderMap,
    Json(body): Json<Value>,
) -> Json<Value> {
    fake.calls.fetch_add(1, Ordering::SeqCst);
    if let Some(token) = headers
        .get("x-internal-token")
        .and_then(|v| v.to_str().ok())
    {
        let keys = service_kit::InternalKeys::development();
        if keys
            .verify(token)
            .ok()
            .and_then(|c| c.service_name().map(str::to_owned))
            .as_deref()
            == Some("customer")
        {
            fake.tokens_ok.fetch_add(1, Ordering::SeqCst);
        }
    }
    let ids: Vec<Uuid> = serde_json::from_value(body["ids"].clone()).unwrap();
    let data: Vec<Value> = ids
        .iter()
        .filter(|id| fake.known.contains(id))
        .map(|id| {
            json!({"id": id, "sku": "SKU-1", "title": format!("Product {id}"), "slug": "p",
                         "category": "KITCHEN", "status": "PUBLISHED", "deleted": false,
                         "price": {"amount": 129900, "currency": "GBP"}, "imageUrl": "/i.webp",
                         "available": null})
        })
        .collect();
    let missing: Vec<&Uuid> = ids.iter().filter(|id| !fake.known.contains(id)).collect();
    Json(json!({"data": data, "missing": missing}))
}

#[tokio::test]
async fn the_wishlist_checks_products_and_shows_them_with_one_lookup() {
    let known: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
    let fake = Arc::new(FakeProducts {
        known: known.clone(),
        calls: AtomicUsize::new(0),
        tokens_ok: AtomicUsize::new(0),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = axum::Router::new()
        .route("/internal/products/lookup", post(lookup))
        .with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let api = Api::spawn_with(&[("PRODUCT_SERVICE_URL", &url)]).await;
    let jane = customer();

    for id in &known {
        let (status, list) = api
            .post(&jane, "/v1/wishlist", &json!({"productId": id}))
            .await;
        assert_eq!(status, 201, "{list}");
    }
    let (status, list) = api
        .post(&jane, "/v1/wishlist", &json!({"productId": known[0]}))
        .await;
    assert_eq!(status, 200, "a duplicate is idempotent");
    assert_eq!(list.as_array().unwrap().len(), 3);
    let (status, _) = api
        .post(&jane, "/v1/wishlist", &json!({"productId": Uuid::now_v7()}))
        .await;
    assert_eq!(status, 404);

    fake.calls.store(0, Ordering::SeqCst);
    let (status, list) = api.get(&jane, "/v1/wishlist").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(
        fake.calls.load(Ordering::SeqCst),
        1,
        "one batch lookup for three items"
    );
    assert_eq!(list[0]["productId"], known[2].to_string(), "newest first");
    assert_eq!(list[0]["price"]["amount"], 129900);
    assert_eq!(list[0]["available"], true);
    assert!(
        fake.tokens_ok.load(Ordering::SeqCst) > 0,
        "called with a customer service token"
    );

    assert_eq!(
        api.delete(&jane, &format!("/v1/wishlist/{}", known[1]))
            .await,
        204
    );
    let (_, list) = api.get(&jane, "/v1/wishlist").await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(api.get(&customer(), "/v1/wishlist").await.1, json!([]));
}
