//! `events`: how many events per second go from a committed outbox row to a consumer over the
//! real RabbitMQ, and how long each takes from commit to consumption.
//!
//! A fresh database with the outbox/processed_events schema, a unique exchange and queue, the
//! real `event_bus::Relay` and `event_bus::Consumer` with production settings, and producers
//! committing events in transactions of 1 and of 50. Producer, relay and consumer are tasks of
//! this process, so one monotonic clock serves both ends: the producer stamps each event's
//! sequence number when its `COMMIT` returns, the consumer's handler stamps it when called; the
//! two stamps are joined by `(run, seq)` afterwards (no shared-map lookups on the hot path, and no
//! wall-clock envelope timestamps).

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use event_bus::{
    BusConfig, Consumer, DomainEvent, EventHandler, EventPayload, HandlerError, Relay,
    RelaySettings,
};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgConnection, PgPool};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::Ctx;
use crate::cleanup::{self, Item};
use crate::report::{Section, Table};
use crate::stats::{self, Latencies};

super::scenario!(
    "events",
    "outbox → relay → RabbitMQ → consumer: events/s and commit-to-consume p50/p99"
);

/// The producing service's name (envelope `producer`, relay metrics label).
const PRODUCER: &str = "bench-producer";
/// The consuming service's name (its queue is `<prefix>bench-consumer`).
const CONSUMER: &str = "bench-consumer";
/// A run fails when no event arrives for this long.
const STALL: Duration = Duration::from_secs(30);
/// Paced runs: commits in flight at most (beyond it the schedule slips, which the report shows).
const PACED_IN_FLIGHT: usize = 64;

/// The benchmark's event.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BenchPing {
    run: u32,
    seq: u32,
}

impl EventPayload for BenchPing {
    const TOPIC: &'static str = "bench.ping";
    const VERSION: u16 = 1;
}

/// Commit and receive stamps of one run: nanoseconds since the scenario's base instant, plus one
/// (0 means "not yet").
struct Tracker {
    commit: Vec<AtomicU64>,
    recv: Vec<AtomicU64>,
    received: AtomicUsize,
    duplicates: AtomicUsize,
}

impl Tracker {
    fn new(events: usize) -> Self {
        Self {
            commit: (0..events).map(|_| AtomicU64::new(0)).collect(),
            recv: (0..events).map(|_| AtomicU64::new(0)).collect(),
            received: AtomicUsize::new(0),
            duplicates: AtomicUsize::new(0),
        }
    }

    fn len(&self) -> usize {
        self.commit.len()
    }

    fn committed(&self, seqs: Range<usize>, stamp: u64) {
        for seq in seqs {
            if let Some(slot) = self.commit.get(seq) {
                slot.store(stamp, Ordering::Release);
            }
        }
    }

    fn received_at(&self, seq: usize, stamp: u64) {
        let Some(slot) = self.recv.get(seq) else {
            return;
        };
        if slot
            .compare_exchange(0, stamp, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.received.fetch_add(1, Ordering::AcqRel);
        } else {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What producer and consumer share.
struct Shared {
    base: Instant,
    runs: RwLock<HashMap<u32, Arc<Tracker>>>,
}

impl Shared {
    fn stamp(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }

    fn track(&self, run: u32, events: usize) -> Arc<Tracker> {
        let tracker = Arc::new(Tracker::new(events));
        self.runs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(run, Arc::clone(&tracker));
        tracker
    }

    fn tracker(&self, run: u32) -> Option<Arc<Tracker>> {
        self.runs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&run)
            .cloned()
    }
}

/// The consumer's handler: stamps the event (it runs inside the consumer's transaction, after
/// the `processed_events` insert and before commit and ack).
struct Record(Arc<Shared>);

impl EventHandler<BenchPing> for Record {
    fn handle<'c>(
        &'c self,
        event: DomainEvent<BenchPing>,
        _conn: &'c mut PgConnection,
    ) -> BoxFuture<'c, Result<(), HandlerError>> {
        let stamp = self.0.stamp();
        if let Some(tracker) = self.0.tracker(event.payload.run) {
            tracker.received_at(event.payload.seq as usize, stamp);
        }
        Box::pin(std::future::ready(Ok(())))
    }
}

