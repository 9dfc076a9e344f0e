//! The scenarios: one module each, listed in [`ALL`]. A scenario gets the shared [`Ctx`], starts
//! what it needs (registering it in `ctx.cleanup` first), measures, and returns its report
//! section. Adding one is a module with a `pub const SCENARIO` and a line in [`ALL`]; what the
//! platform scenarios share (starting services, varied-path load) is in [`support`].

/// Declares a scenario module's `SCENARIO`, which runs the module's
/// `async fn run_scenario(ctx: &Ctx) -> anyhow::Result<Section>`.
macro_rules! scenario {
    ($name:literal, $about:expr $(,)?) => {
        /// The scenario.
        pub const SCENARIO: $crate::scenarios::Scenario = $crate::scenarios::Scenario {
            name: $name,
            about: $about,
            run,
        };

        fn run(
            ctx: &$crate::scenarios::Ctx,
        ) -> futures::future::BoxFuture<'_, anyhow::Result<$crate::report::Section>> {
            Box::pin(run_scenario(ctx))
        }
    };
}
pub(crate) use scenario;

pub mod analytics;
pub mod booking;
pub mod checkout;
pub mod content;
pub mod events;
pub mod gateway;
pub mod idle;
pub mod products;
pub mod soak;
pub mod storefront;
pub mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use crate::cleanup::Cleanup;
use crate::load::{LoadSettings, Tool};
use crate::report::Section;

/// Settings shared by every scenario (from flags and `BENCH_*` variables).
#[derive(Debug, Clone)]
pub struct Settings {
    /// HTTP: concurrent keep-alive connections, one run at each.
    pub connections: Vec<usize>,
    /// HTTP: measured time per target; events: length of the paced runs.
    pub duration: Duration,
    /// HTTP: unmeasured time before each run.
    pub warmup: Duration,
    /// Runtime worker threads of this process (and wrk's `-t`).
    pub threads: usize,
    /// HTTP load generator.
    pub tool: Tool,
    /// Events per burst run.
    pub events: u32,
    /// Concurrent producer tasks in burst runs.
    pub producers: usize,
    /// Events per producer transaction, one run each.
    pub tx_sizes: Vec<u32>,
    /// The soak's length in minutes.
    pub minutes: u64,
    /// Paced-run rate; `None` = half of the burst run's end-to-end rate.
    pub events_rate: Option<f64>,
    /// Postgres URL of a database we may create databases from (`.../postgres`).
    pub database_url: String,
    /// Redis URL.
    pub redis_url: String,
    /// RabbitMQ URL.
    pub amqp_url: String,
    /// Where `gateway-service` and `auth-service` are.
    pub bin_dir: PathBuf,
    /// Scratch space: configs, logs, JSON results (`target/bench`).
    pub work_dir: PathBuf,
    /// The workspace root (paths in the report are shown relative to it).
    pub root: PathBuf,
}

impl Settings {
    /// `path` relative to the workspace root when inside it, for the report.
    pub fn show(&self, path: &std::path::Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    /// The connection counts for the report: `10, 64 and 256`.
    pub fn show_connections(&self) -> String {
        crate::stats::list(&self.connections)
    }

    /// The HTTP load settings at `connections`.
    pub fn load(&self, connections: usize) -> LoadSettings {
        LoadSettings {
            connections,
            duration: self.duration,
            warmup: self.warmup,
            threads: self.threads,
            tool: self.tool,
        }
    }
}

/// What a running scenario has.
pub struct Ctx {
    /// The settings.
    pub settings: Settings,
    /// Undo list for what it creates.
    pub cleanup: Arc<Cleanup>,
    /// A short random string that makes this run's names unique (databases, exchanges, keys).
    pub suffix: String,
}

impl Ctx {
    /// `target/bench/logs/<name>.log`.
    pub fn log_path(&self, name: &str) -> PathBuf {
        self.settings
            .work_dir
            .join("logs")
            .join(format!("{name}.log"))
    }
}

/// A scenario's entry point.
pub type RunFn = for<'a> fn(&'a Ctx) -> BoxFuture<'a, anyhow::Result<Section>>;

/// One scenario.
pub struct Scenario {
    /// Its name on the command line and in RESULTS.md.
    pub name: &'static str,
    /// One line for `--help` and listings.
    pub about: &'static str,
    /// Runs it.
    pub run: RunFn,
}

/// Every implemented scenario, in the order they run when none is named.
pub const ALL: &[Scenario] = &[
    events::SCENARIO,
    gateway::SCENARIO,
    content::SCENARIO,
    checkout::SCENARIO,
    analytics::SCENARIO,
    products::SCENARIO,
    booking::SCENARIO,
    storefront::SCENARIO,
    idle::SCENARIO,
];

/// Scenarios that run only when named (`soak` takes as long as `--minutes` says).
pub const ON_REQUEST: &[Scenario] = &[soak::SCENARIO];

/// Scenarios DESIGN.md §7 calls for that later work adds.
pub const PLANNED: &[&str] = &[];

/// The scenario called `name`.
pub fn find(name: &str) -> Option<&'static Scenario> {
    ALL.iter().chain(ON_REQUEST).find(|s| s.name == name)
}

#[cfg(test)]
pub mod tests_support {
    //! Settings for the unit tests of report rendering.

    use super::*;

    /// The defaults of the command line.
    pub fn settings() -> Settings {
        Settings {
            connections: vec![10, 64, 256],
            duration: Duration::from_secs(15),
            warmup: Duration::ZERO,
            threads: 2,
            tool: Tool::Own,
            events: 20_000,
            producers: 4,
            tx_sizes: vec![1, 50],
            minutes: 10,
            events_rate: None,
            database_url: "postgres://postgres@127.0.0.1:5432/postgres".to_owned(),
            redis_url: "redis://127.0.0.1:6379".to_owned(),
            amqp_url: "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned(),
            bin_dir: PathBuf::from("target/release"),
            work_dir: PathBuf::from("target/bench"),
            root: PathBuf::from("."),
        }
    }
}
