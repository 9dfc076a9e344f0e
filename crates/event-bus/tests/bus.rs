//! The event bus against the real brokers: RabbitMQ on 127.0.0.1:5672, SQS from a local moto
//! server, and the in-process backend. Each test has its own database, exchange and queues.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    net::SocketAddr,
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use event_bus::{
    BackendKind, BusConfig, Consumer, DomainEvent, EventPayload, OutgoingMessage, Replay,
    SharedBus, dlq,
};
use futures::FutureExt;
use lapin::options::QueueDeclareOptions;
use support::*;
use uuid::Uuid;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Backend {
    RabbitMq,
    Sqs,
    InMemory,
}

/// One test's world: database, broker names, and two buses — `bus` (through `proxy` when asked
/// for) and `direct` (never proxied), sharing exchange and queue names.
struct Setup {
    db: TestDb,
    service: String,
    config: BusConfig,
    bus: SharedBus,
    direct: SharedBus,
    proxy: Option<Arc<TcpProxy>>,
    _moto: Option<Arc<Moto>>,
}

impl Setup {
    async fn new(backend: Backend, through_proxy: bool) -> Self {
        Self::with(backend, through_proxy, |_| {}).await
    }

    /// As [`Setup::new`], with `tweak` applied to both buses' configuration.
    async fn with(backend: Backend, through_proxy: bool, tweak: impl Fn(&mut BusConfig)) -> Self {
        init_metrics();
        let db = TestDb::new().await;
        let service = unique("svc");
        let (config, direct_config, proxy, moto) = match backend {
            Backend::RabbitMq => {
                let proxy = if through_proxy {
                    Some(Arc::new(TcpProxy::start(rabbit_addr()).await))
                } else {
                    None
                };
                let direct = rabbit_config(direct_amqp_url());
                let mut config = direct.clone();
                if let Some(proxy) = &proxy {
                    config.amqp_url = proxied_amqp_url(proxy);
                }
                (config, direct, proxy, None)
            }
            Backend::Sqs => {
                let moto = moto().await;
                let direct = sqs_config(&moto.endpoint, &service);
                let mut config = direct.clone();
                let proxy = if through_proxy {
                    let host_port = moto
                        .endpoint
                        .trim_start_matches("http://")
                        .trim_end_matches('/')
                        .to_owned();
                    let target: SocketAddr = tokio::net::lookup_host(host_port)
                        .await
                        .ok()
                        .and_then(|mut addrs| addrs.next())
                        .expect("AWS_ENDPOINT_URL like http://127.0.0.1:5000");
                    let proxy = Arc::new(TcpProxy::start(target).await);
                    config.sqs.endpoint_url = Some(format!("http://{}", proxy.addr));
                    Some(proxy)
                } else {
                    None
                };
                (config, direct, proxy, Some(moto))
            }
            Backend::InMemory => {
                let config = BusConfig {
                    backend: BackendKind::InMemory,
                    consumer: test_consumer_settings(),
                    ..BusConfig::default()
                };
                (config.clone(), config, None, None)
            }
        };
        let (mut config, mut direct_config) = (config, direct_config);
        tweak(&mut config);
        tweak(&mut direct_config);
        let bus = event_bus::connect(config.clone()).await.unwrap();
        let direct = if backend == Backend::InMemory {
            bus.clone() // one in-process broker
        } else {
            event_bus::connect(direct_config).await.unwrap()
        };
        Self {
            db,
            service,
            config,
            bus,
            direct,
            proxy,
            _moto: moto,
        }
    }

    fn consumer(&self, controls: &Arc<Controls>) -> Consumer {
        Consumer::new(self.db.pool.clone(), self.bus.clone(), &self.service)
            .on_handler::<Ping, _>(RecordPing(Arc::clone(controls)))
    }

    /// Waits until the consumer's queue exists and is bound (RabbitMQ: it has a consumer), so
    /// that nothing published from now on is unroutable.
    async fn wait_until_consuming(&self) {
        if self.config.backend == BackendKind::RabbitMq {
            let queue = self.config.queue_name(&self.service);
            eventually("the consumer to subscribe", || {
                let queue = queue.clone();
                async move {
                    match probe_rabbit_queue(&queue).await {
                        QueueProbe::Consumers(n) if n > 0 => Some(()),
                        _ => None,
                    }
                }
            })
            .await;
        } else {
            eventually("the consumer's queue", || async {
                self.direct
                    .queue_depth(&self.service)
                    .await
                    .ok()
                    .flatten()
                    .map(|_| ())
            })
            .await;
        }
    }

