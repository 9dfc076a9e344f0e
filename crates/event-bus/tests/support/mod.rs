//! Test harness: a fresh database per test, unique broker names, a cuttable TCP proxy, a local
//! SQS server (moto), and counters read from a debugging metrics recorder.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::HashMap,
    future::Future,
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex, OnceLock, Weak,
        atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicUsize, Ordering},
    },
    time::Duration,
};

use event_bus::{
    BackendKind, BusConfig, Consumer, ConsumerSettings, DomainEvent, EventHandler, EventPayload,
    HandlerError, Relay, RelaySettings, SharedBus, SqsCredentials,
};
use futures::future::BoxFuture;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use serde::{Deserialize, Serialize};
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool, postgres::PgPoolOptions};
use tokio::{
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// How long any wait may last before the test fails (a bound, not a timing assertion).
pub const PATIENCE: Duration = Duration::from_secs(60);

fn admin_url() -> String {
    std::env::var("EVENT_BUS_TEST_ADMIN_URL").unwrap_or_else(|_| ADMIN_URL.to_owned())
}

fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| AMQP_URL.to_owned())
}

// ---------------------------------------------------------------------------------------------
// Test payloads

/// The test event: one per `seq`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ping {
    pub seq: i64,
}

impl EventPayload for Ping {
    const TOPIC: &'static str = "evbus.ping";
    const VERSION: u16 = 1;
}

/// A later, incompatible version of the same topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PingV2 {
    pub sequence_number: String,
}

impl EventPayload for PingV2 {
    const TOPIC: &'static str = "evbus.ping";
    const VERSION: u16 = 2;
}

/// Version 1 with a field that consumers built against [`Ping`] do not know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PingWithExtra {
    pub seq: i64,
    pub colour: String,
}

impl EventPayload for PingWithExtra {
    const TOPIC: &'static str = "evbus.ping";
    const VERSION: u16 = 1;
}

// ---------------------------------------------------------------------------------------------
// Database

/// A fresh database with the event tables and an `effects` table the test handler writes.
pub struct TestDb {
    pub name: String,
    pub pool: PgPool,
}

impl TestDb {
    pub async fn new() -> Self {
        let name = format!("evbus_test_{}", Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&admin_url())
            .await
            .expect("Postgres must listen on 127.0.0.1:5432");
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap();
        admin.close().await.unwrap();
        let admin = admin_url();
        let base = admin
            .rsplit_once('/')
            .map_or(admin.as_str(), |(base, _)| base);
        let url = format!("{base}/{name}");
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect(&url)
            .await
            .unwrap();
        sqlx::raw_sql(include_str!("../schema.sql"))
            .execute(&pool)
            .await
            .unwrap();
        sqlx::raw_sql("CREATE TABLE effects (event_id UUID NOT NULL, seq BIGINT NOT NULL)")
            .execute(&pool)
            .await
            .unwrap();
        Self { name, pool }
    }

    pub async fn scalar(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.pool).await.unwrap()
    }

    pub async fn effects_for(&self, seq: i64) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM effects WHERE seq = $1")
            .bind(seq)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// Writes `payload` to the outbox in its own committed transaction.
    pub async fn commit<P: EventPayload>(&self, payload: P) -> DomainEvent<P> {
        let event = DomainEvent::new("evbus-test", payload);
        let mut tx = self.pool.begin().await.unwrap();
        event_bus::outbox::publish(&mut tx, &event).await.unwrap();
        tx.commit().await.unwrap();
        event
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop from a thread of its own: Drop cannot await, and this may run inside a runtime.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            // FORCE ends this test's pool connections too (closing the pool here would wait for
            // the test's runtime, which is blocked on this thread).
            runtime.block_on(async move {
                if let Ok(mut admin) = PgConnection::connect(&admin_url()).await {
                    let _ = sqlx::query(AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut admin)
                    .await;
                }
            });
        })
        .join();
    }
}

// ---------------------------------------------------------------------------------------------
// A TCP proxy the test can cut

