//! `lomash-bench`: the performance scenarios of DESIGN.md §7.
//!
//! ```text
//! lomash-bench [SCENARIO]... [--connections 10,64,256] [--duration 15s] [--out bench/RESULTS.md]
//! ```
//!
//! Normally run by `cargo xtask bench`, which makes sure Postgres/Redis/RabbitMQ and nginx are
//! there and builds the release binaries first. Each scenario starts what it measures as separate
//! processes on 127.0.0.1 (or, for `events`, the real relay and consumer against the real broker),
//! drives it from this process, writes its section of `bench/RESULTS.md`, and stops and deletes
//! everything it started or created — also on error and on SIGINT/SIGTERM.

mod charts;
mod cleanup;
mod load;
mod machine;
mod procs;
mod report;
mod scenarios;
mod stats;
mod upstream;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;

use crate::cleanup::Cleanup;
use crate::load::Tool;
use crate::report::RunMeta;
use crate::scenarios::{Ctx, Scenario, Settings};

#[derive(Parser, Debug)]
#[command(
    name = "lomash-bench",
    about = "Lomash Wood performance scenarios (DESIGN.md §7); writes bench/RESULTS.md",
    long_about = "Lomash Wood performance scenarios (DESIGN.md §7). Scenarios: events, gateway, \
                  content, checkout, analytics, products, booking, storefront, idle (the default \
                  set, in that order) and soak (only when named). HTTP runs are swept over \
                  --connections; each run merges its scenario into bench/results.json and \
                  redraws bench/charts/. Usually run through `cargo xtask bench`, which prepares \
                  infrastructure, nginx and release builds. Every setting also reads a BENCH_* \
                  variable."
)]
struct Cli {
    /// Scenarios to run, in order (default: every one but soak)
    scenarios: Vec<String>,
    /// HTTP scenarios: concurrent keep-alive connections, one run at each (the sweep)
    #[arg(
        long,
        env = "BENCH_CONNECTIONS",
        value_delimiter = ',',
        default_value = "10,64,256"
    )]
    connections: Vec<usize>,
    /// HTTP scenarios: measured time per target (15s, 500ms, 1m); events: length of paced runs
    #[arg(long, env = "BENCH_DURATION", default_value = "15s", value_parser = stats::parse_duration)]
    duration: Duration,
    /// HTTP scenarios: unmeasured time before each measured run
    #[arg(long, env = "BENCH_WARMUP", default_value = "0s", value_parser = stats::parse_duration)]
    warmup: Duration,
    /// Worker threads of this process's runtime (the load generator) and wrk's -t
    #[arg(long, env = "BENCH_THREADS", default_value_t = 2)]
    threads: usize,
    /// HTTP load generator
    #[arg(long, env = "BENCH_TOOL", value_enum, default_value_t = Tool::Own)]
    tool: Tool,
    /// events: events committed per burst run
    #[arg(long, env = "BENCH_EVENTS", default_value_t = 20_000)]
    events: u32,
    /// events: concurrent producer tasks in burst runs
    #[arg(long, env = "BENCH_PRODUCERS", default_value_t = 4)]
    producers: usize,
    /// events: events per producer transaction, one run per size
    #[arg(
        long,
        env = "BENCH_TX_SIZES",
        value_delimiter = ',',
        default_value = "1,50"
    )]
    tx_sizes: Vec<u32>,
    /// events: rate of the paced runs, events/s (default: half the burst run's end-to-end rate)
    #[arg(long, env = "BENCH_EVENTS_RATE")]
    events_rate: Option<f64>,
    /// soak: how long the mixed profile runs, in minutes (RSS and p99 read every minute)
    #[arg(long, env = "BENCH_MINUTES", default_value_t = 10)]
    minutes: u64,
    /// The results file (default: bench/RESULTS.md in the workspace)
    #[arg(long, env = "BENCH_OUT")]
    out: Option<PathBuf>,
    /// Print the results without writing the results file
    #[arg(long)]
    no_write: bool,
    /// Postgres URL of an administrative database (new databases are created beside it)
    #[arg(
        long,
        env = "BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    database_url: String,
    /// Redis URL
    #[arg(
        long,
        env = "BENCH_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    redis_url: String,
    /// RabbitMQ URL
    #[arg(
        long,
        env = "BENCH_AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    amqp_url: String,
    /// Directory holding gateway-service and auth-service (default: beside this binary)
    #[arg(long, env = "BENCH_BIN_DIR")]
    bin_dir: Option<PathBuf>,
    /// Scratch directory for configs, logs and JSON results (default: <target>/bench)
    #[arg(long, env = "BENCH_WORK_DIR")]
    work_dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(upstream::SUBCOMMAND) {
        return upstream::main(args.get(2..).unwrap_or_default());
    }
    let cli = Cli::parse();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BENCH_LOG")
                // lapin logs expected channel closes (queue probes, teardown) as errors.
                .unwrap_or_else(|_| {
                    tracing_subscriber::EnvFilter::new("warn,lapin=off,sqlx::postgres::notice=off")
                }),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads.max(1))
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("lomash-bench: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, args)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("lomash-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (this crate's parent directory, as built).
fn workspace_root() -> PathBuf {
    std::env::var_os("BENCH_ROOT").map_or_else(
        || {
            let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
            manifest.parent().map_or(manifest.clone(), PathBuf::from)
        },
        PathBuf::from,
    )
}

fn settings(cli: &Cli) -> Result<Settings> {
    let exe = std::env::current_exe().context("cannot find this executable's path")?;
    let exe_dir = exe
        .parent()
        .map(PathBuf::from)
        .context("this executable has no directory")?;
    let work_dir = match &cli.work_dir {
        Some(dir) => dir.clone(),
        // target/release/lomash-bench → target/bench
        None => exe_dir
            .parent()
            .map_or_else(|| exe_dir.join("bench"), |target| target.join("bench")),
    };
    if cli.connections.is_empty() || cli.connections.contains(&0) {
        bail!("every --connections entry must be at least 1");
    }
    if cli.duration.is_zero() {
        bail!("--duration must be more than zero");
    }
    if cli.events == 0 || cli.producers == 0 || cli.tx_sizes.contains(&0) {
        bail!("--events, --producers and every --tx-sizes entry must be at least 1");
    }
    Ok(Settings {
        connections: cli.connections.clone(),
        duration: cli.duration,
        warmup: cli.warmup,
        threads: cli.threads.max(1),
        tool: cli.tool,
        events: cli.events,
        producers: cli.producers,
        tx_sizes: cli.tx_sizes.clone(),
        events_rate: cli.events_rate.filter(|r| *r > 0.0),
        minutes: cli.minutes.max(1),
        database_url: cli.database_url.clone(),
        redis_url: cli.redis_url.clone(),
        amqp_url: cli.amqp_url.clone(),
        bin_dir: cli.bin_dir.clone().unwrap_or(exe_dir),
        work_dir,
        root: workspace_root(),
    })
}

fn selected(names: &[String]) -> Result<Vec<&'static Scenario>> {
    if names.is_empty() {
        return Ok(scenarios::ALL.iter().collect());
    }
    names
        .iter()
        .map(|name| {
            scenarios::find(name).with_context(|| {
                let known: Vec<&str> = scenarios::ALL
                    .iter()
                    .chain(scenarios::ON_REQUEST)
                    .map(|s| s.name)
                    .collect();
                if scenarios::PLANNED.contains(&name.as_str()) {
                    format!(
                        "scenario `{name}` is planned but not implemented yet (available: {})",
                        known.join(", ")
                    )
                } else {
                    format!(
                        "unknown scenario `{name}` (available: {})",
                        known.join(", ")
                    )
                }
            })
        })
        .collect()
}

/// Resolves on SIGINT, SIGTERM or SIGHUP.
pub async fn termination() {
    use tokio::signal::unix::{SignalKind, signal};
    let wait = |kind: SignalKind| async move {
        match signal(kind) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = wait(SignalKind::interrupt()) => {}
        () = wait(SignalKind::terminate()) => {}
        () = wait(SignalKind::hangup()) => {}
    }
}

async fn run(cli: Cli, args: Vec<String>) -> Result<ExitCode> {
    let chosen = selected(&cli.scenarios)?;
    let settings = settings(&cli)?;
    let root = workspace_root();
    let out = cli
        .out
        .clone()
        .unwrap_or_else(|| root.join("bench").join("RESULTS.md"));
    std::fs::create_dir_all(&settings.work_dir)
        .with_context(|| format!("cannot create {}", settings.work_dir.display()))?;
    let command = {
        let mut shown = vec!["lomash-bench".to_owned()];
        shown.extend(args.iter().skip(1).cloned());
        shown.join(" ")
    };
    let outer_command = std::env::var("BENCH_COMMAND")
        .ok()
        .filter(|c| !c.is_empty());
    let load = settings.load(settings.connections[0]);
    println!(
        "lomash-bench: {} | HTTP: {} connections, {} measured{}, load generator {} | events: {} \
         per burst, {} producers, transactions of {} | {} runtime threads",
        chosen.iter().map(|s| s.name).collect::<Vec<_>>().join(", "),
        settings.show_connections(),
        stats::show_duration(load.duration),
        if load.warmup.is_zero() {
            String::new()
        } else {
            format!(" after {} warm-up", stats::show_duration(load.warmup))
        },
        match load.tool {
            Tool::Own => "own",
            Tool::Wrk => "wrk",
        },
        settings.events,
        settings.producers,
        settings
            .tx_sizes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" and "),
        settings.threads,
    );

    let mut failed = Vec::new();
    for scenario in chosen {
        let meta = RunMeta {
            date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            machine: machine::Machine::read(),
            commit: machine::git_commit(&root),
            outer_command: outer_command.clone(),
            command: command.clone(),
        };
        println!(
            "\n== {} — {} (load average {})",
            scenario.name, scenario.about, meta.machine.load_average
        );
        let ctx = Ctx {
            settings: settings.clone(),
            cleanup: Arc::new(Cleanup::new(&settings.database_url, &settings.redis_url)),
            suffix: uuid::Uuid::new_v4().simple().to_string()[..10].to_owned(),
        };
        let outcome = tokio::select! {
            outcome = (scenario.run)(&ctx) => Some(outcome),
            () = termination() => None,
        };
        ctx.cleanup.run().await;
        match outcome {
            None => {
                eprintln!(
                    "lomash-bench: interrupted during `{}`; everything it started is stopped and removed",
                    scenario.name
                );
                return Ok(ExitCode::from(130));
            }
            Some(Err(error)) => {
                eprintln!(
                    "lomash-bench: scenario `{}` failed: {error:#}",
                    scenario.name
                );
                failed.push(scenario.name);
            }
            Some(Ok(section)) => {
                println!("\n{}", section.table.plain());
                for verdict in &section.verdicts {
                    println!("  {:?}: {}", verdict.mark, verdict.text);
                }
                let json_path = settings
                    .work_dir
                    .join(format!("results-{}.json", scenario.name));
                let json = serde_json::json!({
                    "scenario": scenario.name,
                    "date": meta.date,
                    "machine": meta.machine.describe(),
                    "loadAverage": meta.machine.load_average,
                    "commit": meta.commit,
                    "command": meta.outer_command.clone().unwrap_or_else(|| meta.command.clone()),
                    "results": section.json,
                });
                if let Err(error) = std::fs::write(
                    &json_path,
                    serde_json::to_string_pretty(&json).unwrap_or_default(),
                ) {
                    eprintln!("  ! cannot write {}: {error}", json_path.display());
                }
                if cli.no_write {
                    println!("  (--no-write: {} left as it was)", out.display());
                } else {
                    let order: Vec<&str> = scenarios::ALL
                        .iter()
                        .chain(scenarios::ON_REQUEST)
                        .map(|s| s.name)
                        .chain(scenarios::PLANNED.iter().copied())
                        .collect();
                    report::update_file(&out, &section, &meta, &order)?;
                    let dir = out
                        .parent()
                        .map_or_else(|| root.join("bench"), PathBuf::from);
                    let all = charts::record(
                        &dir.join("results.json"),
                        scenario.name,
                        charts::Recorded {
                            date: meta.date.clone(),
                            machine: meta.machine.describe(),
                            commit: meta.commit.clone(),
                            command: meta
                                .outer_command
                                .clone()
                                .unwrap_or_else(|| meta.command.clone()),
                            curves: section.curves.clone(),
                            results: section.json.clone(),
                        },
                    )?;
                    for chart in charts::write_all(&dir, &all)? {
                        println!("  drew {}", chart.display());
                    }
                    println!(
                        "  wrote the `{}` section of {} (raw figures: {})",
                        scenario.name,
                        out.display(),
                        json_path.display()
                    );
                }
            }
        }
    }
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("lomash-bench: failed: {}", failed.join(", "));
        Ok(ExitCode::FAILURE)
    }
}
