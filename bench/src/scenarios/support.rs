//! What the platform scenarios (`products`, `booking`, `idle`) share: starting release-built
//! services on fresh databases with isolated Redis prefixes and RabbitMQ names, the gateway in
//! front of them, one-shot service commands (`seed`), and a closed-loop load whose request path
//! changes on every request (so a response cache keyed by the query never answers it).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::time::Instant;

use super::Ctx;
use crate::cleanup::{self, Item};
use crate::load::LoadResult;
use crate::machine::CpuProbe;
use crate::procs::{ChildProc, free_port, tail, wait_ready};
use crate::stats::Latencies;

/// Far above anything a run can send in a window: the gateway's limiter runs but never refuses.
pub const RATE_LIMIT: &str = "1000000000/60s";

/// Every upstream the gateway knows.
pub const UPSTREAMS: &[&str] = &[
    "product",
    "order-payment",
    "appointment",
    "content",
    "customer",
    "notification",
    "analytics",
];

/// `order-payment` → `UPSTREAM_ORDER_PAYMENT_URL`.
pub fn upstream_var(name: &str) -> String {
    format!(
        "UPSTREAM_{}_URL",
        name.to_ascii_uppercase().replace('-', "_")
    )
}

/// Fails with the build command when a release binary is missing.
pub fn require(ctx: &Ctx, bins: &[&str]) -> Result<()> {
    for bin in bins {
        let path = ctx.settings.bin_dir.join(bin);
        if !path.is_file() {
            bail!(
                "step `binaries`: {} not found; build it with `cargo build --release -p {bin}` \
                 (cargo xtask bench does), or point --bin-dir at it",
                path.display()
            );
        }
    }
    Ok(())
}

/// The scenario's own exchange and queue prefix (registered for removal).
pub fn bus(ctx: &Ctx, scenario: &str) -> event_bus::BusConfig {
    let bus = event_bus::BusConfig {
        amqp_url: ctx.settings.amqp_url.clone(),
        exchange: format!("lomash.bench.{}.{scenario}", ctx.suffix),
        queue_prefix: format!("bench-{}-{scenario}-", ctx.suffix),
        ..event_bus::BusConfig::default()
    };
    ctx.cleanup.push(Item::Rabbit {
        config: Box::new(bus.clone()),
        services: shared_types::topics::SUBSCRIPTIONS
            .iter()
            .map(|(service, _)| (*service).to_owned())
            .collect(),
    });
    bus
}

/// A running service.
pub struct Service {
    /// `product`, `gateway`.
    pub name: String,
    /// The process.
    pub process: Arc<ChildProc>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// Its database URL, if it has one.
    pub database_url: Option<String>,
    /// Its Redis key prefix.
    pub redis_prefix: String,
    /// The environment it was started with (for one-shot commands of the same binary).
    pub env: Vec<(String, String)>,
    /// From spawning the process to the first 2xx on the probed path.
    pub ready_after: Duration,
}

/// How to start one service.
pub struct Launch<'a> {
    /// Short name (`product`); the binary is `<name>-service`.
    pub name: &'a str,
    /// Whether it gets a fresh database (created before the process starts).
    pub database: bool,
    /// Variables on top of the common ones.
    pub extra_env: Vec<(String, String)>,
    /// The path polled until it answers 2xx (`/ready`).
    pub ready_path: &'a str,
    /// How long to wait for it.
    pub patience: Duration,
}

