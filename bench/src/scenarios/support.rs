//! What the platform scenarios share: starting release-built services on fresh databases with
//! isolated Redis prefixes and RabbitMQ names, the gateway in front of them ([`platform`]), a
//! signed-in customer ([`sign_in`]), one-shot service commands (`seed`), and the table row and
//! JSON of an HTTP run.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::json;
use tokio::time::Instant;

use super::Ctx;
use crate::cleanup::{self, Item};
use crate::load::{LoadResult, Target};
use crate::procs::{ChildProc, free_port, tail, wait_ready};

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

impl<'a> Launch<'a> {
    /// `<name>-service` on a fresh database, ready when `/ready` answers (within 90 s).
    pub fn ready(name: &'a str) -> Self {
        Self {
            name,
            database: true,
            extra_env: Vec::new(),
            ready_path: "/ready",
            patience: Duration::from_secs(90),
        }
    }

    /// The same, ready when `/health` answers.
    pub fn health(name: &'a str) -> Self {
        Self {
            ready_path: "/health",
            ..Self::ready(name)
        }
    }

    /// With one more environment variable.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.extra_env.push((name.to_owned(), value.to_owned()));
        self
    }
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

/// Starts the gateway in front of `auth` (if any) and `upstreams` (name → base URL; the rest
/// point at `fallback`), with rate limits (tracking included) raised by configuration.
pub async fn start_gateway(
    ctx: &Ctx,
    client: &reqwest::Client,
    bus: &event_bus::BusConfig,
    auth: Option<&Service>,
    upstreams: &[(&str, &str)],
    fallback: &str,
    ready_path: &str,
) -> Result<Service> {
    let mut extra: Vec<(String, String)> = [
        "RATE_LIMIT_DEFAULT_USER",
        "RATE_LIMIT_DEFAULT_IP",
        "RATE_LIMIT_TRACK",
    ]
    .iter()
    .map(|name| ((*name).to_owned(), RATE_LIMIT.to_owned()))
    .collect();
    if let Some(auth) = auth {
        extra.push(("UPSTREAM_AUTH_URL".to_owned(), auth.base.clone()));
        extra.push(("SESSION_KEY_PREFIX".to_owned(), auth.redis_prefix.clone()));
    }
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
            extra_env: extra,
            database: false,
            ready_path,
            patience: Duration::from_secs(30),
            ..Launch::health("gateway")
        },
    )
    .await
}

/// Auth, the scenario's services and the gateway in front of them, all release builds on fresh
/// databases and Redis prefixes.
pub struct Platform {
    /// auth-service (its access tokens live 2 h, longer than any run).
    pub auth: Service,
    /// The scenario's services, in the order asked for.
    pub services: Vec<Service>,
    /// gateway-service.
    pub gateway: Service,
}

impl Platform {
    /// The service called `name` (`product`).
    pub fn service(&self, name: &str) -> Result<&Service> {
        self.services
            .iter()
            .find(|s| s.name == name)
            .with_context(|| format!("no {name} service in this scenario"))
    }

    /// Every process (auth, the services, the gateway).
    pub fn processes(&self) -> Vec<&Arc<ChildProc>> {
        std::iter::once(&self.auth)
            .chain(&self.services)
            .chain(std::iter::once(&self.gateway))
            .map(|s| &s.process)
            .collect()
    }

    /// Fails when any of them has exited.
    pub fn check_alive(&self) -> Result<()> {
        self.processes().iter().try_for_each(|p| p.check_alive())
    }
}

/// Starts auth, `services` in order and the gateway in front of them (upstreams the scenario
/// does not start point at the first service); the opening of every platform scenario. An
/// environment value `@name` becomes the base URL of the service `name` started before it
/// (order-payment's `PRODUCT_SERVICE_URL`).
pub async fn platform(
    ctx: &Ctx,
    client: &reqwest::Client,
    scenario: &str,
    services: Vec<Launch<'_>>,
) -> Result<Platform> {
    let mut bins = vec!["auth-service".to_owned(), "gateway-service".to_owned()];
    bins.extend(services.iter().map(|l| format!("{}-service", l.name)));
    require(ctx, &bins.iter().map(String::as_str).collect::<Vec<_>>())?;
    let bus = bus(ctx, scenario);
    let auth = start(
        ctx,
        client,
        &bus,
        // Outlives any run length this tool allows in practice (soaks included).
        Launch::ready("auth").env("ACCESS_TOKEN_TTL_SECS", "86400"),
    )
    .await?;
    let mut started: Vec<Service> = Vec::new();
    for mut launch in services {
        for (_, value) in &mut launch.extra_env {
            if let Some(name) = value.strip_prefix('@')
                && let Some(earlier) = started.iter().find(|s| s.name == name)
            {
                value.clone_from(&earlier.base);
            }
        }
        started.push(start(ctx, client, &bus, launch).await?);
    }
    let upstreams: Vec<(&str, &str)> = started
        .iter()
        .map(|s| (s.name.as_str(), s.base.as_str()))
        .collect();
    let fallback = upstreams.first().map_or(auth.base.as_str(), |(_, b)| *b);
    let gateway = start_gateway(
        ctx,
        client,
        &bus,
        Some(&auth),
        &upstreams,
        fallback,
        "/health",
    )
    .await?;
    Ok(Platform {
        auth,
        services: started,
        gateway,
    })
}

