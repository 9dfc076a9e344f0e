//! `cargo xtask bench [SCENARIO]... [FLAGS]`: the performance scenarios of DESIGN.md §7.
//!
//! Makes sure Postgres/Redis/RabbitMQ answer (private instances otherwise, as `up` does), that
//! nginx (for `gateway`) and wrk (for `--tool wrk`) are installed — with apt-get when we are
//! root, else it prints the command — builds the release binaries the scenarios need, then runs
//! `target/release/lomash-bench` with everything passed through (scenario names and flags such
//! as `--duration 3s --connections 16`; `cargo xtask bench -- --help` lists them). The results go
//! to `bench/RESULTS.md`. lomash-bench runs in its own process group with the processes it
//! starts; on Ctrl-C it is asked to stop (it stops its children and drops what it created), and
//! whatever is left of the group is killed.

use std::process::{Command, ExitCode, ExitStatus};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use console::style;
use nix::sys::signal::Signal;
use nix::unistd::Uid;

use super::check_interrupted;
use crate::infra::{self, Ports};
use crate::proc::{self, Finished, Managed, find_program, tail};
use crate::signals;
use crate::ui::ui;
use crate::workspace::Workspace;

/// A program a scenario needs and the Debian package that has it.
struct Tool {
    program: &'static str,
    package: &'static str,
    paths: &'static [&'static str],
}

const NGINX: Tool = Tool {
    program: "nginx",
    package: "nginx-light",
    paths: &["/usr/sbin/nginx"],
};

const WRK: Tool = Tool {
    program: "wrk",
    package: "wrk",
    paths: &["/usr/bin/wrk"],
};

/// The scenarios that run when none is named (lomash-bench's default).
const DEFAULT_SCENARIOS: &[&str] = &[
    "events",
    "gateway",
    "content",
    "checkout",
    "analytics",
    "products",
    "booking",
    "storefront",
    "idle",
];

/// Scenarios lomash-bench runs only when named.
const ON_REQUEST: &[&str] = &["soak"];

/// Every service binary (the `idle` scenario starts all nine).
const ALL_SERVICES: &[&str] = &[
    "gateway-service",
    "auth-service",
    "product-service",
    "order-payment-service",
    "appointment-service",
    "content-service",
    "customer-service",
    "notification-service",
    "analytics-service",
];

