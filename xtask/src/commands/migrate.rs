//! `cargo xtask migrate`: build, then run each service binary's `migrate` against its database.

use std::process::ExitCode;

use anyhow::Result;
use console::style;

use super::{check_interrupted, present_services, run_for_each};
use crate::infra::{self, Ports};
use crate::proc::tail;
use crate::services::{SERVICES, Service};
use crate::signals;
use crate::ui::ui;
use crate::workspace::Workspace;

/// Runs `migrate`.
pub fn run(ports: Ports, release: bool) -> Result<ExitCode> {
    signals::install()?;
    let ws = Workspace::load()?;
    let present = present_services(&ws);
    let _infra = infra::ensure(&ws, ports)?;
    infra::create_databases(&ports)?;
    check_interrupted()?;
    let targets: Vec<&Service> = present
        .iter()
        .copied()
        .filter(|s| s.database.is_some())
        .collect();
    for service in SERVICES.iter().filter(|s| s.database.is_none()) {
        ui().info(format!("{}: no database, nothing to migrate", service.name));
    }
    if targets.is_empty() {
        ui().warn("no service with a database is in the workspace yet; nothing to migrate");
        return Ok(ExitCode::SUCCESS);
    }
    ws.build_bins(release)?;
    check_interrupted()?;
    let failures = run_for_each(&ws, &targets, "migrate", &ports, release)?;
    if failures.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for (name, why, log) in &failures {
        ui().println(format!(
            "{} {name}: migrate {why}; log {}:\n{}",
            style("✘").red().bold(),
            ws.show(log),
            tail(log, 15)
        ));
    }
    Ok(ExitCode::FAILURE)
}