/// One measured run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct RunResult {
    kind: &'static str,
    tx_size: u32,
    events: usize,
    producers: Option<usize>,
    target_rate: Option<f64>,
    commit_rate: f64,
    publish_rate: f64,
    end_to_end_rate: f64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    max_ms: Option<f64>,
    duplicates: usize,
    #[serde(skip)]
    latencies: Latencies,
}

async fn run_scenario(ctx: &Ctx) -> Result<Section> {
    let s = &ctx.settings;
    let database = format!("lomash_bench_events_{}", ctx.suffix);
    ctx.cleanup.push(Item::Database(database.clone()));
    cleanup::create_database(&s.database_url, &database)
        .await
        .context("step `database`")?;
    let pool = PgPoolOptions::new()
        .max_connections(u32::try_from(s.producers).unwrap_or(64).min(64) + 8)
        .connect(&cleanup::database_url(&s.database_url, &database))
        .await
        .with_context(|| format!("step `database`: cannot connect to {database}"))?;
    ctx.cleanup.push(Item::Pool(pool.clone()));
    sqlx::raw_sql(include_str!("../../sql/events_schema.sql"))
        .execute(&pool)
        .await
        .context("step `database`: cannot create the outbox/processed_events tables")?;
    println!("  database {database} with the outbox/processed_events schema");

    let config = BusConfig {
        amqp_url: s.amqp_url.clone(),
        exchange: format!("lomash.bench.{}", ctx.suffix),
        queue_prefix: format!("bench-{}-", ctx.suffix),
        ..BusConfig::default()
    };
    ctx.cleanup.push(Item::Rabbit {
        config: Box::new(config.clone()),
        services: vec![CONSUMER.to_owned()],
    });
    let bus = event_bus::connect(config.clone()).await.with_context(|| {
        format!(
            "step `broker`: cannot connect to RabbitMQ at {}",
            s.amqp_url
        )
    })?;
    let shared = Arc::new(Shared {
        base: Instant::now(),
        runs: RwLock::new(HashMap::new()),
    });
    let cancel = CancellationToken::new();
    let relay = Relay::new(pool.clone(), bus.clone(), RelaySettings::new(PRODUCER));
    let consumer =
        Consumer::new(pool.clone(), bus.clone(), CONSUMER).on_handler(Record(Arc::clone(&shared)));
    let handles = vec![
        tokio::spawn(relay.run(cancel.clone())),
        tokio::spawn({
            let cancel = cancel.clone();
            async move {
                if let Err(error) = consumer.run(cancel).await {
                    eprintln!("  ! the consumer stopped: {error}");
                }
            }
        }),
    ];
    ctx.cleanup.push(Item::Tasks { cancel, handles });
    println!(
        "  relay and consumer running on exchange {} (queue {})",
        config.exchange,
        config.queue_name(CONSUMER)
    );

    probe(&pool, &shared).await?;
    println!("  the consumer receives (probe event went through)");

    let mut results = Vec::new();
    let mut run_id = 1;
    let n = s.events as usize;
    for &k in &s.tx_sizes {
        println!(
            "  burst: {n} events, transactions of {k}, {} producers ...",
            s.producers
        );
        let burst = burst(&pool, &shared, run_id, k, n, s.producers).await?;
        run_id += 1;
        print_run(&burst);
        let rate = s
            .events_rate
            .unwrap_or(burst.end_to_end_rate / 2.0)
            .max(1.0);
        println!(
            "  paced: transactions of {k} at {} events/s for {} ...",
            stats::rate(rate),
            stats::show_duration(s.duration)
        );
        let paced = paced(&pool, &shared, run_id, k, rate, s.duration).await?;
        run_id += 1;
        print_run(&paced);
        results.push(burst);
        results.push(paced);
    }
    Ok(section(ctx, &results))
}

