//! `dlq replay --actor` against the real RabbitMQ and a local SQS server (moto): a replay needs
//! an actor and writes one audit row naming the replayed events; a refused replay moves nothing
//! and records nothing; a listing records nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use service_kit::audit::{OPERATOR_ROLE, Operator};
use service_kit::event_bus::{
    self, BackendKind, BusConfig, OutgoingMessage, SharedBus, SqsCredentials, Subscription, dlq,
};
use service_kit::service::dlq as dlq_command;
use sqlx::{Connection, Executor, PgConnection, PgPool};
use uuid::Uuid;

const AUDIT_SQL: &str = include_str!("../../../migrations/notification/0003_audit.sql");
const TOPIC: &str = "dlqaudit.thing_happened";
/// A bound on every wait (not a timing assertion).
const PATIENCE: Duration = Duration::from_secs(60);

fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

fn unique() -> String {
    Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// A fresh database holding only the audit table.
struct Db {
    name: String,
    pool: PgPool,
}

impl Db {
    async fn new() -> Self {
        let name = format!("test_dlq_audit_{}", unique());
        let mut conn = PgConnection::connect(&admin_url()).await.unwrap();
        conn.execute(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
            .await
            .unwrap();
        conn.close().await.unwrap();
        let base = admin_url().rsplit_once('/').unwrap().0.to_owned();
        let pool = PgPool::connect(&format!("{base}/{name}")).await.unwrap();
        sqlx::raw_sql(AUDIT_SQL).execute(&pool).await.unwrap();
        Self { name, pool }
    }

    async fn rows(&self) -> Vec<(Uuid, String, String, String, String, Value, Option<String>)> {
        sqlx::query_as(
            "SELECT actor_id, actor_role, entity, entity_id, action, changes, request_id \
             FROM audit_log ORDER BY occurred_at, id",
        )
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }

    async fn drop(self) {
        self.pool.close().await;
        let mut conn = PgConnection::connect(&admin_url()).await.unwrap();
        conn.execute(sqlx::AssertSqlSafe(format!(
            r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#,
            self.name
        )))
        .await
        .unwrap();
    }
}

/// A moto server of this test's own, killed when dropped (`AWS_ENDPOINT_URL` when set).
struct Moto {
    child: Option<Child>,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn moto() -> Moto {
    if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") {
        return Moto {
            child: None,
            endpoint,
        };
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server must be on PATH (pip install 'moto[server]') or AWS_ENDPOINT_URL set");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(tokio::time::Instant::now() < deadline, "moto did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Moto {
        child: Some(child),
        endpoint: format!("http://127.0.0.1:{port}"),
    }
}

fn rabbit_config() -> BusConfig {
    let id = unique();
    BusConfig {
        backend: BackendKind::RabbitMq,
        amqp_url: amqp_url(),
        exchange: format!("dlqaudit-{id}"),
        queue_prefix: format!("dlqaudit-{id}-"),
        queue_expiry: Some(event_bus::topology::THROWAWAY_QUEUE_EXPIRY),
        // Patient with a shared broker that is busy with every other test's queues.
        connect_timeout: std::time::Duration::from_secs(30),
        publish_timeout: std::time::Duration::from_secs(30),
        ..BusConfig::default()
    }
}

fn sqs_config(endpoint: &str, service: &str) -> BusConfig {
    let mut config = BusConfig {
        backend: BackendKind::Sqs,
        queue_prefix: format!("dlqaudit-{}-", unique()),
        ..BusConfig::default()
    };
    config.sqs.endpoint_url = Some(endpoint.to_owned());
    config.sqs.credentials = Some(SqsCredentials {
        access_key_id: "testing".to_owned(),
        secret_access_key: "testing".to_owned(),
    });
    config.sqs.wait_time = Duration::from_secs(1);
    config
        .sqs
        .routes
        .insert(TOPIC.to_owned(), vec![service.to_owned()]);
    config
}

/// Puts one event per id into `service`'s dead-letter queue the way a consumer does.
async fn dead_letter(bus: &SharedBus, service: &str, ids: &[Uuid]) {
    let subscription = Subscription {
        service: service.to_owned(),
        topics: vec![TOPIC.to_owned()],
        prefetch: 10,
    };
    let mut stream = bus.subscribe(&subscription).await.unwrap();
    for id in ids {
        let body = json!({"id": id, "topic": TOPIC, "version": 1, "payload": {}});
        bus.publish(OutgoingMessage {
            event_id: *id,
            topic: TOPIC.to_owned(),
            body: serde_json::to_vec(&body).unwrap(),
        })
        .await
        .unwrap();
    }
    for _ in ids {
        let incoming = tokio::time::timeout(PATIENCE, stream.next())
            .await
            .expect("a delivery")
            .unwrap();
        incoming
            .acknowledger
            .dead_letter("handler refused it".to_owned())
            .await
            .unwrap();
    }
    stream.close().await;
    dead_letters_become(bus, service, ids.len()).await;
}

/// Waits until `service`'s dead-letter queue holds `count` messages; returns their ids.
async fn dead_letters_become(bus: &SharedBus, service: &str, count: usize) -> Vec<Uuid> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let letters = dlq::list(&**bus, service).await.unwrap();
        if letters.len() == count {
            return letters.iter().filter_map(|l| l.event_id).collect();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the dead-letter queue holds {} messages, not {count}",
            letters.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn args(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

async fn refused_replays_move_nothing_and_record_nothing(config: BusConfig, service: &str) {
    let db = Db::new().await;
    let bus = event_bus::connect(config.clone()).await.unwrap();
    let id = Uuid::now_v7();
    dead_letter(&bus, service, &[id]).await;

    let without_actor = dlq_command::run(&*bus, Some(&db.pool), service, &args(&["replay"]))
        .await
        .expect_err("no actor");
    assert!(
        without_actor.to_string().contains("--actor"),
        "{without_actor}"
    );

    let e_mail = dlq_command::run(
        &*bus,
        Some(&db.pool),
        service,
        &args(&["replay", "--actor", "ops@example.com"]),
    )
    .await
    .expect_err("an e-mail address is not an actor");
    assert!(e_mail.to_string().contains("operator handle"), "{e_mail}");

    let no_database = dlq_command::run(&*bus, None, service, &args(&["replay", "--actor", "ops"]))
        .await
        .expect_err("nowhere to audit");
    assert!(no_database.to_string().contains("audit"), "{no_database}");

    let unknown = Uuid::now_v7();
    let not_there = dlq_command::run(
        &*bus,
        Some(&db.pool),
        service,
        &args(&["replay", &unknown.to_string(), "--actor", "ops"]),
    )
    .await
    .expect_err("no such dead letter");
    assert!(
        not_there.to_string().contains(&unknown.to_string()),
        "{not_there}"
    );

    let listed = dlq_command::run(&*bus, Some(&db.pool), service, &args(&["list"]))
        .await
        .unwrap();
    assert!(listed.contains(&id.to_string()), "{listed}");

    assert_eq!(dead_letters_become(&bus, service, 1).await, vec![id]);
    assert!(
        db.rows().await.is_empty(),
        "refusals and reads record nothing"
    );
    db.drop().await;
    let _ = event_bus::topology::delete_rabbit_topology(&config, &[service]).await;
}

async fn a_replay_records_who_replayed_which_events(config: BusConfig, service: &str) {
    let db = Db::new().await;
    let bus = event_bus::connect(config.clone()).await.unwrap();
    let (first, second, third) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    dead_letter(&bus, service, &[first, second, third]).await;

    // One event, by an operator handle.
    let out = dlq_command::run(
        &*bus,
        Some(&db.pool),
        service,
        &args(&["replay", &second.to_string(), "--actor", "jsmith"]),
    )
    .await
    .unwrap();
    assert!(out.contains("replayed 1 message"), "{out}");
    let mut left = dead_letters_become(&bus, service, 2).await;
    left.sort();
    assert_eq!(left, vec![first, third]);

    // The rest, by a staff user id.
    let staff = Uuid::now_v7();
    let out = dlq_command::run(
        &*bus,
        Some(&db.pool),
        service,
        &args(&["replay", &format!("--actor={staff}")]),
    )
    .await
    .unwrap();
    assert!(out.contains("replayed 2 message"), "{out}");
    dead_letters_become(&bus, service, 0).await;

    let rows = db.rows().await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let (actor, role, entity, entity_id, action, changes, request_id) = &rows[0];
    assert_eq!(*actor, Operator::Handle("jsmith".to_owned()).id());
    assert_eq!(role, OPERATOR_ROLE);
    assert_eq!(entity, "dead_letter_queue");
    assert_eq!(entity_id, service);
    assert_eq!(action, "dlq.replay");
    assert_eq!(*request_id, None);
    assert_eq!(
        *changes,
        json!({
            "operator": {"after": "jsmith"},
            "selection": {"after": "event"},
            "eventIds": {"after": [second]},
            "withoutEventId": {"after": 0},
            "topics": {"after": [TOPIC]},
            "count": {"after": 1},
        })
    );

    let (actor, role, _, _, action, changes, _) = &rows[1];
    assert_eq!(*actor, staff);
    assert_eq!(role, OPERATOR_ROLE);
    assert_eq!(action, "dlq.replay");
    assert_eq!(changes["selection"]["after"], "all");
    assert_eq!(changes["count"]["after"], 2);
    assert!(
        changes.get("operator").is_none(),
        "a user id needs no handle"
    );
    let mut ids: Vec<Uuid> = serde_json::from_value(changes["eventIds"]["after"].clone()).unwrap();
    ids.sort();
    let mut expected = vec![first, third];
    expected.sort();
    assert_eq!(ids, expected);

    // An empty queue: nothing replayed, nothing recorded.
    let out = dlq_command::run(
        &*bus,
        Some(&db.pool),
        service,
        &args(&["replay", "--actor", "jsmith"]),
    )
    .await
    .unwrap();
    assert!(out.contains("nothing replayed"), "{out}");
    assert_eq!(db.rows().await.len(), 2);
    db.drop().await;
    let _ = event_bus::topology::delete_rabbit_topology(&config, &[service]).await;
}

#[tokio::test]
async fn dlq_audit_rabbit_refused_replays_move_nothing_and_record_nothing() {
    refused_replays_move_nothing_and_record_nothing(rabbit_config(), "dlqaudit-refused").await;
}

#[tokio::test]
async fn dlq_audit_rabbit_a_replay_records_who_replayed_which_events() {
    a_replay_records_who_replayed_which_events(rabbit_config(), "dlqaudit-replay").await;
}

#[tokio::test]
async fn dlq_audit_sqs_refused_replays_move_nothing_and_record_nothing() {
    let moto = moto().await;
    let service = "dlqaudit-refused";
    refused_replays_move_nothing_and_record_nothing(sqs_config(&moto.endpoint, service), service)
        .await;
}

#[tokio::test]
async fn dlq_audit_sqs_a_replay_records_who_replayed_which_events() {
    let moto = moto().await;
    let service = "dlqaudit-replay";
    a_replay_records_who_replayed_which_events(sqs_config(&moto.endpoint, service), service).await;
}
