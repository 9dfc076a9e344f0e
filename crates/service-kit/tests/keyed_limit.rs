//! Per-subject limits against the real Redis, each test under its own key prefix.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use service_kit::keyed_limit::KeyedLimit;
use service_kit::redis::Redis;

const TIMEOUT: Duration = Duration::from_secs(2);

async fn redis() -> Redis {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let prefix = format!("test-keyed-limit-{}", uuid::Uuid::now_v7().simple());
    Redis::connect(&url, &prefix).await.unwrap()
}

async fn drop_keys(redis: &Redis) {
    let mut conn = redis.conn();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:*", redis.prefix()))
        .query_async(&mut conn)
        .await
        .unwrap();
    for key in keys {
        let _: i64 = redis::cmd("DEL")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn the_fourth_hit_in_the_window_is_refused_with_the_rest_of_the_window() {
    let redis = redis().await;
    let limit = KeyedLimit::new("brochure-limit", "brochure", 3, 3600);

    let mut outcomes = Vec::new();
    for _ in 0..5 {
        outcomes.push(limit.hit(&redis, "jane@example.com", TIMEOUT).await);
    }

    assert!(outcomes[..3].iter().all(Result::is_ok), "{outcomes:?}");
    for refused in &outcomes[3..] {
        let retry = refused.unwrap_err().retry_after_secs;
        assert!((3590..=3600).contains(&retry), "retry after {retry}");
    }
    drop_keys(&redis).await;
}

#[tokio::test]
async fn subjects_and_scopes_are_counted_apart_and_stored_only_as_hashes() {
    let redis = redis().await;
    let contact = KeyedLimit::new("form-limit", "contact", 1, 3600);
    let newsletter = KeyedLimit::new("form-limit", "newsletter", 1, 3600);

    assert!(contact.hit(&redis, "a@example.com", TIMEOUT).await.is_ok());
    assert!(contact.hit(&redis, "b@example.com", TIMEOUT).await.is_ok());
    assert!(
        newsletter
            .hit(&redis, "a@example.com", TIMEOUT)
            .await
            .is_ok()
    );
    assert!(contact.hit(&redis, "a@example.com", TIMEOUT).await.is_err());

    let mut conn = redis.conn();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:*", redis.prefix()))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert!(keys.iter().all(|k| !k.contains("example.com")), "{keys:?}");
    assert!(keys.contains(&contact.key(&redis, "a@example.com")));
    drop_keys(&redis).await;
}

#[tokio::test]
async fn a_new_window_starts_when_the_old_one_expires() {
    let redis = redis().await;
    let limit = KeyedLimit::new("brochure-limit", "brochure", 1, 1);

    assert!(limit.hit(&redis, "jane@example.com", TIMEOUT).await.is_ok());
    assert!(
        limit
            .hit(&redis, "jane@example.com", TIMEOUT)
            .await
            .is_err()
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;

    assert!(limit.hit(&redis, "jane@example.com", TIMEOUT).await.is_ok());
    drop_keys(&redis).await;
}

#[tokio::test]
async fn an_unanswered_count_lets_the_submission_through() {
    let redis = redis().await;
    let limit = KeyedLimit::new("brochure-limit", "brochure", 0, 3600);

    // Redis answers one connection's commands in order, so a BLPOP that blocks for a second,
    // sent first on the shared connection, holds back the count far past the hit's timeout.
    let mut blocked = redis.conn();
    let blocker = async {
        let _: Option<(String, String)> = redis::cmd("BLPOP")
            .arg(format!("{}:never-pushed", redis.prefix()))
            .arg(1)
            .query_async(&mut blocked)
            .await
            .unwrap();
    };
    let unanswered = async {
        tokio::task::yield_now().await;
        limit
            .hit(&redis, "jane@example.com", Duration::from_millis(200))
            .await
    };
    let ((), outcome) = tokio::join!(blocker, unanswered);

    assert!(outcome.is_ok(), "the limit fails open");
    assert!(
        limit
            .hit(&redis, "jane@example.com", TIMEOUT)
            .await
            .is_err()
    );
    drop_keys(&redis).await;
}
