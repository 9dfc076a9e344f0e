//! `gateway`: is our gateway as cheap a hop as the best proxy? One run, the same upstream route
//! three ways, back to back with the same settings:
//! (a) straight to a trivial upstream (`lomash-bench __upstream`, its own process);
//! (b) through nginx (Debian's nginx-light, keep-alive upstream, config generated under
//!     `<work dir>/nginx/`);
//! (c) through the release-built gateway with token verification and rate limiting on, in front
//!     of the real auth service (release, its own fresh database) and the trivial upstream as the
//!     product service.
//!
//! Budgets (DESIGN.md §7): gateway req/s ≥ 0.9 × nginx req/s; gateway p99 − direct p99 ≤ 2 ms.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::Ctx;
use super::support::{self, Launch};
use crate::load::{LoadResult, Target};
use crate::procs::{ChildProc, find_program, free_port, wait_ready};
use crate::report::{Curve, Mark, Section, Table, Verdict};
use crate::stats;

super::scenario!(
    "gateway",
    "the same upstream route directly, through nginx and through our gateway"
);

/// The route all three targets are asked for.
const PATH: &str = "/v1/products";
/// The limit the gateway announces when it took the raised configuration.
const RATE_LIMIT_COUNT: &str = "1000000000";

/// The budget: gateway req/s ÷ nginx req/s at least this.
const MIN_RATIO: f64 = 0.9;
/// The budget: gateway p99 − direct p99 at most this many ms.
const MAX_P99_ADDED_MS: f64 = 2.0;