    async fn dead_letters(&self) -> Vec<event_bus::DeadLetter> {
        dlq::list(self.direct.as_ref(), &self.service)
            .await
            .unwrap()
    }

    fn consumed(&self, outcome: &str) -> u64 {
        counter(
            "events_consumed_total",
            &[("service", &self.service), ("outcome", outcome)],
        )
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        if self.config.backend == BackendKind::RabbitMq {
            delete_rabbit_topology(&self.config, &self.service);
        }
    }
}

fn raw_message(event_id: Uuid, body: Vec<u8>) -> OutgoingMessage {
    OutgoingMessage {
        event_id,
        topic: Ping::TOPIC.to_owned(),
        body,
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios, run against each backend

async fn committed_event_is_consumed_exactly_once_and_rolled_back_never(backend: Backend) {
    let s = Setup::new(backend, false).await;
    let controls = Controls::new();
    let mut running = Running::new();
    running.consumer(s.consumer(&controls));
    s.wait_until_consuming().await;
    running.relay(&s.db.pool, &s.direct, &s.service);

    let committed = s.db.commit(Ping { seq: 1 }).await;
    let mut tx = s.db.pool.begin().await.unwrap();
    event_bus::outbox::publish(&mut tx, &DomainEvent::new("evbus-test", Ping { seq: 2 }))
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    // Written after the rolled-back one: once it is applied, the other would have been too.
    s.db.commit(Ping { seq: 3 }).await;

    eventually("both committed events to be applied", || async {
        (s.db.effects_for(1).await == 1 && s.db.effects_for(3).await == 1).then_some(())
    })
    .await;
    running.stop().await;

    assert_eq!(
        s.db.effects_for(2).await,
        0,
        "a rolled-back event was delivered"
    );
    assert_eq!(s.db.scalar("SELECT count(*) FROM effects").await, 2);
    assert_eq!(s.db.scalar("SELECT count(*) FROM outbox").await, 2);
    assert_eq!(
        s.db.scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .await,
        0
    );
    let processed: Vec<Uuid> = sqlx::query_scalar("SELECT event_id FROM processed_events")
        .fetch_all(&s.db.pool)
        .await
        .unwrap();
    assert!(processed.contains(&committed.id));
    assert_eq!(controls.calls_for(1), 1);
    assert_eq!(s.consumed("processed"), 2);
    assert!(counter("outbox_published_total", &[("service", &s.service)]) >= 2);
}

async fn a_redelivered_event_changes_nothing(backend: Backend) {
    let s = Setup::new(backend, false).await;
    let controls = Controls::new();
    let mut running = Running::new();
    running.consumer(s.consumer(&controls));
    s.wait_until_consuming().await;

    let event = DomainEvent::new("evbus-test", Ping { seq: 5 });
    let body = serde_json::to_vec(&event).unwrap();
    s.direct
        .publish(raw_message(event.id, body.clone()))
        .await
        .unwrap();
    s.direct.publish(raw_message(event.id, body)).await.unwrap();

    eventually("the second copy to be recognised", || async {
        (s.consumed("duplicate") == 1 && s.consumed("processed") == 1).then_some(())
    })
    .await;
    running.stop().await;

    assert_eq!(s.db.effects_for(5).await, 1);
    assert_eq!(controls.calls_for(5), 1, "the handler ran for a duplicate");
}

async fn a_crash_after_commit_before_ack_causes_no_second_effect(backend: Backend) {
    let s = Setup::new(backend, true).await;
    let proxy = Arc::clone(s.proxy.as_ref().unwrap());
    let controls = Controls::new();
    // On the first delivery, the consumer loses the broker while handling: its transaction
    // still commits, but the acknowledgement can no longer reach the broker.
    let cut = Arc::clone(&proxy);
    *controls.hook.lock().unwrap() = Some(async move { cut.cut().await }.boxed());
    let mut running = Running::new();
    running.consumer(s.consumer(&controls));
    s.wait_until_consuming().await;
    running.relay(&s.db.pool, &s.direct, &s.service);

    s.db.commit(Ping { seq: 7 }).await;
    eventually("the effect of the first delivery", || async {
        (controls.hook_ran.load(Ordering::SeqCst) && s.db.effects_for(7).await == 1).then_some(())
    })
    .await;
    eventually("the acknowledgement to fail", || async {
        let failed = counter("event_settle_failures_total", &[("service", &s.service)]);
        (failed >= 1).then_some(())
    })
    .await;
    proxy.restore();
    eventually("the redelivery to be recognised as a duplicate", || async {
        (s.consumed("duplicate") >= 1).then_some(())
    })
    .await;
    running.stop().await;

    assert_eq!(s.db.effects_for(7).await, 1);
    assert_eq!(controls.calls_for(7), 1);
}

async fn a_poison_message_is_dead_lettered_and_replayed_once_fixed(backend: Backend) {
    let s = Setup::new(backend, false).await;
    let controls = Controls::new();
    controls.fail_seq.store(13, Ordering::SeqCst);
    let mut running = Running::new();
    running.consumer(s.consumer(&controls));
    s.wait_until_consuming().await;
    running.relay(&s.db.pool, &s.direct, &s.service);

    let poison = s.db.commit(Ping { seq: 13 }).await;
    s.db.commit(Ping { seq: 14 }).await;

    let dead = eventually("the poison message in the DLQ", || async {
        let found = s.dead_letters().await;
        (!found.is_empty()).then_some(found)
    })
    .await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].event_id, Some(poison.id));
    assert_eq!(dead[0].topic.as_deref(), Some(Ping::TOPIC));
    assert_eq!(dead[0].death_count, 3);
    assert!(
        dead[0].reason.contains("failed 3 times"),
        "{}",
        dead[0].reason
    );
    assert_eq!(controls.calls_for(13), 3, "delivery limit is 3");
    eventually("the healthy event", || async {
        (s.db.effects_for(14).await == 1).then_some(())
    })
    .await;
    assert_eq!(s.db.effects_for(13).await, 0);

    controls.fail_seq.store(-1, Ordering::SeqCst);
    let replayed = dlq::replay(s.direct.as_ref(), &s.service, Replay::Event(poison.id))
        .await
        .unwrap();
    assert_eq!(replayed, 1);
    eventually("the replayed event to be applied", || async {
        (s.db.effects_for(13).await == 1).then_some(())
    })
    .await;
    running.stop().await;

    assert!(s.dead_letters().await.is_empty());
    assert_eq!(s.db.effects_for(13).await, 1);
}

