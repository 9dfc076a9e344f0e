//! `idle`: how fast each service becomes ready and how much memory it holds at rest
//! (issue 13, DESIGN.md §7: "idle memory ≤ 30 MB RSS per service; each service ready in under a
//! second once its DB is up").
//!
//! The nine release services start one after another, each on a fresh database (created before
//! its process starts, so "its DB is up"; the service's start-up runs its migrations), its own
//! Redis prefix and the scenario's exchange; the gateway last, in front of the eight. For each:
//! the time from spawning the process to its first 200 on `GET /ready`. Then nothing is asked
//! of them for a few seconds, and each one's resident set (`VmRSS` of `/proc/<pid>/status`) is
//! read, with its two parts: private memory (`RssAnon`: heap, stacks, buffers) and mapped file
//! pages (`RssFile`: the binary's code and constants that have been touched).

use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use super::Ctx;
use super::support::{self, Launch, Service};
use crate::report::{Mark, Section, Table, Verdict};

super::scenario!(
    "idle",
    "each service's time from spawn to ready and its idle RSS (budgets: ready < 1 s, RSS ≤ 30 MB)"
);

/// The services behind the gateway, in start order (auth first: the gateway needs its keys,
/// product before order-payment, which calls it).
fn services() -> impl Iterator<Item = &'static str> {
    std::iter::once("auth").chain(support::UPSTREAMS.iter().copied())
}
/// Quiet time before RSS is read.
const IDLE: Duration = Duration::from_secs(5);
/// The budget: ready within this after spawning.
const MAX_READY: Duration = Duration::from_secs(1);
/// The budget: resident set at most this many KiB (30 MB).
const MAX_RSS_KIB: u64 = 30 * 1024;

/// One service's figures.
struct Row {
    name: String,
    ready_after: Duration,
    memory: Option<support::Memory>,
}

impl Row {
    fn rss_kib(&self) -> Option<u64> {
        self.memory.map(|m| m.rss_kib)
    }
}

async fn run_scenario(ctx: &Ctx) -> Result<Section> {
    let bins: Vec<String> = services()
        .chain(std::iter::once("gateway"))
        .map(|s| format!("{s}-service"))
        .collect();
    support::require(ctx, &bins.iter().map(String::as_str).collect::<Vec<_>>())?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let bus = support::bus(ctx, "idle");

    let mut started: Vec<Service> = Vec::new();
    for name in services() {
        let mut extra = Vec::new();
        if name == "order-payment" {
            let product = started.iter().find(|s| s.name == "product");
            if let Some(product) = product {
                extra.push(("PRODUCT_SERVICE_URL".to_owned(), product.base.clone()));
            }
        }
        if name == "analytics" {
            let content = started.iter().find(|s| s.name == "content");
            if let Some(content) = content {
                extra.push(("CONTENT_SERVICE_URL".to_owned(), content.base.clone()));
            }
        }
        let service = support::start(
            ctx,
            &client,
            &bus,
            Launch {
                name,
                database: true,
                extra_env: extra,
                ready_path: "/ready",
                patience: Duration::from_secs(90),
            },
        )
        .await?;
        started.push(service);
    }
    let upstreams: Vec<(String, String)> = started
        .iter()
        .map(|s| (s.name.clone(), s.base.clone()))
        .collect();
    let upstream_refs: Vec<(&str, &str)> = upstreams
        .iter()
        .map(|(n, u)| (n.as_str(), u.as_str()))
        .collect();
    let auth_service = started
        .iter()
        .find(|s| s.name == "auth")
        .ok_or_else(|| anyhow::anyhow!("auth did not start"))?;
    let gateway = support::start_gateway(
        ctx,
        &client,
        &bus,
        Some(auth_service),
        &upstream_refs,
        &auth_service.base,
        "/ready",
    )
    .await?;
    started.push(gateway);

    println!(
        "  all nine ready; idle for {} s before reading RSS ...",
        IDLE.as_secs()
    );
    tokio::time::sleep(IDLE).await;
    let mut rows = Vec::new();
    for service in &started {
        service.process.check_alive()?;
        rows.push(Row {
            name: service.name.clone(),
            ready_after: service.ready_after,
            memory: support::memory(service.process.pid),
        });
    }
    for row in &rows {
        println!(
            "    {:<14} ready after {:>5} ms, RSS {} (anon {}, file {}), {} threads",
            row.name,
            row.ready_after.as_millis(),
            rss(row.rss_kib()),
            rss(row.memory.map(|m| m.anon_kib)),
            rss(row.memory.map(|m| m.file_kib)),
            row.memory.map_or(0, |m| m.threads)
        );
    }
    Ok(section(&rows))
}

fn rss(kib: Option<u64>) -> String {
    kib.map_or_else(
        || "–".to_owned(),
        |k| format!("{:.1} MB", k as f64 / 1024.0),
    )
}

fn mark(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}