async fn run_scenario(ctx: &Ctx) -> Result<Section> {
    let s = &ctx.settings;
    support::require(ctx, &["gateway-service", "auth-service"])?;
    let nginx_bin = std::env::var_os("BENCH_NGINX")
        .map(PathBuf::from)
        .or_else(|| find_program("nginx", &["/usr/sbin/nginx"]))
        .context(
            "step `nginx`: nginx is not installed; `apt-get install -y nginx-light` (cargo xtask \
             bench installs it when run as root), or set BENCH_NGINX",
        )?;
    let nginx_version = tokio::process::Command::new(&nginx_bin)
        .arg("-v")
        .output()
        .await
        .ok()
        .map(|o| {
            String::from_utf8_lossy(&o.stderr)
                .trim()
                .trim_start_matches("nginx version: ")
                .to_owned()
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "nginx".to_owned());
    let exe = std::env::current_exe().context("cannot find this executable")?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);

    // (a) the trivial upstream
    let upstream_port = free_port()?;
    let upstream_url = format!("http://127.0.0.1:{upstream_port}");
    let upstream = ctx.cleanup.child(
        ChildProc::spawn(
            "upstream",
            &exe,
            &[
                crate::upstream::SUBCOMMAND.to_owned(),
                "--port".to_owned(),
                upstream_port.to_string(),
            ],
            &[],
            &ctx.log_path("upstream"),
        )
        .context("step `upstream`")?,
    );
    wait_ready(
        &upstream,
        &client,
        &format!("{upstream_url}{PATH}"),
        Duration::from_secs(15),
    )
    .await
    .context("step `upstream`")?;
    println!("  trivial upstream on {upstream_url}");

    // (b) nginx
    let nginx_port = free_port()?;
    let nginx_dir = s.work_dir.join("nginx");
    let nginx_conf = write_nginx_config(&nginx_dir, nginx_port, upstream_port, cpus)
        .context("step `nginx`: cannot write its configuration")?;
    let nginx = ctx.cleanup.child(
        ChildProc::spawn(
            "nginx",
            &nginx_bin,
            &[
                "-p".to_owned(),
                nginx_dir.display().to_string(),
                "-c".to_owned(),
                nginx_conf.display().to_string(),
                "-e".to_owned(),
                "stderr".to_owned(),
            ],
            &[],
            &ctx.log_path("nginx"),
        )
        .context("step `nginx`")?,
    );
    wait_ready(
        &nginx,
        &client,
        &format!("http://127.0.0.1:{nginx_port}{PATH}"),
        Duration::from_secs(15),
    )
    .await
    .context("step `nginx`")?;
    println!(
        "  {nginx_version} on 127.0.0.1:{nginx_port} ({})",
        nginx_conf.display()
    );

    // (c) auth, then the gateway in front of it and the upstream
    let bus = support::bus(ctx, "gateway");
    let auth = support::start(
        ctx,
        &client,
        &bus,
        Launch::health("auth").env("ACCESS_TOKEN_TTL_SECS", "7200"),
    )
    .await?;
    let gateway = support::start_gateway(
        ctx,
        &client,
        &bus,
        Some(&auth),
        &[],
        &upstream_url,
        "/health",
    )
    .await?;
    let gateway_url = gateway.base.clone();
    let email = format!("bench-{}@example.com", ctx.suffix);
    let token = support::sign_in(&client, &gateway_url, &auth, &email)
        .await
        .context("step `sign-in` (register → verify → login through the gateway)")?;
    println!("  signed in {email} through the gateway (RS256 access token)");
    let limit_header = check_gateway(&client, &gateway_url, &token)
        .await
        .context("step `gateway check`")?;
    println!(
        "  checks: valid token → 200 with the upstream's body and RateLimit-Limit {limit_header}; \
         tampered token → 401"
    );

    // The three runs, back to back with the same settings.
    let headers = vec![("authorization".to_owned(), format!("Bearer {token}"))];
    let target =
        |label: String, port: u16, target_pids: Vec<i32>, upstream_pids: Vec<i32>| Target {
            headers: headers.clone(),
            ..Target::get(label, port, PATH, target_pids, upstream_pids)
        };
    let targets = [
        target(
            "direct to the upstream".to_owned(),
            upstream_port,
            upstream.tree(),
            Vec::new(),
        ),
        target(
            format!("through {nginx_version}"),
            nginx_port,
            nginx.tree(),
            upstream.tree(),
        ),
        target(
            "through our gateway".to_owned(),
            gateway.port,
            gateway.process.tree(),
            upstream.tree(),
        ),
    ];
    let everyone: [&Arc<ChildProc>; 4] = [&upstream, &nginx, &auth.process, &gateway.process];
    // At each connection count, the three back to back.
    let mut trios = Vec::new();
    for &connections in &ctx.settings.connections {
        let mut trio = Vec::new();
        for target in &targets {
            trio.push(support::measure(ctx, target, &everyone, connections).await?);
        }
        trios.push(trio);
    }
    for process in everyone {
        process.check_alive()?;
    }
    Ok(section(
        ctx,
        &nginx_version,
        cpus,
        &limit_header,
        &targets,
        &trios,
    ))
}

/// Writes `nginx.conf` (and its temp directories) under `dir`; returns the config's path.
fn write_nginx_config(
    dir: &Path,
    port: u16,
    upstream_port: u16,
    workers: usize,
) -> Result<PathBuf> {
    for sub in [
        "tmp/body",
        "tmp/proxy",
        "tmp/fastcgi",
        "tmp/uwsgi",
        "tmp/scgi",
    ] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    let d = dir.display();
    let config = format!(
        "# Generated by lomash-bench (gateway scenario); rewritten on every run.
worker_processes {workers};
daemon off;
master_process on;
pid {d}/nginx.pid;
error_log stderr warn;

events {{
    worker_connections 4096;
}}

http {{
    access_log off;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    keepalive_requests 1000000;

    upstream bench_upstream {{
        server 127.0.0.1:{upstream_port};
        keepalive 64;
        keepalive_requests 1000000;
    }}

    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://bench_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }}
    }}
}}
"
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, config)?;
    Ok(path)
}