struct ProxyState {
    up: bool,
    connections: Vec<JoinHandle<()>>,
}

/// Forwards 127.0.0.1:<port> to a target. `cut` closes every connection and refuses new ones
/// (accepting and closing at once) until `restore`.
pub struct TcpProxy {
    pub addr: SocketAddr,
    state: Arc<Mutex<ProxyState>>,
    acceptor: JoinHandle<()>,
}

impl TcpProxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(ProxyState {
            up: true,
            connections: Vec::new(),
        }));
        let shared = Arc::clone(&state);
        let acceptor = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                let mut state = shared.lock().unwrap();
                if !state.up {
                    drop(inbound);
                    continue;
                }
                state.connections.retain(|c| !c.is_finished());
                state.connections.push(tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                }));
            }
        });
        Self {
            addr,
            state,
            acceptor,
        }
    }

    /// Closes all connections (returning once they are closed) and refuses new ones.
    pub async fn cut(&self) {
        let connections = {
            let mut state = self.state.lock().unwrap();
            state.up = false;
            std::mem::take(&mut state.connections)
        };
        for connection in &connections {
            connection.abort();
        }
        for connection in connections {
            let _ = connection.await;
        }
    }

    pub fn restore(&self) {
        self.state.lock().unwrap().up = true;
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.acceptor.abort();
        for connection in &self.state.lock().unwrap().connections {
            connection.abort();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Metrics

/// A metric name and its sorted labels.
type Series = (String, Vec<(String, String)>);

struct Counters {
    snapshotter: Snapshotter,
    totals: Mutex<HashMap<Series, u64>>,
}

fn counters() -> &'static Counters {
    static COUNTERS: OnceLock<Counters> = OnceLock::new();
    COUNTERS.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder
            .install()
            .expect("no other metrics recorder in this test binary");
        Counters {
            snapshotter,
            totals: Mutex::new(HashMap::new()),
        }
    })
}

/// Installs the recorder; call before anything records.
pub fn init_metrics() {
    let _ = counters();
}

/// The total of counter `name` over all series whose labels include `labels`.
pub fn counter(name: &str, labels: &[(&str, &str)]) -> u64 {
    let counters = counters();
    // Snapshots reset counters, so accumulate them here (one lock: tests run in parallel).
    let mut totals = counters.totals.lock().unwrap();
    for (key, _, _, value) in counters.snapshotter.snapshot().into_vec() {
        if let DebugValue::Counter(delta) = value {
            let key = key.key();
            let mut series: Vec<(String, String)> = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            series.sort();
            *totals.entry((key.name().to_owned(), series)).or_default() += delta;
        }
    }
    totals
        .iter()
        .filter(|((metric, series), _)| {
            metric == name
                && labels
                    .iter()
                    .all(|(k, v)| series.iter().any(|(sk, sv)| sk == k && sv == v))
        })
        .map(|(_, total)| *total)
        .sum()
}

// ---------------------------------------------------------------------------------------------
// moto (SQS)

/// A moto server shared by the tests running at the same time; killed when the last drops it.
pub struct Moto {
    child: Option<Child>,
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `AWS_ENDPOINT_URL` when set; otherwise a `moto_server` this test binary starts.
pub async fn moto() -> Arc<Moto> {
    static SHARED: Mutex<Weak<Moto>> = Mutex::new(Weak::new());
    static STARTING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _starting = STARTING.lock().await;
    if let Some(moto) = SHARED.lock().unwrap().upgrade() {
        return moto;
    }
    let moto = Arc::new(match std::env::var("AWS_ENDPOINT_URL") {
        Ok(endpoint) => Moto {
            child: None,
            endpoint,
        },
        Err(_) => {
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
            let moto = Moto {
                child: Some(child),
                endpoint: format!("http://127.0.0.1:{port}"),
            };
            let deadline = tokio::time::Instant::now() + PATIENCE;
            while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "moto_server did not start"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            moto
        }
    });
    *SHARED.lock().unwrap() = Arc::downgrade(&moto);
    moto
}

// ---------------------------------------------------------------------------------------------
// Bus configurations

pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", &Uuid::new_v4().simple().to_string()[..12])
}

