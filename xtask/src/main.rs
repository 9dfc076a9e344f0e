//! `cargo xtask`: the Lomash Wood developer CLI.
//!
//! - `cargo xtask up [--seed] [--release]` starts the whole platform locally;
//! - `cargo xtask test [-- ARGS]` runs every test against real Postgres/Redis/RabbitMQ and moto;
//! - `cargo xtask migrate [--release]` applies every service's migrations;
//! - `cargo xtask status` shows what is listening and what is ready;
//! - `cargo xtask infra` starts only the infrastructure and keeps it running;
//! - `cargo xtask seed [--products N]` loads demo data;
//! - `cargo xtask stripe-webhook <event-type> <paymentIntentId>` sends a signed Stripe event;
//! - `cargo xtask events dlq list|replay <service> [EVENT_ID] [--actor WHO]` inspects and replays
//!   dead letters (a replay is audited and needs `--actor`);
//! - `cargo xtask create-admin <email>` and `cargo xtask rotate-keys` run auth's operations;
//! - `cargo xtask bench [SCENARIO]... [FLAGS]` measures performance into bench/RESULTS.md;
//! - `cargo xtask lint-deploy` checks the deployment files offline;
//! - `cargo xtask fuzz-api [--examples N] [--short]` fuzzes the gateway's OpenAPI document.
//!
//! Plain std threads and processes, no async runtime: the CLI builds in seconds.

mod commands;
mod deploy_check;
mod fuzz;
mod http;
mod infra;
mod pg;
mod proc;
mod services;
mod signals;
mod ui;
mod workspace;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use console::style;

use crate::infra::Ports;
use crate::ui::ui;

/// A Ctrl-C or SIGTERM stopped the command (after it cleaned up).
#[derive(Debug, Clone, Copy)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Lomash Wood developer tasks",
    long_about = "Lomash Wood developer tasks. Postgres, Redis and RabbitMQ already listening on \
                  127.0.0.1 are used; otherwise private instances are started under \
                  target/dev-infra/ (installed with apt-get when missing and running as root). \
                  Logs go to target/dev-logs/."
)]
struct Cli {
    #[command(flatten)]
    ports: PortArgs,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Args)]