fn section(rows: &[Row]) -> Section {
    let mut table = Table::new(&[
        "service",
        "spawn → ready",
        "ready < 1 s",
        "idle RSS",
        "of which anon",
        "of which file",
        "threads",
        "RSS ≤ 30 MB",
    ]);
    for row in rows {
        table.row(vec![
            row.name.clone(),
            format!("{} ms", row.ready_after.as_millis()),
            mark(row.ready_after < MAX_READY).to_owned(),
            rss(row.rss_kib()),
            rss(row.memory.map(|m| m.anon_kib)),
            rss(row.memory.map(|m| m.file_kib)),
            row.memory
                .map_or_else(|| "–".to_owned(), |m| m.threads.to_string()),
            mark(row.rss_kib().is_some_and(|k| k <= MAX_RSS_KIB)).to_owned(),
        ]);
    }
    let sum = |part: fn(&support::Memory) -> u64| -> u64 {
        rows.iter()
            .filter_map(|r| r.memory.as_ref())
            .map(part)
            .sum()
    };
    let total = sum(|m| m.rss_kib);
    table.row(vec![
        "**whole platform**".to_owned(),
        "–".to_owned(),
        "–".to_owned(),
        rss(Some(total)),
        rss(Some(sum(|m| m.anon_kib))),
        rss(Some(sum(|m| m.file_kib))),
        sum(|m| m.threads).to_string(),
        "–".to_owned(),
    ]);
    let slow: Vec<&str> = rows
        .iter()
        .filter(|r| r.ready_after >= MAX_READY)
        .map(|r| r.name.as_str())
        .collect();
    let heavy: Vec<&str> = rows
        .iter()
        .filter(|r| r.rss_kib().is_none_or(|k| k > MAX_RSS_KIB))
        .map(|r| r.name.as_str())
        .collect();
    let slowest = rows.iter().max_by_key(|r| r.ready_after);
    let largest = rows.iter().max_by_key(|r| r.rss_kib().unwrap_or(u64::MAX));
    let verdicts = vec![
        Verdict {
            mark: if slow.is_empty() {
                Mark::Pass
            } else {
                Mark::Fail
            },
            text: format!(
                "every service ready in under a second once its database is up: slowest {} \
                 **{} ms**{} (budget < 1000 ms)",
                slowest.map_or("–", |r| r.name.as_str()),
                slowest.map_or(0, |r| r.ready_after.as_millis()),
                if slow.is_empty() {
                    String::new()
                } else {
                    format!("; over budget: {}", slow.join(", "))
                }
            ),
        },
        Verdict {
            mark: if heavy.is_empty() {
                Mark::Pass
            } else {
                Mark::Fail
            },
            text: format!(
                "idle RSS ≤ 30 MB per service: largest {} **{}**{}; whole platform {}",
                largest.map_or("–", |r| r.name.as_str()),
                rss(largest.and_then(Row::rss_kib)),
                if heavy.is_empty() {
                    String::new()
                } else {
                    format!("; over budget: {}", heavy.join(", "))
                },
                rss(Some(total))
            ),
        },
    ];
    let json_rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            json!({
                "service": r.name,
                "readyMs": r.ready_after.as_secs_f64() * 1000.0,
                "rssKib": r.rss_kib(),
                "rssAnonKib": r.memory.map(|m| m.anon_kib),
                "rssFileKib": r.memory.map(|m| m.file_kib),
                "threads": r.memory.map(|m| m.threads),
            })
        })
        .collect();
    Section {
        scenario: "idle",
        title: "idle: readiness time and resident memory of each service".to_owned(),
        settings: vec![
            "services: the nine release binaries, started one after another, each on a fresh \
             database (created before the process starts) with its own Redis prefix; the \
             gateway last, in front of the eight"
                .to_owned(),
            format!(
                "ready: from spawning the process to the first 2xx on `GET /ready` (polled every \
                 100 ms, so up to 100 ms late); RSS: `VmRSS` after {} s with no requests, \
                 split into `RssAnon` (heap, stacks, buffers) and `RssFile` (mapped pages of the \
                 binary and its libraries)",
                IDLE.as_secs()
            ),
        ],
        design: vec![
            "Start-up is configuration, telemetry, the database pool and its migrations (a fresh \
             database runs all of them), Redis and RabbitMQ connections and the event-bus \
             topology, then the listener; `/ready` answers 200 once the database, Redis and \
             the bus answer."
                .to_owned(),
            "Every service runs on `service_kit::main!`: mimalloc as the global allocator \
             (what start-up freed is handed back to the OS once the service listens), \
             tokio's default worker threads (one per core), a Postgres pool holding one idle \
             connection, and one RabbitMQ connection per publisher or consumer, each with its \
             own I/O thread and 32 frames of buffer each way."
                .to_owned(),
        ],
        table,
        verdicts,
        notes: vec![
            "The ready time includes applying every migration to an empty database, and the \
             polling interval; the load average at start (above) shows whether other work \
             shared the machine, which lengthens start-up."
                .to_owned(),
            "The file-backed part is the binary's code and constants that start-up touched (the \
             kernel maps the pages around each one touched, on recent kernels the whole large \
             folio of page cache holding it, so it varies with the kernel and the run); it is \
             clean page cache, shared by every process running the same binary and dropped \
             under memory pressure, but `VmRSS` counts it, and so does the budget."
                .to_owned(),
        ],
        json: json!({ "services": json_rows, "totalRssKib": total }),
        curves: Vec::new(),
    }
}
