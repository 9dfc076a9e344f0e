use std::net::SocketAddr;
use std::time::Duration;

use analytics_service::buffer::{Batch, Flusher, GROUP};
use analytics_service::{AnalyticsService, Config};
use reqwest::StatusCode;
use serde_json::json;
use service_kit::Service;
use service_kit::config::Env;
use service_kit::redis::Redis;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::helpers::{Api, event};

/// A flusher of the test's stream, as another process would run it.
async fn flusher(api: &Api, name: &str, reclaim_idle_ms: &str) -> (Flusher, Redis) {
    let mut env = api.app.env.clone();
    env.insert("ANALYTICS_RECLAIM_IDLE_MS".into(), reclaim_idle_ms.into());
    let config: Config = AnalyticsService::config(&Env::from_pairs(env.clone())).unwrap();
    let redis = Redis::connect("redis://127.0.0.1:6379", &env["REDIS_KEY_PREFIX"])
        .await
        .unwrap();
    let flusher = Flusher::new(
        redis.clone(),
        api.pool.clone(),
        name.into(),
        &config.analytics,
    );
    (flusher, redis)
}

#[tokio::test]
async fn a_flusher_killed_mid_batch_loses_nothing_and_duplicates_nothing() {
    // No flusher in the service: the test plays the flushers.
    let api = Api::spawn_with(&[("ANALYTICS_FLUSHER_ENABLED", "false")]).await;
    for _ in 0..4 {
        let batch: Vec<_> = (0..10).map(|_| event("product_viewed")).collect();
        let (status, _) = api.track(&json!({ "batch": batch })).await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }

    // Flusher A takes two entries, commits them, and dies before XACK; then takes a third and
    // dies before writing it.
    let (a, redis) = flusher(&api, "flusher-a", "60000").await;
    a.ensure_group().await.unwrap();
    let mut first = Batch::default();
    assert_eq!(a.take_new(&mut first, 2).await.unwrap(), 2);
    assert_eq!(a.write(&first).await.unwrap(), 20);
    let mut second = Batch::default();
    assert_eq!(a.take_new(&mut second, 1).await.unwrap(), 1);
    drop((first, second, a));
    assert_eq!(api.count("SELECT count(*) FROM tracking_events").await, 20);

    // Flusher B starts, reclaims A's pending entries and flushes everything.
    let (b, _) = flusher(&api, "flusher-b", "0").await;
    let token = CancellationToken::new();
    let running = tokio::spawn(b.run(token.clone()));
    api.wait_for("SELECT count(*) FROM tracking_events", 40)
        .await;
    token.cancel();
    running.await.unwrap();

    assert_eq!(
        api.count("SELECT count(DISTINCT message_id) FROM tracking_events")
            .await,
        40
    );
    let key = format!("{}:stream:events", api.app.env["REDIS_KEY_PREFIX"]);
    let mut conn = redis.conn();
    let pending: redis::Value = redis::cmd("XPENDING")
        .arg(&key)
        .arg(GROUP)
        .query_async(&mut conn)
        .await
        .unwrap();
    let redis::Value::Array(summary) = pending else {
        panic!("XPENDING answered {pending:?}")
    };
    assert_eq!(summary[0], redis::Value::Int(0), "nothing left pending");
    let len: i64 = redis::cmd("XLEN")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(len, 0, "flushed entries are deleted");
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

    async fn cut(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

#[tokio::test]
async fn with_redis_down_ingest_still_succeeds_by_writing_to_postgres() {
    let mut relay = RedisRelay::start().await;
    let url = format!("redis://{}", relay.addr);
    let api = Api::spawn_with(&[
        ("REDIS_URL", url.as_str()),
        ("ANALYTICS_REDIS_TIMEOUT_MS", "200"),
    ])
    .await;

    relay.cut().await;

    let (status, body) = api
        .track(&json!({"batch": [event("page_viewed"), event("cta_clicked")]}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    // Written on the request path: already there.
    assert_eq!(api.count("SELECT count(*) FROM tracking_events").await, 2);
    tokio::time::sleep(Duration::from_millis(10)).await;
}