/// Quick retries, so that tests finish soon.
pub fn test_consumer_settings() -> ConsumerSettings {
    ConsumerSettings {
        delivery_limit: 3,
        concurrency: 4,
        prefetch: 10,
        retry_backoff: Duration::from_millis(20),
        retry_backoff_max: Duration::from_millis(200),
        reconnect_backoff_max: Duration::from_millis(500),
        depth_poll_interval: Duration::from_millis(500),
    }
}

pub fn rabbit_config(amqp_url: String) -> BusConfig {
    let id = unique("");
    BusConfig {
        backend: BackendKind::RabbitMq,
        amqp_url,
        exchange: format!("evbus-test-{id}"),
        queue_prefix: format!("evbus-test-{id}-"),
        queue_expiry: Some(event_bus::topology::THROWAWAY_QUEUE_EXPIRY),
        publish_timeout: Duration::from_secs(3),
        connect_timeout: Duration::from_secs(3),
        consumer: test_consumer_settings(),
        ..BusConfig::default()
    }
}

/// The RabbitMQ address the tests use.
pub fn rabbit_addr() -> SocketAddr {
    let url = amqp_url();
    let host_port = url
        .split('@')
        .next_back()
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("127.0.0.1:5672");
    host_port
        .parse()
        .unwrap_or_else(|_| "127.0.0.1:5672".parse().unwrap())
}

/// The AMQP URL going through `proxy`.
pub fn proxied_amqp_url(proxy: &TcpProxy) -> String {
    format!("amqp://guest:guest@{}/%2f", proxy.addr)
}

pub fn direct_amqp_url() -> String {
    amqp_url()
}

pub fn sqs_config(endpoint: &str, service: &str) -> BusConfig {
    let id = unique("");
    let mut config = BusConfig {
        backend: BackendKind::Sqs,
        queue_prefix: format!("evbus-test-{id}-"),
        publish_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(5),
        consumer: test_consumer_settings(),
        ..BusConfig::default()
    };
    config.sqs.endpoint_url = Some(endpoint.to_owned());
    config.sqs.region = "eu-west-2".to_owned();
    config.sqs.credentials = Some(SqsCredentials {
        access_key_id: "testing".to_owned(),
        secret_access_key: "testing".to_owned(),
    });
    config.sqs.wait_time = Duration::from_secs(1);
    config.sqs.visibility_timeout = Duration::from_secs(2);
    config
        .sqs
        .routes
        .insert(Ping::TOPIC.to_owned(), vec![service.to_owned()]);
    config
}

pub fn test_relay_settings(service: &str) -> RelaySettings {
    RelaySettings {
        poll_interval: Duration::from_millis(50),
        backoff: Duration::from_millis(50),
        backoff_max: Duration::from_millis(500),
        metrics_interval: Duration::from_millis(200),
        ..RelaySettings::new(service)
    }
}

/// Deletes a test's RabbitMQ queues and exchanges.
pub fn delete_rabbit_topology(config: &BusConfig, service: &str) {
    let config = BusConfig {
        amqp_url: amqp_url(),
        ..config.clone()
    };
    let service = service.to_owned();
    let _ = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(event_bus::topology::delete_rabbit_topology(
            &config,
            &[&service],
        ))
    })
    .join();
}

// ---------------------------------------------------------------------------------------------
// The test handler

/// What the test handler does, steerable by the test.
#[derive(Default)]
pub struct Controls {
    /// Handler invocations, per `seq`.
    pub calls: Mutex<HashMap<i64, u32>>,
    /// Fail (retryably) for this `seq`; -1 for none.
    pub fail_seq: AtomicI64,
    /// Run once, on the first invocation, before the effect is written.
    pub hook: Mutex<Option<BoxFuture<'static, ()>>>,
    pub hook_ran: AtomicBool,
    pub total_calls: AtomicU32,
}