async fn unreadable_versions_are_refused_and_unknown_fields_tolerated(backend: Backend) {
    let s = Setup::new(backend, false).await;
    let controls = Controls::new();
    let mut running = Running::new();
    running.consumer(s.consumer(&controls));
    s.wait_until_consuming().await;
    running.relay(&s.db.pool, &s.direct, &s.service);

    let newer =
        s.db.commit(PingV2 {
            sequence_number: "twenty".into(),
        })
        .await;
    s.db.commit(PingWithExtra {
        seq: 21,
        colour: "sage green".into(),
    })
    .await;
    let mut envelope =
        serde_json::to_value(DomainEvent::new("evbus-test", Ping { seq: 22 })).unwrap();
    envelope["priority"] = "HIGH".into();
    envelope["payload"]["region"] = "north".into();
    s.direct
        .publish(raw_message(
            Uuid::now_v7(),
            serde_json::to_vec(&envelope).unwrap(),
        ))
        .await
        .unwrap();
    s.direct
        .publish(raw_message(
            Uuid::now_v7(),
            b"{ this is not an envelope".to_vec(),
        ))
        .await
        .unwrap();

    eventually("the readable events", || async {
        (s.db.effects_for(21).await == 1 && s.db.effects_for(22).await == 1).then_some(())
    })
    .await;
    let dead = eventually("both unreadable messages in the DLQ", || async {
        let found = s.dead_letters().await;
        (found.len() >= 2).then_some(found)
    })
    .await;
    running.stop().await;

    assert_eq!(dead.len(), 2, "{dead:?}");
    let refused = dead
        .iter()
        .find(|d| d.event_id == Some(newer.id))
        .expect("the version-2 event");
    assert!(
        refused.reason.contains("unsupported version 2"),
        "{}",
        refused.reason
    );
    let garbage = dead
        .iter()
        .find(|d| d.event_id.is_none())
        .expect("the garbage");
    assert!(garbage.reason.contains("undecodable"), "{}", garbage.reason);
    assert!(dead.iter().all(|d| d.death_count == 1), "retried: {dead:?}");
    assert_eq!(controls.total_calls.load(Ordering::SeqCst), 2);
}

