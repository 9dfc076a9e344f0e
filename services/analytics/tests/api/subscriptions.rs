//! analytics's queue receives only the topics its consumer handles: the binding keys, the
//! platform's subscription table (which publishers pre-declare and SQS routes by) and the
//! consumer's handlers all agree.

use std::collections::BTreeSet;
use std::time::Duration;

use analytics_service::{AnalyticsService, domain};
use service_kit::event_bus::{
    self, BackendKind, BusConfig, Consumer, OutgoingMessage, Subscription,
};
use service_kit::shared_types::topics::{self, SUBSCRIPTIONS};
use service_kit::{CommonConfig, Env, Service};
use uuid::Uuid;

fn handled_topics() -> BTreeSet<String> {
    let pool = sqlx::PgPool::connect_lazy("postgres://postgres@127.0.0.1:5432/unused").unwrap();
    let bus = BusConfig {
        backend: BackendKind::InMemory,
        ..BusConfig::default()
    };
    let bus = futures::executor::block_on(event_bus::connect(bus)).unwrap();
    domain::handlers(Consumer::new(pool, bus, "analytics"))
        .topics()
        .into_iter()
        .collect()
}

#[tokio::test]
async fn subscriptions_analytics_subscribes_to_exactly_the_topics_it_handles() {
    let handled = handled_topics();
    let subscribed: BTreeSet<String> = SUBSCRIPTIONS
        .iter()
        .find(|(service, _)| *service == "analytics")
        .map(|(_, topics)| topics.iter().map(|t| (*t).to_owned()).collect())
        .unwrap();
    assert_eq!(subscribed, handled);
    assert!(handled.len() < topics::ALL.len(), "{handled:?}");
}

#[tokio::test]
async fn subscriptions_an_unhandled_topic_never_reaches_the_analytics_queue() {
    let handled = handled_topics();
    let unhandled = topics::PRODUCT_UPDATED;
    assert!(!handled.contains(unhandled));

    let id = Uuid::new_v4().simple().to_string()[..12].to_owned();
    let exchange = format!("subs-test-{id}");
    let prefix = format!("subs-test-{id}-");
    let expiry_ms = event_bus::topology::THROWAWAY_QUEUE_EXPIRY
        .as_millis()
        .to_string();
    let common = CommonConfig::from_env(
        AnalyticsService::SPEC,
        &Env::from_pairs([
            ("EVENT_EXCHANGE", exchange.as_str()),
            ("EVENT_QUEUE_PREFIX", prefix.as_str()),
            ("EVENT_QUEUE_EXPIRY_MS", expiry_ms.as_str()),
        ]),
    )
    .unwrap();
    let config = common.bus_config();
    let bus = event_bus::connect(config.clone()).await.unwrap();

    // Published the way every producer's relay does (which declares every subscriber's queue
    // first): the unhandled event first, then a handled one.
    let message = |topic: &str| {
        let event_id = Uuid::now_v7();
        OutgoingMessage {
            event_id,
            topic: topic.to_owned(),
            body: serde_json::to_vec(
                &serde_json::json!({"id": event_id, "topic": topic, "version": 1, "payload": {}}),
            )
            .unwrap(),
        }
    };
    let skipped = message(unhandled);
    let recorded = message(topics::USER_CREATED);
    bus.publish(skipped.clone()).await.unwrap();
    bus.publish(recorded.clone()).await.unwrap();

    // The queue is first in, first out: had the unhandled event been routed there, it would
    // come first.
    let mut stream = bus
        .subscribe(&Subscription {
            service: "analytics".to_owned(),
            topics: handled.iter().cloned().collect(),
            prefetch: 10,
        })
        .await
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(30), stream.next())
        .await
        .expect("the handled event arrives")
        .unwrap();
    let head: serde_json::Value = serde_json::from_slice(&first.body).unwrap();
    assert_eq!(head["id"], recorded.event_id.to_string());
    first.acknowledger.ack().await.unwrap();
    stream.close().await;
    assert_eq!(bus.queue_depth("analytics").await.unwrap(), Some(0));

    let services: Vec<&str> = SUBSCRIPTIONS.iter().map(|(service, _)| *service).collect();
    let _ = event_bus::topology::delete_rabbit_topology(&config, &services).await;
}
