//! One module per subcommand, plus what several of them share.

pub mod bench;
pub mod infra;
pub mod migrate;
pub mod seed;
pub mod service_cmd;
pub mod status;
pub mod stripe;
pub mod test;
pub mod up;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::infra::Ports;
use crate::proc::{self, Finished};
use crate::services::{SERVICES, Service};
use crate::ui::ui;
use crate::workspace::Workspace;
use crate::{Interrupted, http};

/// The services whose packages exist, after warning about the ones that do not.
pub fn present_services(ws: &Workspace) -> Vec<&'static Service> {
    let (present, missing): (Vec<&Service>, Vec<&Service>) =
        SERVICES.iter().partition(|s| ws.has_service(s));
    if !missing.is_empty() {
        let names: Vec<String> = missing
            .iter()
            .map(|s| format!("{} (services/{})", s.package(), s.name))
            .collect();
        ui().warn(format!(
            "not in the workspace yet, skipped: {}",
            names.join(", ")
        ));
    }
    present
}

/// Stops early when a Ctrl-C/SIGTERM has arrived.
pub fn check_interrupted() -> Result<()> {
    if crate::signals::interrupted() {
        bail!(Interrupted);
    }
    Ok(())
}

/// How running `<bin> <subcommand>` went.
pub enum SubOutcome {
    /// It succeeded, taking this long.
    Done(Duration),
    /// The binary has no such subcommand.
    Unsupported,
    /// It failed; why.
    Failed(String),
}

/// Output that means "no such subcommand" (service-kit prints `unknown command`; clap-style
/// parsers print the others).
const UNSUPPORTED_MARKERS: &[&str] = &[
    "unknown command",
    "unknown subcommand",
    "unrecognized subcommand",
    "unrecognised subcommand",
    "invalid subcommand",
    "unexpected argument",
];

/// Runs `<bin> <subcommand>` with the service's environment, its output in
/// `target/dev-logs/<service>-<subcommand>.log`. A binary that starts serving instead (it
/// ignored the argument) is stopped and counted as not supporting the subcommand.
pub fn run_subcommand(
    ws: &Workspace,
    service: &Service,
    subcommand: &str,
    ports: &Ports,
    release: bool,
    timeout: Duration,
) -> Result<SubOutcome> {
    let log = ws.log_path(&format!("{}-{subcommand}", service.name));
    let mut command = Command::new(ws.bin_path(&service.binary(), release));
    command
        .arg(subcommand)
        .envs(service.env(ports))
        .current_dir(&ws.root);
    // Watch the port only if it is free now (a running `up` may hold it).
    let watch = (!http::port_open(service.port)).then_some(service.port);
    let started = Instant::now();
    let finished = proc::run_bounded(
        &format!("{} {subcommand}", service.binary()),
        command,
        &log,
        timeout,
        watch,
    )?;
    Ok(match finished {
        Finished::Exited(status) if status.success() => SubOutcome::Done(started.elapsed()),
        Finished::Exited(status) => {
            if says_unsupported(&log) {
                SubOutcome::Unsupported
            } else {
                SubOutcome::Failed(format!("exited with {status}"))
            }
        }
        Finished::StartedServing => SubOutcome::Unsupported,
        Finished::TimedOut => {
            SubOutcome::Failed(format!("still running after {}s", timeout.as_secs()))
        }
        Finished::Interrupted => bail!(Interrupted),
    })
}

fn says_unsupported(log: &Path) -> bool {
    std::fs::read_to_string(log).is_ok_and(|text| {
        let text = text.to_lowercase();
        UNSUPPORTED_MARKERS.iter().any(|m| text.contains(m))
    })
}

/// Runs `subcommand` for each service in turn with a progress bar; returns the failures as
/// `(service, reason, log)`.
pub fn run_for_each(
    ws: &Workspace,
    services: &[&Service],
    subcommand: &str,
    ports: &Ports,
    release: bool,
) -> Result<Vec<(&'static str, String, std::path::PathBuf)>> {
    let step = ui().bar(subcommand, services.len() as u64);
    let mut done = Vec::new();
    let mut skipped = Vec::new();
    let mut failures = Vec::new();
    for service in services {
        step.set_message(service.name);
        let outcome = run_subcommand(
            ws,
            service,
            subcommand,
            ports,
            release,
            Duration::from_secs(300),
        )?;
        match outcome {
            SubOutcome::Done(took) => {
                done.push(service.name);
                ui().println(format!(
                    "    {} {:<14} {subcommand} ok ({:.1}s)",
                    console::style("✔").green(),
                    service.name,
                    took.as_secs_f32()
                ));
            }
            SubOutcome::Unsupported => {
                skipped.push(service.name);
                ui().println(format!(
                    "    {} {:<14} has no `{subcommand}` command, skipped",
                    console::style("–").dim(),
                    service.name
                ));
            }
            SubOutcome::Failed(why) => {
                let log = ws.log_path(&format!("{}-{subcommand}", service.name));
                ui().println(format!(
                    "    {} {:<14} {subcommand} failed: {why} (log {})",
                    console::style("✘").red(),
                    service.name,
                    ws.show(&log)
                ));
                failures.push((service.name, why, log));
            }
        }
        step.inc(1);
    }
    let summary = format!(
        "{} ok, {} skipped, {} failed",
        done.len(),
        skipped.len(),
        failures.len()
    );
    if failures.is_empty() {
        step.finish(summary);
    } else {
        step.fail(summary);
    }
    Ok(failures)
}