fn print_run(run: &RunResult) {
    println!(
        "    {} events: commits {}/s, published {}/s, commit→consume {}/s, p50 {}, p99 {}, max {}",
        run.events,
        stats::rate(run.commit_rate),
        stats::rate(run.publish_rate),
        stats::rate(run.end_to_end_rate),
        stats::latency(run.latencies.p50()),
        stats::latency(run.latencies.p99()),
        stats::latency(run.latencies.max()),
    );
}

/// Commits one event every 250 ms until the consumer has one: the queue is bound and the whole
/// path works before anything is measured.
async fn probe(pool: &PgPool, shared: &Arc<Shared>) -> Result<()> {
    const PROBES: usize = 120;
    let tracker = shared.track(0, PROBES);
    for seq in 0..PROBES {
        commit_batch(pool, shared, &tracker, 0, seq..seq + 1).await?;
        for _ in 0..5 {
            if tracker.received.load(Ordering::Acquire) > 0 {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    bail!(
        "step `probe`: no event reached the consumer within {}s (is RabbitMQ healthy? see the warnings above)",
        PROBES / 4
    )
}

/// Writes events `seqs` of `run` in one transaction and stamps them when the commit returns.
async fn commit_batch(
    pool: &PgPool,
    shared: &Shared,
    tracker: &Tracker,
    run: u32,
    seqs: Range<usize>,
) -> Result<()> {
    let mut tx = pool.begin().await.context("begin")?;
    for seq in seqs.clone() {
        let event = DomainEvent::new(
            PRODUCER,
            BenchPing {
                run,
                seq: u32::try_from(seq).unwrap_or(u32::MAX),
            },
        );
        event_bus::outbox::publish(&mut tx, &event)
            .await
            .context("outbox insert")?;
    }
    tx.commit().await.context("commit")?;
    tracker.committed(seqs, shared.stamp());
    Ok(())
}

/// `producers` tasks commit `events` events in transactions of `tx_size` as fast as they can.
async fn burst(
    pool: &PgPool,
    shared: &Arc<Shared>,
    run: u32,
    tx_size: u32,
    events: usize,
    producers: usize,
) -> Result<RunResult> {
    let tracker = shared.track(run, events);
    let next = Arc::new(AtomicUsize::new(0));
    let k = tx_size as usize;
    let started = shared.stamp();
    let mut tasks: JoinSet<Result<()>> = JoinSet::new();
    for _ in 0..producers {
        let (pool, shared, tracker, next) = (
            pool.clone(),
            Arc::clone(shared),
            Arc::clone(&tracker),
            Arc::clone(&next),
        );
        tasks.spawn(async move {
            loop {
                let first = next.fetch_add(k, Ordering::AcqRel);
                if first >= events {
                    return Ok::<(), anyhow::Error>(());
                }
                let last = (first + k).min(events);
                commit_batch(&pool, &shared, &tracker, run, first..last).await?;
            }
        });
    }
    let published = finish(&mut tasks, pool, shared, &tracker).await?;
    Ok(summarise(
        "burst",
        tx_size,
        Some(producers),
        None,
        (started, published),
        &tracker,
    ))
}

/// Commits transactions of `tx_size` on a fixed schedule (open loop) at `rate` events/s for
/// `duration`.
async fn paced(
    pool: &PgPool,
    shared: &Arc<Shared>,
    run: u32,
    tx_size: u32,
    rate: f64,
    duration: Duration,
) -> Result<RunResult> {
    let k = tx_size as usize;
    let transactions = ((rate * duration.as_secs_f64()) / k as f64)
        .round()
        .max(1.0) as usize;
    let events = transactions * k;
    let tracker = shared.track(run, events);
    let interval = Duration::from_secs_f64(k as f64 / rate);
    let permits = Arc::new(Semaphore::new(PACED_IN_FLIGHT));
    let started = shared.stamp();
    let start = tokio::time::Instant::now();
    let mut tasks: JoinSet<Result<()>> = JoinSet::new();
    for i in 0..transactions {
        tokio::time::sleep_until(start + interval.mul_f64(i as f64)).await;
        while let Some(joined) = tasks.try_join_next() {
            joined
                .context("a producer task panicked")?
                .context("step `produce`")?;
        }
        let permit = Arc::clone(&permits)
            .acquire_owned()
            .await
            .context("semaphore closed")?;
        let (pool, shared, tracker) = (pool.clone(), Arc::clone(shared), Arc::clone(&tracker));
        tasks.spawn(async move {
            let committed = commit_batch(&pool, &shared, &tracker, run, i * k..(i + 1) * k).await;
            drop(permit);
            committed
        });
    }
    let published = finish(&mut tasks, pool, shared, &tracker).await?;
    Ok(summarise(
        "paced",
        tx_size,
        None,
        Some(rate),
        (started, published),
        &tracker,
    ))
}

/// Polls the outbox (every 20 ms) until the relay has published every committed row, and returns
/// the stamp of the poll that saw none pending: when the relay keeps up, that is about the last
/// commit; when it does not, it is where the relay stands between producers and consumer.
/// Waits for the producers, then until the relay has published and the consumer received
/// every event of the run; returns when the last was published (as `wait_for_published`).
async fn finish(
    tasks: &mut JoinSet<Result<()>>,
    pool: &PgPool,
    shared: &Shared,
    tracker: &Tracker,
) -> Result<u64> {
    while let Some(joined) = tasks.join_next().await {
        joined
            .context("a producer task panicked")?
            .context("step `produce`")?;
    }
    let published = wait_for_published(pool, shared).await?;
    wait_for_all(tracker).await?;
    Ok(published)
}

async fn wait_for_published(pool: &PgPool, shared: &Shared) -> Result<u64> {
    let mut least = i64::MAX;
    let mut progress = Instant::now();
    loop {
        let pending: i64 =
            sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                .fetch_one(pool)
                .await
                .context("step `relay`: cannot count pending outbox rows")?;
        if pending == 0 {
            return Ok(shared.stamp());
        }
        if pending < least {
            least = pending;
            progress = Instant::now();
        } else if progress.elapsed() > STALL {
            bail!(
                "step `relay`: {pending} outbox rows pending, and none published for {}s",
                STALL.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until every event of the run has been consumed; fails when none arrives for [`STALL`].
async fn wait_for_all(tracker: &Tracker) -> Result<()> {
    let total = tracker.len();
    let mut seen = tracker.received.load(Ordering::Acquire);
    let mut progress = Instant::now();
    while seen < total {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = tracker.received.load(Ordering::Acquire);
        if now > seen {
            seen = now;
            progress = Instant::now();
        } else if progress.elapsed() > STALL {
            bail!(
                "step `consume`: {seen} of {total} events consumed, and none for {}s",
                STALL.as_secs()
            );
        }
    }
    Ok(())
}

fn summarise(
    kind: &'static str,
    tx_size: u32,
    producers: Option<usize>,
    target_rate: Option<f64>,
    (started, published): (u64, u64),
    tracker: &Tracker,
) -> RunResult {
    let mut samples = Vec::with_capacity(tracker.len());
    let (mut last_commit, mut last_recv) = (started, started);
    for (commit, recv) in tracker.commit.iter().zip(&tracker.recv) {
        let (commit, recv) = (commit.load(Ordering::Acquire), recv.load(Ordering::Acquire));
        last_commit = last_commit.max(commit);
        last_recv = last_recv.max(recv);
        samples.push(recv.saturating_sub(commit));
    }
    let events = tracker.len();
    let per_second = |until: u64| {
        let seconds = until.saturating_sub(started) as f64 / 1e9;
        if seconds > 0.0 {
            events as f64 / seconds
        } else {
            0.0
        }
    };
    let latencies = Latencies::from_samples(samples);
    let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
    RunResult {
        kind,
        tx_size,
        events,
        producers,
        target_rate,
        commit_rate: per_second(last_commit),
        publish_rate: per_second(published),
        end_to_end_rate: per_second(last_recv),
        p50_ms: ms(latencies.p50()),
        p99_ms: ms(latencies.p99()),
        max_ms: ms(latencies.max()),
        duplicates: tracker.duplicates.load(Ordering::Relaxed),
        latencies,
    }
}

fn section(ctx: &Ctx, results: &[RunResult]) -> Section {
    let s = &ctx.settings;
    let relay = RelaySettings::new(PRODUCER);
    let consumer = BusConfig::default().consumer;
    let mut table = Table::new(&[
        "run",
        "events per tx",
        "events",
        "producers",
        "commits (events/s)",
        "published (events/s)",
        "commit → consume (events/s)",
        "p50",
        "p99",
        "max",
    ]);
    for run in results {
        let label = match run.target_rate {
            Some(rate) => format!("paced at {} events/s", stats::rate(rate)),
            None => "burst (as fast as possible)".to_owned(),
        };
        table.row(vec![
            label,
            run.tx_size.to_string(),
            stats::thousands(run.events as u64),
            run.producers
                .map_or_else(|| "schedule".to_owned(), |p| p.to_string()),
            stats::rate(run.commit_rate),
            stats::rate(run.publish_rate),
            stats::rate(run.end_to_end_rate),
            stats::latency(run.latencies.p50()),
            stats::latency(run.latencies.p99()),
            stats::latency(run.latencies.max()),
        ]);
    }
    let sizes: Vec<String> = s.tx_sizes.iter().map(ToString::to_string).collect();
    let mut notes = vec![
        "DESIGN.md §7 sets no budget for the event bus; issue 3 asks for events/s and \
         commit-to-consume p50/p99, which are the figures above."
            .to_owned(),
        "In a burst every event is committed as fast as the producers can, so its latencies are \
         mostly queueing behind the events committed before it (the backlog drains at the \
         end-to-end rate); the paced runs show the latency of a bus that keeps up."
            .to_owned(),
    ];
    let duplicates: usize = results.iter().map(|r| r.duplicates).sum();
    if duplicates > 0 {
        notes.push(format!(
            "{duplicates} redelivered event(s) reached the handler again (not counted twice)."
        ));
    }
    Section {
        scenario: "events",
        title: "outbox → relay → RabbitMQ → consumer".to_owned(),
        settings: vec![format!(
            "**Settings:** bursts of {} events from {} concurrent producer tasks; transactions of \
             {} event(s); paced runs for {} at {}; `RelaySettings::new` and `ConsumerSettings` \
             defaults (relay batches of {}, woken by NOTIFY, {} ms poll; consumer: {} handler \
             tasks, prefetch {}); one relay, one consumer; {} runtime threads",
            stats::thousands(u64::from(s.events)),
            s.producers,
            sizes.join(" and "),
            stats::show_duration(s.duration),
            s.events_rate.map_or_else(
                || "half the burst's end-to-end rate".to_owned(),
                |r| format!("{} events/s", stats::rate(r))
            ),
            relay.batch_size,
            relay.poll_interval.as_millis(),
            consumer.concurrency,
            consumer.effective_prefetch(),
            s.threads,
        )],
        design: vec![
            "A fresh database `lomash_bench_events_<id>` with the outbox/processed_events schema \
             of migrations/product/0001_init.sql; a unique exchange `lomash.bench.<id>` and queue \
             `bench-<id>-bench-consumer` on the local RabbitMQ; the real `event_bus::Relay` and \
             `event_bus::Consumer` (release build) as tasks of lomash-bench. All of it is dropped \
             or deleted afterwards."
                .to_owned(),
            "Producers write each event with `event_bus::outbox::publish` inside their \
             transaction; when `COMMIT` returns, the event's slot (by run and sequence number) \
             gets a stamp from the process's monotonic clock. The consumer's handler stamps the \
             same slot when it is called — after the consumer's `processed_events` insert, \
             before its commit and ack. Latency = handler stamp − commit stamp, joined after the \
             run; the envelope's wall-clock timestamp is not used."
                .to_owned(),
            "commits (events/s) = events ÷ (last commit − start); published (events/s) = events ÷ \
             (first moment, polled every 20 ms after the last commit, with no outbox row left \
             unpublished − start): about the commit rate when the relay keeps up; commit → \
             consume (events/s) = events ÷ (last consumption − start). A probe event is sent \
             through first, so the queue is bound before anything is measured."
                .to_owned(),
        ],
        table,
        verdicts: Vec::new(),
        notes,
        json: serde_json::to_value(results).unwrap_or_default(),
        curves: Vec::new(),
    }
}