/// Runs `bench`; `args` go to lomash-bench as they are.
pub fn run(ports: Ports, scenarios: &[String]) -> Result<ExitCode> {
    signals::install()?;
    let ws = Workspace::load()?;
    let args = scenarios;
    let help = args.iter().any(|a| a == "--help" || a == "-h");
    let named: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| DEFAULT_SCENARIOS.contains(a) || ON_REQUEST.contains(a))
        .collect();
    let gateway = !help && (named.is_empty() || named.contains(&"gateway"));
    let content = !help && (named.is_empty() || named.contains(&"content"));
    let checkout = !help && (named.is_empty() || named.contains(&"checkout"));
    let analytics = !help && (named.is_empty() || named.contains(&"analytics"));
    let wanted = |name: &str| !help && (named.is_empty() || named.contains(&name));
    let wrk = !help && wants_wrk(args);

    let _infra = if help {
        None
    } else {
        let infra = infra::ensure(&ws, ports)?;
        infra::create_databases(&ports)?;
        Some(infra)
    };
    check_interrupted()?;

    let mut tools = Vec::new();
    if gateway {
        tools.push(&NGINX);
    }
    if wrk {
        tools.push(&WRK);
    }
    ensure_tools(&ws, &tools)?;
    check_interrupted()?;

    let mut packages = vec!["bench"];
    if gateway {
        packages.extend(["gateway-service", "auth-service"]);
    }
    if content {
        packages.push("content-service");
    }
    if checkout {
        packages.extend(["product-service", "order-payment-service", "stripe-fake"]);
    }
    if analytics {
        packages.extend(["analytics-service", "gateway-service"]);
    }
    if wanted("products") {
        packages.extend(["product-service", "gateway-service", "auth-service"]);
    }
    if wanted("booking") {
        packages.extend(["appointment-service", "gateway-service", "auth-service"]);
    }
    if wanted("storefront") || named.contains(&"soak") {
        packages.extend([
            "auth-service",
            "product-service",
            "content-service",
            "appointment-service",
            "order-payment-service",
            "gateway-service",
            "stripe-fake",
        ]);
    }
    if wanted("idle") {
        packages.extend(ALL_SERVICES);
    }
    packages.sort_unstable();
    packages.dedup();
    build(&ws, &packages)?;
    check_interrupted()?;

    let bench = ws.bin_path("lomash-bench", true);
    let results = flag_value(args, "--out")
        .map(|out| ws.root.join(out))
        .unwrap_or_else(|| ws.root.join("bench").join("RESULTS.md"));
    let written = !args.iter().any(|a| a == "--no-write");
    let shown_command = std::iter::once("cargo xtask bench".to_owned())
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let mut command = Command::new(&bench);
    command
        .args(args)
        .current_dir(&ws.root)
        .env("BENCH_DATABASE_URL", ports.database_url("postgres"))
        .env("BENCH_REDIS_URL", ports.redis_url())
        .env("BENCH_AMQP_URL", ports.amqp_url())
        .env("BENCH_ROOT", &ws.root)
        .env("BENCH_BIN_DIR", ws.target_dir.join("release"))
        .env("BENCH_WORK_DIR", ws.target_dir.join("bench"))
        .env("BENCH_COMMAND", &shown_command);
    let log = ws.log_path("bench");
    if !help {
        ui().info(format!(
            "running {} (output also in {})",
            ws.show(&bench),
            ws.show(&log)
        ));
    }
    let tag = style("bench │").dim().to_string();
    let mut child = Managed::spawn("lomash-bench", command, &log, Some(tag), Signal::SIGTERM)
        .context("step `run`: cannot start lomash-bench")?;
    let status = wait(&mut child)?;
    if help {
        return Ok(exit_code(status));
    }
    if status.success() {
        let where_ = if written {
            format!("results in {}", ws.show(&results))
        } else {
            "results printed (--no-write)".to_owned()
        };
        ui().println(format!(
            "{} {where_} (raw figures in {})",
            style("✔").green().bold(),
            ws.show(&ws.target_dir.join("bench"))
        ));
        Ok(ExitCode::SUCCESS)
    } else {
        ui().println(format!(
            "{} lomash-bench exited with {status}; its output is in {} and the logs of the \
             processes it started in {}",
            style("✘").red().bold(),
            ws.show(&log),
            ws.show(&ws.target_dir.join("bench").join("logs"))
        ));
        Ok(exit_code(status))
    }
}

/// The value of `--flag VALUE` or `--flag=VALUE`, if given.
fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter().enumerate().find_map(|(i, a)| {
        if a == flag {
            args.get(i + 1).map(String::as_str)
        } else {
            a.strip_prefix(flag)?.strip_prefix('=')
        }
    })
}

/// Whether the arguments (or `BENCH_TOOL`) ask for wrk.
fn wants_wrk(args: &[String]) -> bool {
    let flag = args.iter().enumerate().any(|(i, a)| {
        a == "--tool=wrk" || (a == "--tool" && args.get(i + 1).is_some_and(|v| v == "wrk"))
    });
    flag || std::env::var("BENCH_TOOL").is_ok_and(|v| v == "wrk")
}

fn exit_code(status: ExitStatus) -> ExitCode {
    match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1).max(1)),
        None => ExitCode::FAILURE,
    }
}