/// The benchmark users' password (passes auth's policy).
const PASSWORD: &str = "oak-worktop-with-brass-42";

/// Register → verify (the OTP read from auth's outbox) → login as `email`, all through the
/// gateway at `gateway`; returns the access token.
pub async fn sign_in(
    client: &reqwest::Client,
    gateway: &str,
    auth: &Service,
    email: &str,
) -> Result<String> {
    let auth_db = sqlx::PgPool::connect(
        auth.database_url
            .as_deref()
            .context("auth has a database")?,
    )
    .await
    .context("cannot read auth's database")?;
    let token = sign_in_with(client, gateway, &auth_db, email).await;
    auth_db.close().await;
    token
}

async fn sign_in_with(
    client: &reqwest::Client,
    gateway: &str,
    auth_db: &sqlx::PgPool,
    email: &str,
) -> Result<String> {
    let post = |path: &str, body: serde_json::Value| {
        client.post(format!("{gateway}{path}")).json(&body).send()
    };
    let expect = |what: &str, expected: u16, response: reqwest::Response| {
        let what = what.to_owned();
        async move {
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            if status != expected {
                bail!("{what} answered {status} (expected {expected}): {body}");
            }
            Ok(body)
        }
    };
    let registered = post(
        "/v1/auth/register",
        json!({"email": email, "password": PASSWORD, "firstName": "Bench", "lastName": "Runner"}),
    )
    .await?;
    expect("register", 201, registered).await?;

    let mut code = None;
    for _ in 0..100 {
        code = sqlx::query_scalar::<_, String>(
            "SELECT envelope->'payload'->>'code' FROM outbox \
             WHERE topic = 'auth.otp_requested' AND envelope->'payload'->>'email' = $1 \
             ORDER BY seq DESC LIMIT 1",
        )
        .bind(email)
        .fetch_optional(auth_db)
        .await
        .context("cannot read auth's outbox")?;
        if code.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let code = code.context("no auth.otp_requested event in auth's outbox after registering")?;
    let verified = post(
        "/v1/auth/verify-email",
        json!({"email": email, "code": code}),
    )
    .await?;
    expect("verify-email", 200, verified).await?;
    let login = post(
        "/v1/auth/login",
        json!({"email": email, "password": PASSWORD}),
    )
    .await?;
    let body = expect("login", 200, login).await?;
    let body: serde_json::Value =
        serde_json::from_str(&body).context("login did not answer JSON")?;
    body["accessToken"]
        .as_str()
        .map(str::to_owned)
        .context("login's answer has no accessToken")
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

/// Runs the scenario's load against `target` once at each connection count of the sweep.
pub async fn sweep(
    ctx: &Ctx,
    target: &Target,
    alive: &[&Arc<ChildProc>],
) -> Result<Vec<LoadResult>> {
    let mut results = Vec::new();
    for &connections in &ctx.settings.connections {
        results.push(measure(ctx, target, alive, connections).await?);
    }
    Ok(results)
}

/// Runs the scenario's load against `target` at `connections`, saying what it does; first
/// checks that every process of `alive` still runs.
pub async fn measure(
    ctx: &Ctx,
    target: &Target,
    alive: &[&Arc<ChildProc>],
    connections: usize,
) -> Result<LoadResult> {
    for process in alive {
        process.check_alive()?;
    }
    let settings = ctx.settings.load(connections);
    println!(
        "  {}: {connections} connections, {} ...",
        target.label,
        crate::stats::show_duration(settings.duration)
    );
    let result = crate::load::run(target, &settings)
        .await
        .with_context(|| format!("step `load {}` at {connections} connections", target.label))?;
    println!("    {}", result.summary());
    Ok(result)
}

/// The run at `connections` if the sweep had it, else the one nearest to it (for budgets set
/// at one connection count).
pub fn at(results: &[LoadResult], connections: usize) -> Option<&LoadResult> {
    results
        .iter()
        .min_by_key(|r| r.connections.abs_diff(connections))
}

/// Starts the `stripe-fake` binary (Stripe's API and webhook sender, as the tests use it);
/// returns it and its base URL (with the trailing `/` order-payment's `STRIPE_API_BASE` wants).
pub async fn start_stripe(ctx: &Ctx, client: &reqwest::Client) -> Result<(Arc<ChildProc>, String)> {
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}/");
    let stripe = ctx.cleanup.child(
        ChildProc::spawn(
            "stripe-fake",
            &ctx.settings.bin_dir.join("stripe-fake"),
            &["serve".to_owned(), "--port".to_owned(), port.to_string()],
            &[("RUST_LOG".to_owned(), "warn".to_owned())],
            &ctx.log_path("stripe-fake"),
        )
        .context("step `stripe-fake`")?,
    );
    wait_ready(
        &stripe,
        client,
        &format!("{base}_fake/calls"),
        Duration::from_secs(30),
    )
    .await
    .context("step `stripe-fake`")?;
    Ok((stripe, base))
}

/// order-payment-service pricing at `product` and paying through the fake Stripe at `stripe`,
/// webhooks signed with `webhook_secret`; its background sweeps are kept out of the runs.
pub fn order_payment<'a>(product: &str, stripe: &str, webhook_secret: &str) -> Launch<'a> {
    Launch::ready("order-payment")
        .env("PRODUCT_SERVICE_URL", product)
        .env("STRIPE_API_BASE", stripe)
        .env("STRIPE_SECRET_KEY", "sk_test_bench")
        .env("STRIPE_WEBHOOK_SECRET", webhook_secret)
        .env("ORDER_EXPIRY_SWEEP_SECS", "3600")
        .env("PAYMENT_RECONCILE_INTERVAL_SECS", "3600")
}

/// `GET url`'s JSON; anything but 2xx is an error with the answer.
pub async fn get_json(client: &reqwest::Client, url: &str) -> Result<serde_json::Value> {
    let response = client.get(url).send().await?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        bail!("GET {url} answered {status}: {text}");
    }
    Ok(serde_json::from_str(&text)?)
}

