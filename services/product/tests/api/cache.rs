//! The Redis response cache: hits, ETags and 304s, invalidation by writes, and reads that
//! survive a Redis outage.

use std::net::SocketAddr;

use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, ETAG, IF_NONE_MATCH};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::helpers::{Api, body};

fn cache_header(response: &reqwest::Response) -> String {
    response.headers()["x-cache"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn lists_and_details_are_cached_until_a_write_changes_them() {
    let api = Api::spawn().await;
    let product = api.product(json!({"title": "Oak Shaker"})).await;
    let id = product["id"].as_str().unwrap();
    let list = "/v1/products?category=KITCHEN&sort=title";

    let first = api.app.get(list).await;
    assert_eq!(cache_header(&first), "MISS");
    let etag = first.headers()[ETAG].to_str().unwrap().to_owned();
    assert_eq!(
        first.headers()[CACHE_CONTROL],
        "public, max-age=0, must-revalidate"
    );
    let second = api.app.get(list).await;
    assert_eq!(cache_header(&second), "HIT");
    assert_eq!(second.headers()[ETAG].to_str().unwrap(), etag);
    // The same query spelled differently is the same entry.
    let reordered = api
        .app
        .get("/v1/products?sort=title&category=kitchen")
        .await;
    assert_eq!(cache_header(&reordered), "HIT");

    let revalidated = api
        .app
        .request(reqwest::Method::GET, list)
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
    assert!(revalidated.text().await.unwrap().is_empty());

    let detail = format!("/v1/products/{id}");
    assert_eq!(cache_header(&api.app.get(&detail).await), "MISS");
    assert_eq!(cache_header(&api.app.get(&detail).await), "HIT");

    let (status, _) = api
        .admin_patch(&detail, &json!({"title": "Oak Shaker Deluxe"}))
        .await;
    assert_eq!(status, StatusCode::OK);

    let after = api.app.get(list).await;
    assert_eq!(cache_header(&after), "MISS");
    assert_ne!(after.headers()[ETAG].to_str().unwrap(), etag);
    let (_, listed) = body(after).await;
    assert_eq!(listed["data"][0]["title"], "Oak Shaker Deluxe");
    let stale = api
        .app
        .request(reqwest::Method::GET, list)
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(
        stale.status(),
        StatusCode::OK,
        "the old ETag no longer matches"
    );
    let (_, one) = api.get(&detail).await;
    assert_eq!(one["title"], "Oak Shaker Deluxe");
    // The fresh document is cached in its turn.
    assert_eq!(cache_header(&api.app.get(&detail).await), "HIT");
}

/// Forwards connections to the real Redis until cut.
struct RedisRelay {
    addr: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl RedisRelay {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut redis) = TcpStream::connect("127.0.0.1:6379").await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut redis).await;
                    }
                });
            }
        });
        Self {
            addr,
            task: Some(task),
        }
    }

    /// Closes the listener and every relayed connection.
    async fn cut(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

#[tokio::test]
async fn a_redis_outage_degrades_to_uncached_reads_and_writes_still_work() {
    let mut relay = RedisRelay::start().await;
    let url = format!("redis://{}", relay.addr);
    let api = Api::spawn_with(&[
        ("REDIS_URL", url.as_str()),
        ("PRODUCT_CACHE_TIMEOUT_MS", "100"),
    ])
    .await;
    let product = api.product(json!({"title": "Oak Shaker"})).await;
    let detail = format!("/v1/products/{}", product["id"].as_str().unwrap());
    api.app.get("/v1/products").await;

    relay.cut().await;
    // Until the remembered version expires, the list may still be answered from memory (it is
    // current); past it, the version cannot be read and reads go to Postgres.
    tokio::time::sleep(
        service_kit::cache::DEFAULT_LOCAL_VERSION_TTL + std::time::Duration::from_millis(100),
    )
    .await;

    let list = api.app.get("/v1/products").await;
    assert_eq!(list.status(), StatusCode::OK);
    assert_eq!(cache_header(&list), "MISS");
    assert!(list.headers().contains_key(ETAG));
    let (status, patched) = api.admin_patch(&detail, &json!({"featured": true})).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    let (status, one) = api.get(&detail).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["featured"], true);
}