/// Waits for lomash-bench; on Ctrl-C/SIGTERM asks it to stop (it cleans up within a minute).
fn wait(child: &mut Managed) -> Result<ExitStatus> {
    loop {
        if let Some(status) = child.exited() {
            return Ok(status);
        }
        if signals::interrupted() {
            ui().warn("stopping lomash-bench (it stops its processes and drops what it created)");
            child.stop(Duration::from_secs(60));
            bail!(crate::Interrupted);
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Installs the missing tools with apt-get (as root), or explains how.
fn ensure_tools(ws: &Workspace, tools: &[&Tool]) -> Result<()> {
    let missing: Vec<&Tool> = tools
        .iter()
        .copied()
        .filter(|t| find_program(t.program, t.paths).is_none())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let packages: Vec<&str> = missing.iter().map(|t| t.package).collect();
    let line = packages.join(" ");
    let apt_get = find_program("apt-get", &["/usr/bin/apt-get"]);
    let Some(apt_get) = apt_get.filter(|_| Uid::effective().is_root()) else {
        bail!(
            "step `tools`: {} not installed. Install, then re-run:\n    sudo apt-get install -y {line}",
            missing
                .iter()
                .map(|t| t.program)
                .collect::<Vec<_>>()
                .join(" and ")
        );
    };
    let step = ui().step(&format!("installing {line} with apt-get"));
    let log = ws.log_path("apt-bench");
    let apt = |args: &[&str]| -> Result<bool> {
        let mut command = Command::new(&apt_get);
        command.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        match proc::run_bounded("apt-get", command, &log, Duration::from_secs(20 * 60), None)? {
            Finished::Exited(status) => Ok(status.success()),
            Finished::Interrupted => bail!(crate::Interrupted),
            Finished::TimedOut | Finished::StartedServing => Ok(false),
        }
    };
    let mut install = vec!["install", "-y", "--no-install-recommends"];
    install.extend(&packages);
    let installed = apt(&install)? || (apt(&["update"])? && apt(&install)?);
    let still_missing: Vec<&str> = missing
        .iter()
        .filter(|t| find_program(t.program, t.paths).is_none())
        .map(|t| t.program)
        .collect();
    if !installed || !still_missing.is_empty() {
        step.fail("apt-get failed");
        bail!(
            "step `tools`: `apt-get install -y {line}` failed; log {}:\n{}",
            ws.show(&log),
            tail(&log, 20)
        );
    }
    step.finish("installed");
    Ok(())
}

/// `cargo build --release -p <packages>`.
fn build(ws: &Workspace, packages: &[&str]) -> Result<()> {
    let step = ui().step(&format!("building {} (release)", packages.join(", ")));
    let mut command = ws.cargo();
    command.args(["build", "--release"]);
    for package in packages {
        command.args(["-p", package]);
    }
    let log = ws.log_path("bench-build");
    match proc::run_bounded(
        "cargo build",
        command,
        &log,
        Duration::from_secs(60 * 60),
        None,
    )? {
        Finished::Exited(status) if status.success() => {
            step.finish("up to date");
            Ok(())
        }
        Finished::Interrupted => {
            step.fail("interrupted");
            bail!(crate::Interrupted)
        }
        _ => {
            step.fail(format!("failed (log {})", ws.show(&log)));
            bail!(
                "step `build`: `cargo build --release -p {}` failed; log {}:\n{}",
                packages.join(" -p "),
                ws.show(&log),
                tail(&log, 30)
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|a| (*a).to_owned()).collect()
    }

    #[test]
    fn flag_values_are_found_in_both_spellings() {
        let args = strings(&["gateway", "--out", "/tmp/r.md", "--duration=3s"]);
        assert_eq!(flag_value(&args, "--out"), Some("/tmp/r.md"));
        assert_eq!(flag_value(&args, "--duration"), Some("3s"));
        assert_eq!(flag_value(&args, "--connections"), None);
        assert_eq!(flag_value(&strings(&["--outside=x"]), "--out"), None);
    }

    #[test]
    fn wrk_is_wanted_only_when_asked_for() {
        assert!(wants_wrk(&strings(&["gateway", "--tool", "wrk"])));
        assert!(wants_wrk(&strings(&["--tool=wrk"])));
        assert!(
            !wants_wrk(&strings(&["gateway", "--tool", "own"]))
                || std::env::var("BENCH_TOOL").is_ok()
        );
        assert!(!wants_wrk(&strings(&["wrk"])) || std::env::var("BENCH_TOOL").is_ok());
    }
}