#[command(next_help_heading = "Infrastructure ports")]
struct PortArgs {
    /// Postgres port on 127.0.0.1
    #[arg(
        long,
        global = true,
        env = "XTASK_POSTGRES_PORT",
        default_value_t = 5432
    )]
    postgres_port: u16,
    /// Redis port on 127.0.0.1
    #[arg(long, global = true, env = "XTASK_REDIS_PORT", default_value_t = 6379)]
    redis_port: u16,
    /// RabbitMQ (AMQP) port on 127.0.0.1
    #[arg(
        long,
        global = true,
        env = "XTASK_RABBITMQ_PORT",
        default_value_t = 5672
    )]
    rabbitmq_port: u16,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start the platform: infra, databases, build, migrate, nine services; print the gateway
    /// URL; stream logs until Ctrl-C
    Up {
        /// Run each service's `seed` command before starting (services without one are skipped)
        #[arg(long)]
        seed: bool,
        /// Build and run release binaries
        #[arg(long)]
        release: bool,
        /// Seconds to wait for every service's /ready
        #[arg(long, default_value_t = 120)]
        ready_timeout: u64,
    },
    /// Run every test (nextest when installed) with infra and moto (S3/SQS/SES) available
    Test {
        /// Passed to `cargo nextest run` / `cargo test` (after `--`)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Build the services and run each one's `migrate` against its database
    Migrate {
        /// Build and run release binaries
        #[arg(long)]
        release: bool,
    },
    /// Show which infra ports answer and which services answer /health and /ready
    Status,
    /// Start only the infrastructure and databases, and keep private instances running
    Infra,
    /// Measure the performance scenarios of DESIGN.md §7 (release builds, a separate
    /// load-generating process) and write bench/RESULTS.md; `cargo xtask bench -- --help` lists
    /// the scenarios and flags
    Bench {
        /// Scenario names and flags passed to lomash-bench (e.g. `gateway --duration 15s`)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Check the deployment files offline: hadolint, compose schema, helm lint/template,
    /// kubernetes-validate, the manifest policy, actionlint
    LintDeploy,
    /// Event-bus operations
    Events {
        #[command(subcommand)]
        command: EventsCmd,
    },
    /// Create the first SUPER_ADMIN (or promote an existing account); the password comes from
    /// ADMIN_PASSWORD, else one is generated and printed once
    CreateAdmin {
        /// The administrator's email address
        email: String,
    },
    /// Activate a new access-token signing key; the old one keeps verifying until its tokens
    /// expire
    RotateKeys,
    /// Send a correctly signed Stripe webhook event to the gateway (with the local secret from
    /// .env.example); with stripe-fake running, the object comes from it and is moved into the
    /// state the event reports
    StripeWebhook {
        /// e.g. payment_intent.succeeded, payment_intent.payment_failed, charge.refunded
        event_type: String,
        /// The PaymentIntent id (a refund id for refund.updated)
        payment_intent_id: String,
    },
    /// Run schemathesis (every phase and check) against the gateway's merged OpenAPI document
    /// on a platform of its own (free ports, `lomash_fuzz_*` databases), as a customer and as an
    /// administrator; non-zero exit on any failure
    FuzzApi {
        /// Test cases per operation and phase (default 20; 2 with --short)
        #[arg(long)]
        examples: Option<u32>,
        /// The quick CI pass: few examples and a fixed seed
        #[arg(long)]
        short: bool,
        /// Hypothesis seed (default: fixed with --short, else drawn and printed)
        #[arg(long)]
        seed: Option<u64>,
        /// Run the debug binaries already built instead of building the workspace's first
        #[arg(long)]
        no_build: bool,
    },
    /// Load demo data into every service that has some (idempotent)
    Seed {
        /// Also generate this many extra products (for benchmarks)
        #[arg(long)]
        products: Option<u32>,
    },
}

#[derive(Subcommand)]
enum EventsCmd {
    /// A service's dead-letter queue
    Dlq {
        #[command(subcommand)]
        command: DlqCmd,
    },
}

#[derive(Subcommand)]
enum DlqCmd {
    /// List the messages in a service's dead-letter queue
    List {
        /// The consuming service, e.g. customer
        service: String,
    },
    /// Send a service's dead letters (or the one with EVENT_ID) back to its queue
    Replay {
        /// The consuming service, e.g. customer
        service: String,
        /// Only the message with this event id
        event_id: Option<String>,
        /// Who replays (a staff user id or an operator handle), recorded in the service's
        /// audit trail; the service refuses a replay without it
        #[arg(long)]
        actor: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ports = Ports {
        postgres: cli.ports.postgres_port,
        redis: cli.ports.redis_port,
        rabbitmq: cli.ports.rabbitmq_port,
    };
    let result = match cli.command {
        Cmd::Up {
            seed,
            release,
            ready_timeout,
        } => commands::up::run(
            ports,
            &commands::up::UpOptions {
                seed,
                release,
                ready_timeout: Duration::from_secs(ready_timeout),
            },
        ),
        Cmd::Test { args } => commands::test::run(ports, &args),
        Cmd::Migrate { release } => commands::migrate::run(ports, release),
        Cmd::Status => Ok(commands::status::run(ports)),
        Cmd::Infra => commands::infra::run(ports),
        Cmd::Events {
            command: EventsCmd::Dlq { command },
        } => match command {
            DlqCmd::List { service } => {
                commands::service_cmd::run(ports, &service, &["dlq".into(), "list".into()])
            }
            DlqCmd::Replay {
                service,
                event_id,
                actor,
            } => {
                let mut args = vec!["dlq".to_owned(), "replay".to_owned()];
                args.extend(event_id);
                if let Some(actor) = actor {
                    args.extend(["--actor".to_owned(), actor]);
                }
                commands::service_cmd::run(ports, &service, &args)
            }
        },
        Cmd::CreateAdmin { email } => {
            commands::service_cmd::run(ports, "auth", &["create-admin".into(), email])
        }
        Cmd::RotateKeys => commands::service_cmd::run(ports, "auth", &["rotate-keys".into()]),
        Cmd::Seed { products } => commands::seed::run(ports, products),
        Cmd::StripeWebhook {
            event_type,
            payment_intent_id,
        } => commands::stripe::send_webhook(&event_type, &payment_intent_id),
        Cmd::Bench { args } => commands::bench::run(ports, &args),
        Cmd::FuzzApi {
            examples,
            short,
            seed,
            no_build,
        } => fuzz::run(
            ports,
            &fuzz::FuzzOptions {
                examples,
                short,
                seed,
                no_build,
            },
        ),
        Cmd::LintDeploy => workspace::Workspace::load()
            .and_then(|ws| deploy_check::run(&ws.root))
            .map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(error) if error.is::<Interrupted>() => {
            ui().println(format!(
                "{} interrupted; everything we started is stopped",
                style("✘").red()
            ));
            ExitCode::from(130)
        }
        Err(error) => {
            ui().println(format!("{} {error:#}", style("error:").red().bold()));
            ExitCode::FAILURE
        }
    }
}