/// Creates the service's database (if any), starts `<name>-service`, waits for `ready_path`.
pub async fn start(
    ctx: &Ctx,
    client: &reqwest::Client,
    bus: &event_bus::BusConfig,
    launch: Launch<'_>,
) -> Result<Service> {
    let s = &ctx.settings;
    let name = launch.name;
    let key = name.replace('-', "_");
    let redis_prefix = format!("bench-{name}-{}", ctx.suffix);
    ctx.cleanup.push(Item::RedisPrefix(redis_prefix.clone()));
    let database_url = if launch.database {
        let db = format!("lomash_bench_{key}_{}", ctx.suffix);
        ctx.cleanup.push(Item::Database(db.clone()));
        cleanup::create_database(&s.database_url, &db)
            .await
            .with_context(|| format!("step `{name} database`"))?;
        Some(cleanup::database_url(&s.database_url, &db))
    } else {
        None
    };
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let mut env: Vec<(String, String)> = [
        ("HOST", "127.0.0.1".to_owned()),
        ("PORT", port.to_string()),
        ("REDIS_URL", s.redis_url.clone()),
        ("REDIS_KEY_PREFIX", redis_prefix.clone()),
        ("AMQP_URL", s.amqp_url.clone()),
        ("EVENT_EXCHANGE", bus.exchange.clone()),
        ("EVENT_QUEUE_PREFIX", bus.queue_prefix.clone()),
        ("LOG_LEVEL", "warn".to_owned()),
        ("LOG_FORMAT", "pretty".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(url) = &database_url {
        env.push(("DATABASE_URL".to_owned(), url.clone()));
    }
    for (k, v) in launch.extra_env {
        env.retain(|(existing, _)| *existing != k);
        env.push((k, v));
    }
    let bin = s.bin_dir.join(format!("{name}-service"));
    let spawned = Instant::now();
    let process = ctx.cleanup.child(
        ChildProc::spawn(name, &bin, &[], &env, &ctx.log_path(name))
            .with_context(|| format!("step `{name}`"))?,
    );
    wait_ready(
        &process,
        client,
        &format!("{base}{}", launch.ready_path),
        launch.patience,
    )
    .await
    .with_context(|| format!("step `{name}`"))?;
    let ready_after = spawned.elapsed();
    println!(
        "  {name}-service (release) on {base}{}, ready after {} ms",
        database_url
            .as_deref()
            .and_then(|u| u.rsplit('/').next())
            .map(|db| format!(", database {db}"))
            .unwrap_or_default(),
        ready_after.as_millis()
    );
    Ok(Service {
        name: name.to_owned(),
        process,
        port,
        base,
        database_url,
        redis_prefix,
        env,
        ready_after,
    })
}

/// Starts the gateway in front of `auth` and `upstreams` (name → base URL; the rest point at
/// `fallback`), with rate limits raised by configuration.
pub async fn start_gateway(
    ctx: &Ctx,
    client: &reqwest::Client,
    bus: &event_bus::BusConfig,
    auth: &Service,
    upstreams: &[(&str, &str)],
    fallback: &str,
    ready_path: &str,
) -> Result<Service> {
    let mut extra = vec![
        ("UPSTREAM_AUTH_URL".to_owned(), auth.base.clone()),
        ("SESSION_KEY_PREFIX".to_owned(), auth.redis_prefix.clone()),
        ("RATE_LIMIT_DEFAULT_USER".to_owned(), RATE_LIMIT.to_owned()),
        ("RATE_LIMIT_DEFAULT_IP".to_owned(), RATE_LIMIT.to_owned()),
    ];
    for name in UPSTREAMS {
        let url = upstreams
            .iter()
            .find(|(n, _)| n == name)
            .map_or(fallback, |(_, url)| *url);
        extra.push((upstream_var(name), url.to_owned()));
    }
    start(
        ctx,
        client,
        bus,
        Launch {
            name: "gateway",
            database: false,
            extra_env: extra,
            ready_path,
            patience: Duration::from_secs(30),
        },
    )
    .await
}

/// Runs `<service>-service <args>` with the service's environment to completion.
pub async fn command(ctx: &Ctx, service: &Service, args: &[&str]) -> Result<Duration> {
    let bin = ctx
        .settings
        .bin_dir
        .join(format!("{}-service", service.name));
    let label = format!(
        "{}-{}",
        service.name,
        args.first().copied().unwrap_or("cmd")
    );
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let started = Instant::now();
    let process = ctx.cleanup.child(
        ChildProc::spawn(&label, &bin, &args, &service.env, &ctx.log_path(&label))
            .with_context(|| format!("step `{label}`"))?,
    );
    loop {
        if let Some(status) = process.exited() {
            if !status.success() {
                bail!(
                    "step `{label}`: exited with {status}; log {}:\n{}",
                    process.log.display(),
                    tail(&process.log, 20)
                );
            }
            return Ok(started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("step `{label}`: still running after 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A closed loop of `connections` clients for `warmup + duration`, each request's path made by
/// `path(n)` with `n` unique per request, so every request is a cache miss where the cache key
/// is the query. Only requests sent after the warm-up and answered before the end count.
pub struct VariedLoad<'a> {
    /// `127.0.0.1:<port>`.
    pub port: u16,
    /// Concurrent clients (each keeps its own keep-alive connection).
    pub connections: usize,
    /// Measured time.
    pub duration: Duration,
    /// Unmeasured time before it.
    pub warmup: Duration,
    /// Processes whose CPU is the target's.
    pub target_pids: &'a [i32],
    /// Processes behind the target.
    pub upstream_pids: &'a [i32],
}

impl VariedLoad<'_> {
    /// Runs the load; `path(n)` gives the n-th request's path and query.
    pub async fn run<F>(&self, path: F) -> Result<LoadResult>
    where
        F: Fn(u64) -> String + Send + Sync + 'static,
    {
        let path = Arc::new(path);
        let counter = Arc::new(AtomicU64::new(0));
        let base = format!("http://127.0.0.1:{}", self.port);
        let probe = CpuProbe::start(
            self.target_pids,
            self.upstream_pids,
            i32::try_from(std::process::id()).ok(),
        );
        let started = Instant::now();
        let measure_from = started + self.warmup;
        let end = measure_from + self.duration;
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..self.connections {
            // One client per connection: a shared pool would not keep one connection per client.
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .pool_max_idle_per_host(1)
                .tcp_nodelay(true)
                .build()?;
            let (path, counter, base) = (path.clone(), counter.clone(), base.clone());
            tasks.spawn(async move {
                let mut samples = Vec::with_capacity(4096);
                let mut statuses = std::collections::BTreeMap::<u16, u64>::new();
                let (mut errors, mut first_error) = (0u64, None::<String>);
                while Instant::now() < end {
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let url = format!("{base}{}", path(n));
                    let sent = Instant::now();
                    let outcome = async {
                        let response = client.get(&url).send().await?;
                        let status = response.status().as_u16();
                        response.bytes().await?;
                        Ok::<u16, reqwest::Error>(status)
                    }
                    .await;
                    let done = Instant::now();
                    if sent < measure_from || done > end {
                        continue;
                    }
                    match outcome {
                        Ok(status) => {
                            samples
                                .push(u64::try_from((done - sent).as_nanos()).unwrap_or(u64::MAX));
                            *statuses.entry(status).or_default() += 1;
                        }
                        Err(error) => {
                            errors += 1;
                            first_error.get_or_insert_with(|| error.to_string());
                        }
                    }
                }
                (samples, statuses, errors, first_error)
            });
        }
        let mut samples = Vec::new();
        let mut statuses = std::collections::BTreeMap::<u16, u64>::new();
        let (mut errors, mut first_error) = (0u64, None::<String>);
        while let Some(joined) = tasks.join_next().await {
            let (s, st, e, f) = joined.context("a load client panicked")?;
            samples.extend(s);
            for (status, n) in st {
                *statuses.entry(status).or_default() += n;
            }
            errors += e;
            if first_error.is_none() {
                first_error = f;
            }
        }
        let cpu = probe.finish();
        let latencies = Latencies::from_samples(samples);
        let requests = latencies.len() as u64;
        let seconds = self.duration.as_secs_f64();
        let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
        let non_2xx = statuses
            .iter()
            .filter(|(status, _)| !(200..300).contains(*status))
            .map(|(_, n)| n)
            .sum();
        Ok(LoadResult {
            requests,
            seconds,
            rps: requests as f64 / seconds,
            p50_ms: ms(latencies.p50()),
            p99_ms: ms(latencies.p99()),
            max_ms: ms(latencies.max()),
            errors,
            statuses,
            non_2xx,
            first_error,
            cpu,
        })
    }
}

/// The resident set of `pid` (VmRSS from `/proc/<pid>/status`), in KiB.
pub fn rss_kib(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

/// One table row of an HTTP run.
pub fn load_row(label: &str, path: &str, result: &LoadResult) -> Vec<String> {
    vec![
        label.to_owned(),
        format!("`{path}`"),
        crate::stats::rate(result.rps),
        crate::stats::latency(result.p50()),
        crate::stats::latency(result.p99()),
        (result.errors + result.non_2xx).to_string(),
    ]
}

/// The JSON of an HTTP run.
pub fn load_json(label: &str, result: &LoadResult) -> serde_json::Value {
    serde_json::json!({
        "target": label,
        "requests": result.requests,
        "rps": result.rps,
        "p50Ms": result.p50_ms,
        "p99Ms": result.p99_ms,
        "maxMs": result.max_ms,
        "errors": result.errors,
        "non2xx": result.non_2xx,
        "statuses": result.statuses,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_rss_is_read() {
        let pid = i32::try_from(std::process::id()).expect("a pid");
        assert!(rss_kib(pid).is_some_and(|kib| kib > 0));
        assert!(rss_kib(i32::MAX).is_none());
    }

    #[test]
    fn upstream_variables_are_named_as_the_gateway_reads_them() {
        assert_eq!(upstream_var("order-payment"), "UPSTREAM_ORDER_PAYMENT_URL");
    }
}