/// A valid token gets the upstream's answer with the raised rate limit; a tampered one gets 401.
/// Returns the `RateLimit-Limit` header seen.
async fn check_gateway(client: &reqwest::Client, gateway: &str, token: &str) -> Result<String> {
    let response = client
        .get(format!("{gateway}{PATH}"))
        .bearer_auth(token)
        .send()
        .await?;
    let status = response.status().as_u16();
    let limit = response
        .headers()
        .get("ratelimit-limit")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.bytes().await?;
    if status != 200 || body.as_ref() != crate::upstream::BODY {
        bail!(
            "GET {PATH} with a valid token answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    if limit != RATE_LIMIT_COUNT {
        bail!(
            "the gateway's RateLimit-Limit is {limit:?}, not {RATE_LIMIT_COUNT}: the rate limiter \
             is off or did not take RATE_LIMIT_DEFAULT_USER"
        );
    }
    let mut tampered = token.to_owned();
    let last = tampered
        .pop()
        .map_or('A', |c| if c == 'A' { 'B' } else { 'A' });
    tampered.push(last);
    let refused = client
        .get(format!("{gateway}{PATH}"))
        .bearer_auth(&tampered)
        .send()
        .await?
        .status()
        .as_u16();
    if refused != 401 {
        bail!("a tampered token answered {refused}, not 401: token verification is not on");
    }
    Ok(limit)
}

fn cpu_cell(result: &LoadResult) -> String {
    let c = &result.cpu;
    let mut parts = vec![format!("target {:.2}", c.target)];
    if c.upstream > 0.0 {
        parts.push(format!("upstream {:.2}", c.upstream));
    }
    if let Some(generator) = c.load_generator {
        parts.push(format!("bench {generator:.2}"));
    }
    parts.push(format!("redis {:.2}", c.redis));
    parts.push(format!("machine {:.2}", c.machine));
    parts.join(" · ")
}

/// Cores used by processes other than the measured ones and Redis (Postgres, other builds...).
fn other_cores(result: &LoadResult) -> f64 {
    let c = &result.cpu;
    (c.machine - c.target - c.upstream - c.redis - c.load_generator.unwrap_or(0.0)).max(0.0)
}

/// gateway req/s ÷ nginx req/s and gateway p99 − direct p99 of one trio (direct, nginx,
/// gateway).
fn budgets(trio: &[LoadResult]) -> (f64, Option<f64>) {
    let [direct, via_nginx, via_gateway] = [&trio[0], &trio[1], &trio[2]];
    let ratio = if via_nginx.rps > 0.0 {
        via_gateway.rps / via_nginx.rps
    } else {
        0.0
    };
    (
        ratio,
        via_gateway.p99_ms.zip(direct.p99_ms).map(|(g, d)| g - d),
    )
}

fn section(
    ctx: &Ctx,
    nginx_version: &str,
    cpus: usize,
    limit_header: &str,
    targets: &[Target; 3],
    trios: &[Vec<LoadResult>],
) -> Section {
    let s = &ctx.settings;
    let mut table = Table::new(&[
        "target",
        "connections",
        "req/s",
        "p50",
        "p99",
        "max",
        "req/s ÷ nginx",
        "p99 − direct",
        "non-2xx / errors",
        "CPU (cores)",
    ]);
    let mut verdicts = Vec::new();
    for trio in trios {
        let (direct_p99, nginx_rps) = (trio[0].p99_ms.unwrap_or(0.0), trio[1].rps);
        for (target, result) in targets.iter().zip(trio) {
            table.row(vec![
                target.label.clone(),
                result.connections.to_string(),
                stats::rate(result.rps),
                stats::latency(result.p50()),
                stats::latency(result.p99()),
                stats::latency(result.max()),
                if nginx_rps > 0.0 {
                    format!("{:.2}", result.rps / nginx_rps)
                } else {
                    "–".to_owned()
                },
                result
                    .p99_ms
                    .map_or_else(|| "–".to_owned(), |p| stats::delta_ms(p - direct_p99)),
                format!("{} / {}", result.non_2xx, result.errors),
                cpu_cell(result),
            ]);
        }
        let [direct, via_nginx, via_gateway] = [&trio[0], &trio[1], &trio[2]];
        let all_clean = trio.iter().all(LoadResult::clean);
        let (ratio, added) = budgets(trio);
        let mark = |ok: bool| match (all_clean, ok) {
            (false, _) => Mark::Invalid,
            (true, true) => Mark::Pass,
            (true, false) => Mark::Fail,
        };
        let invalid_reason = if all_clean {
            String::new()
        } else {
            " — not decidable: a run had errors or non-2xx answers".to_owned()
        };
        let connections = direct.connections;
        verdicts.push(Verdict {
            mark: mark(ratio >= MIN_RATIO),
            text: format!(
                "gateway req/s ÷ nginx req/s at {connections} connections = {} ÷ {} = \
                 **{ratio:.2}** (budget ≥ {MIN_RATIO}){invalid_reason}",
                stats::rate(via_gateway.rps),
                stats::rate(via_nginx.rps),
            ),
        });
        verdicts.push(Verdict {
            mark: mark(added.is_some_and(|a| a <= MAX_P99_ADDED_MS)),
            text: format!(
                "gateway p99 − direct p99 at {connections} connections = {} − {} = **{}** \
                 (budget ≤ {MAX_P99_ADDED_MS} ms){invalid_reason}",
                stats::latency(via_gateway.p99()),
                stats::latency(direct.p99()),
                added.map_or_else(|| "–".to_owned(), stats::delta_ms),
            ),
        });
    }

    let mut notes = vec![
        format!(
            "Rate limiting on, never refusing: RATE_LIMIT_DEFAULT_USER and RATE_LIMIT_DEFAULT_IP \
             = {}, so the gateway counted every request against the limit without refusing any \
             (the check request carried `RateLimit-Limit: {limit_header}`; no answer was 429). \
             It takes the user's requests from Redis in leases of 64 at a time (the rate-limit \
             script runs once per 64 requests), as it would for any signed-in client under a \
             generous limit.",
            support::RATE_LIMIT
        ),
        "Token verification on: a real user's RS256 access token (register → verify-email with \
         the OTP read from auth's outbox → login, all through the gateway) is sent as \
         `Authorization: Bearer` to all three targets; the gateway verifies it against auth's \
         JWKS and checks its session in Redis (`SESSION_CACHE_MS` default: a live session is \
         believed for ≤ 1 s); before the runs a tampered token was refused with 401. nginx and \
         the upstream ignore the header."
            .to_owned(),
        format!(
            "nginx ({nginx_version}) is a plain reverse proxy with no token or rate-limit work: \
             worker_processes {cpus}, `upstream {{ keepalive 64; }}`, `proxy_http_version 1.1`, \
             `proxy_set_header Connection \"\"`, keepalive_requests 1000000 on both sides, \
             access_log off; config in {}/nginx/nginx.conf. Our gateway serves the same way \
             (`HTTP_WORKERS` default): {cpus} threads, each with a single-threaded runtime and \
             its own upstream connection pool, dealt the accepted connections in turn.",
            s.show(&s.work_dir)
        ),
        "Gateway and auth log at LOG_LEVEL=warn (the gateway's per-request access-log lines are \
         at info, so none are written); the gateway's other upstream URLs point at the trivial \
         upstream and are never called."
            .to_owned(),
        format!(
            "nginx req/s ÷ direct req/s = {} at {} connections (DESIGN.md §7 expects about 0.31 \
             on this 2-core machine, since load generator, proxy and upstream share the cores).",
            stats::list(
                &trios
                    .iter()
                    .map(|t| format!("{:.2}", t[1].rps / t[0].rps.max(f64::EPSILON)))
                    .collect::<Vec<_>>()
            ),
            s.show_connections()
        ),
        "CPU = cores used during each run, from /proc: the target (the proxy, or the upstream for \
         the direct run), the upstream behind a proxy, lomash-bench (the load generator; absent \
         for wrk), every redis-server process (the gateway's rate-limit and session checks), and \
         the whole machine (everything, e.g. Postgres and other builds, included)."
            .to_owned(),
    ];
    let busiest = trios.iter().flatten().map(other_cores).fold(0.0, f64::max);
    if busiest > 0.5 {
        notes.push(format!(
            "The machine was not quiet: up to {busiest:.2} cores went to processes outside the \
             benchmark (not the target, upstream, load generator or Redis) during a run. Figures \
             from a busy machine are indicative only."
        ));
    }
    for (target, result) in trios.iter().flat_map(|t| targets.iter().zip(t)) {
        if let Some(error) = &result.first_error {
            notes.push(format!("{}: first error: {error}", target.label));
        }
        let non_2xx = || {
            result
                .statuses
                .iter()
                .filter(|(status, _)| !(200..300).contains(*status))
        };
        if non_2xx().next().is_some() {
            notes.push(format!(
                "{}: non-2xx answers: {}",
                target.label,
                stats::status_counts(non_2xx())
            ));
        }
    }

    let warmup = if s.warmup.is_zero() {
        "no warm-up".to_owned()
    } else {
        format!("{} warm-up", stats::show_duration(s.warmup))
    };
    Section {
        scenario: "gateway",
        title: "the gateway as a proxy hop, against nginx and the direct route".to_owned(),
        settings: vec![format!(
            "**Settings:** GET {PATH}, {} concurrent keep-alive connections, {} measured per \
             target and count ({warmup}), the three targets run back to back at each count; \
             load generator: {}, {} thread(s)",
            s.show_connections(),
            stats::show_duration(s.duration),
            s.tool.describe(),
            s.threads,
        )],
        design: vec![
            format!(
                "Direct: GET /v1/products straight to the trivial upstream — `lomash-bench \
                 __upstream`, a separate process (hyper HTTP/1.1 keep-alive, tokio's default \
                 threads) answering 200 with a {}-byte JSON body to every request.",
                crate::upstream::BODY.len()
            ),
            "nginx: the same request through nginx to the same upstream. Gateway: the same \
             request through the release-built gateway-service (UPSTREAM_PRODUCT_URL → the \
             upstream, so /v1/products is proxied to it), with the release-built auth-service \
             behind UPSTREAM_AUTH_URL on its own fresh database `lomash_bench_auth_<id>` for \
             JWKS and sign-in."
                .to_owned(),
            "Every process listens on 127.0.0.1 only and is stopped at the end (also on error or \
             Ctrl-C); the auth database, the Redis keys under the run's prefixes and auth's \
             RabbitMQ exchanges and queues (prefix `bench-<id>-`) are deleted."
                .to_owned(),
        ],
        table,
        verdicts,
        notes,
        json: json!({
            "durationSeconds": s.duration.as_secs_f64(),
            "warmupSeconds": s.warmup.as_secs_f64(),
            "tool": s.tool,
            "runs": trios
                .iter()
                .map(|trio| {
                    let (ratio, added) = budgets(trio);
                    json!({
                        "connections": trio[0].connections,
                        "direct": trio[0],
                        "nginx": trio[1],
                        "gateway": trio[2],
                        "gatewayOverNginx": ratio,
                        "gatewayP99MinusDirectMs": added,
                    })
                })
                .collect::<Vec<_>>(),
        }),
        curves: targets
            .iter()
            .enumerate()
            .map(|(i, target)| {
                let runs: Vec<LoadResult> = trios.iter().map(|t| t[i].clone()).collect();
                Curve::of(target.label.clone(), &runs)
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nginx_config_has_the_keepalive_upstream() {
        let dir = std::env::temp_dir().join(format!("bench-nginx-{}", std::process::id()));
        let path = write_nginx_config(&dir, 8081, 9091, 2).expect("writes");
        let text = std::fs::read_to_string(&path).expect("reads");
        assert!(text.contains("worker_processes 2;"));
        assert!(text.contains("listen 127.0.0.1:8081;"));
        assert!(text.contains("server 127.0.0.1:9091;"));
        assert!(text.contains("keepalive 64;"));
        assert!(text.contains("proxy_http_version 1.1;"));
        assert!(text.contains("proxy_set_header Connection \"\";"));
        assert!(text.contains("access_log off;"));
        assert!(text.contains("daemon off;"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