/// The resident set of `pid` (VmRSS from `/proc/<pid>/status`), in KiB.
pub fn rss_kib(pid: i32) -> Option<u64> {
    memory(pid).map(|m| m.rss_kib)
}

/// What `/proc/<pid>/status` says of a process's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// VmRSS: all of it, KiB.
    pub rss_kib: u64,
    /// RssAnon: heap, stacks and other private memory, KiB.
    pub anon_kib: u64,
    /// RssFile: mapped file pages (mostly the binary's own code and constants), KiB.
    pub file_kib: u64,
    /// Threads.
    pub threads: u64,
}

/// The memory figures of `pid`; `None` once it has exited.
pub fn memory(pid: i32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status(&status)
}

fn parse_status(status: &str) -> Option<Memory> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
    };
    Some(Memory {
        rss_kib: field("VmRSS")?,
        anon_kib: field("RssAnon").unwrap_or(0),
        file_kib: field("RssFile").unwrap_or(0),
        threads: field("Threads").unwrap_or(0),
    })
}

/// One table row of an HTTP run.
pub fn load_row(label: &str, path: &str, result: &LoadResult) -> Vec<String> {
    vec![
        label.to_owned(),
        format!("`{path}`"),
        result.connections.to_string(),
        crate::stats::rate(result.rps),
        crate::stats::latency(result.p50()),
        crate::stats::latency(result.p99()),
        (result.errors + result.non_2xx).to_string(),
    ]
}

/// One curve per run label of `rows` (label, request, result), in first-seen order.
pub fn curves(rows: &[(String, String, LoadResult)]) -> Vec<crate::report::Curve> {
    let mut labels: Vec<&str> = Vec::new();
    for (label, _, _) in rows {
        if !labels.contains(&label.as_str()) {
            labels.push(label);
        }
    }
    labels
        .into_iter()
        .map(|label| {
            let runs: Vec<LoadResult> = rows
                .iter()
                .filter(|(l, _, _)| l == label)
                .map(|(_, _, r)| r.clone())
                .collect();
            crate::report::Curve::of(label, &runs)
        })
        .collect()
}

/// The JSON of an HTTP run.
pub fn load_json(label: &str, result: &LoadResult) -> serde_json::Value {
    serde_json::json!({
        "target": label,
        "connections": result.connections,
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
        let ours = memory(pid).expect("our own status");
        assert!(ours.threads >= 1);
        assert!(ours.anon_kib + ours.file_kib <= ours.rss_kib);
    }

    #[test]
    fn the_memory_lines_of_a_status_file_are_read() {
        let status = "Name:\tproduct-service\nVmHWM:\t   41000 kB\nVmRSS:\t   21664 kB\n\
                      RssAnon:\t    4200 kB\nRssFile:\t   17464 kB\nRssShmem:\t       0 kB\n\
                      Threads:\t7\n";
        assert_eq!(
            parse_status(status),
            Some(Memory {
                rss_kib: 21_664,
                anon_kib: 4_200,
                file_kib: 17_464,
                threads: 7,
            })
        );
        assert_eq!(parse_status("Name:\tzombie\n"), None);
    }

    #[test]
    fn upstream_variables_are_named_as_the_gateway_reads_them() {
        assert_eq!(upstream_var("order-payment"), "UPSTREAM_ORDER_PAYMENT_URL");
    }
}