async fn an_unreachable_broker_fails_fast(backend: Backend) {
    init_metrics();
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let config = match backend {
        Backend::RabbitMq => {
            rabbit_config(format!("amqp://guest:guest@127.0.0.1:{closed_port}/%2f"))
        }
        Backend::Sqs => {
            let mut config = sqs_config(&format!("http://127.0.0.1:{closed_port}"), "nobody");
            config.publish_timeout = Duration::from_secs(2);
            config.connect_timeout = Duration::from_secs(2);
            config
        }
        Backend::InMemory => unreachable!("always reachable"),
    };
    let bus = event_bus::connect(config).await.unwrap();

    let ready = bus.check_ready().await;
    let published = bus
        .publish(raw_message(Uuid::now_v7(), b"{}".to_vec()))
        .await;

    assert!(ready.is_err(), "ready with no broker");
    assert!(published.is_err(), "published with no broker");
}

/// SQS hides a received message for its visibility timeout only; the gated scenarios hold
/// messages for longer than the suite's 2 s, which would let SQS hand out second copies.
fn patient_visibility(config: &mut BusConfig) {
    config.sqs.visibility_timeout = Duration::from_secs(30);
}

fn gated_consumer(s: &Setup, gate: &Arc<Gate>) -> Consumer {
    Consumer::new(s.db.pool.clone(), s.bus.clone(), &s.service)
        .on_handler::<Ping, _>(GatedPing(Arc::clone(gate)))
}

/// Publishes one `Ping` per `seq` straight to the broker (no outbox, no relay).
async fn publish_pings(s: &Setup, seqs: std::ops::Range<i64>) {
    for seq in seqs {
        let event = DomainEvent::new("evbus-test", Ping { seq });
        let body = serde_json::to_vec(&event).unwrap();
        s.direct.publish(raw_message(event.id, body)).await.unwrap();
    }
}

async fn effects(s: &Setup) -> usize {
    usize::try_from(s.db.scalar("SELECT count(*) FROM effects").await).unwrap()
}

async fn handlers_run_concurrently_up_to_the_limit(backend: Backend) {
    let s = Setup::with(backend, false, patient_visibility).await;
    let limit = usize::from(s.config.consumer.concurrency);
    assert!(limit > 1, "the suite's consumers run several handlers");
    let gate = Gate::new();
    let mut running = Running::new();
    running.consumer(gated_consumer(&s, &gate));
    s.wait_until_consuming().await;
    let events = 2 * limit + 2;

    publish_pings(&s, 0..i64::try_from(events).unwrap()).await;

    // A consumer handling one message at a time never gets past 1 here.
    eventually("every handler task to hold a message", || async {
        (gate.waiting.load(Ordering::SeqCst) == limit).then_some(())
    })
    .await;
    // Time to (wrongly) start more than the limit.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(gate.waiting.load(Ordering::SeqCst), limit);
    assert_eq!(
        gate.calls.load(Ordering::SeqCst),
        limit,
        "a handler started beyond the limit"
    );
    assert_eq!(effects(&s).await, 0);

    gate.release(events);
    eventually("every event to be applied", || async {
        (effects(&s).await == events).then_some(())
    })
    .await;
    running.stop().await;

    assert_eq!(gate.most_waiting.load(Ordering::SeqCst), limit);
    assert_eq!(gate.calls.load(Ordering::SeqCst), events);
    assert_eq!(
        s.db.scalar("SELECT count(DISTINCT seq) FROM effects").await,
        i64::try_from(events).unwrap()
    );
    assert_eq!(s.consumed("processed"), u64::try_from(events).unwrap());
}