impl Controls {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            fail_seq: AtomicI64::new(-1),
            ..Self::default()
        })
    }

    pub fn calls_for(&self, seq: i64) -> u32 {
        self.calls.lock().unwrap().get(&seq).copied().unwrap_or(0)
    }
}

/// Writes one `effects` row per applied event.
pub struct RecordPing(pub Arc<Controls>);

impl EventHandler<Ping> for RecordPing {
    fn handle<'c>(
        &'c self,
        event: DomainEvent<Ping>,
        conn: &'c mut PgConnection,
    ) -> BoxFuture<'c, Result<(), HandlerError>> {
        Box::pin(async move {
            let seq = event.payload.seq;
            *self.0.calls.lock().unwrap().entry(seq).or_default() += 1;
            self.0.total_calls.fetch_add(1, Ordering::SeqCst);
            let hook = self.0.hook.lock().unwrap().take();
            if let Some(hook) = hook {
                hook.await;
                self.0.hook_ran.store(true, Ordering::SeqCst);
            }
            if self.0.fail_seq.load(Ordering::SeqCst) == seq {
                return Err(HandlerError::retry(format!("ping {seq} is poisoned")));
            }
            sqlx::query("INSERT INTO effects (event_id, seq) VALUES ($1, $2)")
                .bind(event.id)
                .bind(seq)
                .execute(conn)
                .await?;
            Ok(())
        })
    }
}

/// A handler that holds every event at a gate until the test lets it through, counting how
/// many wait there at once.
pub struct Gate {
    pub waiting: AtomicUsize,
    pub most_waiting: AtomicUsize,
    pub calls: AtomicUsize,
    pub open: tokio::sync::Semaphore,
}

impl Gate {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            waiting: AtomicUsize::new(0),
            most_waiting: AtomicUsize::new(0),
            calls: AtomicUsize::new(0),
            open: tokio::sync::Semaphore::new(0),
        })
    }

    /// Lets `n` more handler calls through.
    pub fn release(&self, n: usize) {
        self.open.add_permits(n);
    }
}

/// Waits at the gate inside the consumer's transaction, then writes one `effects` row.
pub struct GatedPing(pub Arc<Gate>);

impl EventHandler<Ping> for GatedPing {
    fn handle<'c>(
        &'c self,
        event: DomainEvent<Ping>,
        conn: &'c mut PgConnection,
    ) -> BoxFuture<'c, Result<(), HandlerError>> {
        Box::pin(async move {
            let gate = &self.0;
            gate.calls.fetch_add(1, Ordering::SeqCst);
            let now = gate.waiting.fetch_add(1, Ordering::SeqCst) + 1;
            gate.most_waiting.fetch_max(now, Ordering::SeqCst);
            gate.open.acquire().await.unwrap().forget();
            gate.waiting.fetch_sub(1, Ordering::SeqCst);
            sqlx::query("INSERT INTO effects (event_id, seq) VALUES ($1, $2)")
                .bind(event.id)
                .bind(event.payload.seq)
                .execute(conn)
                .await?;
            Ok(())
        })
    }
}

// ---------------------------------------------------------------------------------------------
// A running producer + consumer pair

pub struct Running {
    pub cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    pub fn new() -> Self {
        Self {
            cancel: CancellationToken::new(),
            tasks: Vec::new(),
        }
    }

    pub fn relay(&mut self, pool: &PgPool, bus: &SharedBus, service: &str) {
        let relay = Relay::new(pool.clone(), bus.clone(), test_relay_settings(service));
        self.tasks
            .push(tokio::spawn(relay.run(self.cancel.clone())));
    }

    pub fn consumer(&mut self, consumer: Consumer) {
        let cancel = self.cancel.clone();
        self.tasks.push(tokio::spawn(async move {
            consumer.run(cancel).await.expect("consumer configuration");
        }));
    }

    pub async fn stop(mut self) {
        self.cancel.cancel();
        for task in std::mem::take(&mut self.tasks) {
            task.await.expect("task panicked");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Waits until `probe` yields a value; fails the test after [`PATIENCE`].
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