async fn shutdown_finishes_every_message_in_hand(backend: Backend) {
    let s = Setup::with(backend, false, patient_visibility).await;
    let limit = usize::from(s.config.consumer.concurrency);
    let gate = Gate::new();
    let cancel = tokio_util::sync::CancellationToken::new();
    let consumer = tokio::spawn(gated_consumer(&s, &gate).run(cancel.clone()));
    s.wait_until_consuming().await;
    let events = limit + 2;
    publish_pings(&s, 0..i64::try_from(events).unwrap()).await;
    eventually("every handler task to hold a message", || async {
        (gate.waiting.load(Ordering::SeqCst) == limit).then_some(())
    })
    .await;

    cancel.cancel();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !consumer.is_finished(),
        "the consumer stopped with messages in hand"
    );
    // More than are in hand: nothing may be taken after the cancellation.
    gate.release(events);
    tokio::time::timeout(PATIENCE, consumer)
        .await
        .expect("the consumer to stop once its handlers finish")
        .unwrap()
        .unwrap();

    assert_eq!(
        gate.calls.load(Ordering::SeqCst),
        limit,
        "a message was taken after cancellation"
    );
    assert_eq!(
        effects(&s).await,
        limit,
        "a message in hand was not committed"
    );

    // A fresh consumer gets only the rest: those in hand were acknowledged before the stream
    // closed, so none comes back.
    let controls = Controls::new();
    let mut running = Running::new();
    running.consumer(s.consumer(&controls));
    eventually("the remaining events to be applied", || async {
        (effects(&s).await == events).then_some(())
    })
    .await;
    running.stop().await;

    assert_eq!(s.consumed("duplicate"), 0, "a finished message came back");
    assert_eq!(
        controls.total_calls.load(Ordering::SeqCst),
        u32::try_from(events - limit).unwrap()
    );
    assert_eq!(
        s.db.scalar("SELECT count(DISTINCT seq) FROM effects").await,
        i64::try_from(events).unwrap()
    );
}

async fn a_panicking_handler_is_retried_then_dead_lettered(backend: Backend) {
    let s = Setup::new(backend, false).await;
    let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = Arc::clone(&calls);
    let consumer = Consumer::new(s.db.pool.clone(), s.bus.clone(), &s.service).on::<Ping, _>(
        move |event, conn| {
            let calls = Arc::clone(&counted);
            Box::pin(async move {
                if event.payload.seq == 13 {
                    calls.fetch_add(1, Ordering::SeqCst);
                    panic!("ping 13 breaks the handler");
                }
                sqlx::query("INSERT INTO effects (event_id, seq) VALUES ($1, $2)")
                    .bind(event.id)
                    .bind(event.payload.seq)
                    .execute(conn)
                    .await?;
                Ok(())
            })
        },
    );
    let mut running = Running::new();
    running.consumer(consumer);
    s.wait_until_consuming().await;

    publish_pings(&s, 13..15).await;

    let dead = eventually("the panicking event in the DLQ", || async {
        let found = s.dead_letters().await;
        (!found.is_empty()).then_some(found)
    })
    .await;
    eventually("the healthy event", || async {
        (s.db.effects_for(14).await == 1).then_some(())
    })
    .await;
    running.stop().await;

    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].death_count, 3);
    assert!(
        dead[0].reason.contains("failed 3 times"),
        "{}",
        dead[0].reason
    );
    assert!(dead[0].reason.contains("panicked"), "{}", dead[0].reason);
    assert_eq!(calls.load(Ordering::SeqCst), 3, "delivery limit is 3");
    assert_eq!(s.db.effects_for(13).await, 0);
}

// ---------------------------------------------------------------------------------------------
// RabbitMQ

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_committed_event_is_consumed_exactly_once_and_rolled_back_never() {
    committed_event_is_consumed_exactly_once_and_rolled_back_never(Backend::RabbitMq).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_a_redelivered_event_changes_nothing() {
    a_redelivered_event_changes_nothing(Backend::RabbitMq).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_a_crash_after_commit_before_ack_causes_no_second_effect() {
    a_crash_after_commit_before_ack_causes_no_second_effect(Backend::RabbitMq).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_a_poison_message_is_dead_lettered_and_replayed_once_fixed() {
    a_poison_message_is_dead_lettered_and_replayed_once_fixed(Backend::RabbitMq).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_unreadable_versions_are_refused_and_unknown_fields_tolerated() {
    unreadable_versions_are_refused_and_unknown_fields_tolerated(Backend::RabbitMq).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_an_unreachable_broker_fails_fast() {
    an_unreachable_broker_fails_fast(Backend::RabbitMq).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_handlers_run_concurrently_up_to_the_limit() {
    handlers_run_concurrently_up_to_the_limit(Backend::RabbitMq).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_shutdown_finishes_every_message_in_hand() {
    shutdown_finishes_every_message_in_hand(Backend::RabbitMq).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_a_panicking_handler_is_retried_then_dead_lettered() {
    a_panicking_handler_is_retried_then_dead_lettered(Backend::RabbitMq).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_no_event_is_lost_while_the_broker_is_away() {
    let s = Setup::new(Backend::RabbitMq, true).await;
    let proxy = Arc::clone(s.proxy.as_ref().unwrap());
    let controls = Controls::new();
    let mut running = Running::new();
    running.consumer(s.consumer(&controls));
    s.wait_until_consuming().await;
    running.relay(&s.db.pool, &s.bus, &s.service);
    s.db.commit(Ping { seq: 0 }).await;
    eventually("the warm-up event", || async {
        (s.db.effects_for(0).await == 1).then_some(())
    })
    .await;

    proxy.cut().await;
    for seq in 1..=1000 {
        s.db.commit(Ping { seq }).await;
    }
    eventually("the relay to notice the outage", || async {
        let failed =
            s.db.scalar(
                "SELECT count(*) FROM outbox WHERE last_error IS NOT NULL AND published_at IS NULL",
            )
            .await;
        (failed > 0).then_some(())
    })
    .await;
    proxy.restore();

    eventually("all 1,000 events to be applied", || async {
        (s.db.scalar("SELECT count(DISTINCT seq) FROM effects").await == 1001).then_some(())
    })
    .await;
    running.stop().await;

    assert_eq!(s.db.scalar("SELECT count(*) FROM effects").await, 1001);
    assert_eq!(
        s.db.scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .await,
        0
    );
    assert!(counter("outbox_publish_failures_total", &[("service", &s.service)]) >= 1);
}

// ---------------------------------------------------------------------------------------------
// SQS (moto)

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_committed_event_is_consumed_exactly_once_and_rolled_back_never() {
    committed_event_is_consumed_exactly_once_and_rolled_back_never(Backend::Sqs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_a_redelivered_event_changes_nothing() {
    a_redelivered_event_changes_nothing(Backend::Sqs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_a_crash_after_commit_before_ack_causes_no_second_effect() {
    a_crash_after_commit_before_ack_causes_no_second_effect(Backend::Sqs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_a_poison_message_is_dead_lettered_and_replayed_once_fixed() {
    a_poison_message_is_dead_lettered_and_replayed_once_fixed(Backend::Sqs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_unreadable_versions_are_refused_and_unknown_fields_tolerated() {
    unreadable_versions_are_refused_and_unknown_fields_tolerated(Backend::Sqs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_an_unreachable_broker_fails_fast() {
    an_unreachable_broker_fails_fast(Backend::Sqs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_handlers_run_concurrently_up_to_the_limit() {
    handlers_run_concurrently_up_to_the_limit(Backend::Sqs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_shutdown_finishes_every_message_in_hand() {
    shutdown_finishes_every_message_in_hand(Backend::Sqs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_a_panicking_handler_is_retried_then_dead_lettered() {
    a_panicking_handler_is_retried_then_dead_lettered(Backend::Sqs).await;
}

// ---------------------------------------------------------------------------------------------
// In-process backend

#[tokio::test]
async fn in_memory_committed_event_is_consumed_exactly_once_and_rolled_back_never() {
    committed_event_is_consumed_exactly_once_and_rolled_back_never(Backend::InMemory).await;
}

#[tokio::test]
async fn in_memory_a_redelivered_event_changes_nothing() {
    a_redelivered_event_changes_nothing(Backend::InMemory).await;
}

#[tokio::test]
async fn in_memory_a_poison_message_is_dead_lettered_and_replayed_once_fixed() {
    a_poison_message_is_dead_lettered_and_replayed_once_fixed(Backend::InMemory).await;
}

#[tokio::test]
async fn in_memory_unreadable_versions_are_refused_and_unknown_fields_tolerated() {
    unreadable_versions_are_refused_and_unknown_fields_tolerated(Backend::InMemory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_handlers_run_concurrently_up_to_the_limit() {
    handlers_run_concurrently_up_to_the_limit(Backend::InMemory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_shutdown_finishes_every_message_in_hand() {
    shutdown_finishes_every_message_in_hand(Backend::InMemory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_a_panicking_handler_is_retried_then_dead_lettered() {
    a_panicking_handler_is_retried_then_dead_lettered(Backend::InMemory).await;
}

#[tokio::test]
async fn a_consumer_with_no_concurrency_refuses_to_start() {
    let s = Setup::new(Backend::InMemory, false).await;
    let mut config = s.config.clone();
    config.consumer.concurrency = 0;
    let controls = Controls::new();

    let connected = event_bus::connect(config.clone()).await;
    let ran = Consumer::new(s.db.pool.clone(), s.bus.clone(), "x")
        .settings(config.consumer)
        .on_handler::<Ping, _>(RecordPing(controls))
        .run(tokio_util::sync::CancellationToken::new())
        .await;

    assert!(matches!(connected, Err(event_bus::BusError::Config(_))));
    assert!(matches!(ran, Err(event_bus::BusError::Config(_))));
}

#[tokio::test]
async fn a_closure_handler_sees_the_event_and_writes_in_the_same_transaction() {
    let s = Setup::new(Backend::InMemory, false).await;
    let consumer =
        Consumer::new(s.db.pool.clone(), s.bus.clone(), &s.service).on::<Ping, _>(|event, conn| {
            Box::pin(async move {
                sqlx::query("INSERT INTO effects (event_id, seq) VALUES ($1, $2)")
                    .bind(event.id)
                    .bind(event.payload.seq * 10)
                    .execute(conn)
                    .await?;
                Ok(())
            })
        });
    let mut running = Running::new();
    running.consumer(consumer);
    s.wait_until_consuming().await;
    running.relay(&s.db.pool, &s.bus, &s.service);

    let event = s.db.commit(Ping { seq: 4 }).await;

    eventually("the effect", || async {
        (s.db.effects_for(40).await == 1).then_some(())
    })
    .await;
    running.stop().await;
    let recorded: Uuid = sqlx::query_scalar("SELECT event_id FROM processed_events")
        .fetch_one(&s.db.pool)
        .await
        .unwrap();
    assert_eq!(recorded, event.id);
}

#[tokio::test]
async fn the_relay_prunes_published_rows_past_the_retention_only() {
    let s = Setup::new(Backend::InMemory, false).await;
    for seq in 1..=3 {
        s.db.commit(Ping { seq }).await;
    }
    sqlx::query(
        "UPDATE outbox SET published_at = now() - interval '8 days' \
         WHERE envelope->'payload'->>'seq' = '1'",
    )
    .execute(&s.db.pool)
    .await
    .unwrap();
    sqlx::query("UPDATE outbox SET published_at = now() WHERE envelope->'payload'->>'seq' = '2'")
        .execute(&s.db.pool)
        .await
        .unwrap();
    let relay = event_bus::Relay::new(
        s.db.pool.clone(),
        s.bus.clone(),
        event_bus::RelaySettings::new(&s.service),
    );

    let pruned = relay.prune().await.unwrap();

    assert_eq!(pruned, 1);
    let left: Vec<String> =
        sqlx::query_scalar("SELECT envelope->'payload'->>'seq' FROM outbox ORDER BY seq")
            .fetch_all(&s.db.pool)
            .await
            .unwrap();
    assert_eq!(left, ["2", "3"]);
}

#[tokio::test]
async fn a_consumer_without_handlers_or_with_two_for_a_topic_refuses_to_start() {
    let s = Setup::new(Backend::InMemory, false).await;
    let cancel = tokio_util::sync::CancellationToken::new();

    let empty = Consumer::new(s.db.pool.clone(), s.bus.clone(), "x")
        .run(cancel.clone())
        .await;
    let controls = Controls::new();
    let doubled = Consumer::new(s.db.pool.clone(), s.bus.clone(), "x")
        .on_handler::<Ping, _>(RecordPing(Arc::clone(&controls)))
        .on_handler::<Ping, _>(RecordPing(controls))
        .run(cancel)
        .await;

    assert!(matches!(empty, Err(event_bus::BusError::Config(_))));
    assert!(matches!(doubled, Err(event_bus::BusError::Config(_))));
}

// ---------------------------------------------------------------------------------------------
// Subscribers declared by the publisher

/// An event committed before its consumer has ever started is not dropped by the exchange: the
/// publisher declares every subscriber's queue from the routing table first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_an_event_published_before_its_consumer_first_starts_waits_for_it() {
    let mut s = Setup::new(Backend::RabbitMq, false).await;
    let routes = std::collections::BTreeMap::from([(
        <Ping as event_bus::EventPayload>::TOPIC.to_owned(),
        vec![s.service.clone()],
    )]);
    s.config.sqs.routes = routes.clone();
    let mut direct_config = rabbit_config(direct_amqp_url());
    direct_config.exchange = s.config.exchange.clone();
    direct_config.queue_prefix = s.config.queue_prefix.clone();
    direct_config.sqs.routes = routes;
    s.direct = event_bus::connect(direct_config).await.unwrap();
    s.bus = s.direct.clone();

    let mut running = Running::new();
    running.relay(&s.db.pool, &s.direct, &s.service);
    s.db.commit(Ping { seq: 1 }).await;
    eventually("the relay to publish", || async {
        (s.db
            .scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .await
            == 0)
            .then_some(())
    })
    .await;

    // Only now does the consumer start for the first time.
    let controls = Controls::new();
    running.consumer(s.consumer(&controls));
    eventually("the early event to be applied", || async {
        (s.db.effects_for(1).await == 1).then_some(())
    })
    .await;
    running.stop().await;
    assert_eq!(controls.calls_for(1), 1);
}

// ---------------------------------------------------------------------------------------------
// Throwaway queues

/// What a passive declare (which creates nothing) says of a queue.
#[derive(Debug, PartialEq, Eq)]
enum QueueProbe {
    /// The broker refused the declare: no such queue.
    Missing,
    /// The queue exists with this many consumers.
    Consumers(u32),
    /// No answer within 5 s (bounded, so that a stalled broker makes a polling caller try
    /// again rather than hang, and is never taken for a missing queue).
    NoAnswer,
}

async fn probe_rabbit_queue(queue: &str) -> QueueProbe {
    let probe = async {
        let connection =
            lapin::Connection::connect(&direct_amqp_url(), lapin::ConnectionProperties::default())
                .await
                .ok()?;
        let channel = connection.create_channel().await.ok()?;
        let declared = channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                Default::default(),
            )
            .await;
        let _ = connection.close(200, "bye".into()).await;
        Some(match declared {
            Ok(q) => QueueProbe::Consumers(q.consumer_count()),
            Err(_) => QueueProbe::Missing,
        })
    };
    tokio::time::timeout(Duration::from_secs(5), probe)
        .await
        .ok()
        .flatten()
        .unwrap_or(QueueProbe::NoAnswer)
}

/// With a queue expiry set (as tests set it), a consumed queue outlives the expiry, and the
/// broker deletes it by itself once its consumer is gone, so teardown never has to delete a
/// fresh quorum queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_a_throwaway_queue_lives_while_consumed_and_expires_after() {
    let expiry = Duration::from_secs(2);
    let s = Setup::with(Backend::RabbitMq, false, |config| {
        config.queue_expiry = Some(expiry);
    })
    .await;
    let controls = Controls::new();
    let mut running = Running::new();
    running.consumer(s.consumer(&controls));
    s.wait_until_consuming().await;

    tokio::time::sleep(expiry * 2).await;
    let queue = s.config.queue_name(&s.service);
    assert!(
        matches!(probe_rabbit_queue(&queue).await, QueueProbe::Consumers(_)),
        "a consumed queue must not expire"
    );
    s.db.commit(Ping { seq: 1 }).await;
    running.relay(&s.db.pool, &s.bus, &s.service);
    eventually("the event to be applied", || async {
        (s.db.effects_for(1).await == 1).then_some(())
    })
    .await;

    running.stop().await;
    eventually("the unused queue to expire", || async {
        (probe_rabbit_queue(&queue).await == QueueProbe::Missing).then_some(())
    })
    .await;
}
