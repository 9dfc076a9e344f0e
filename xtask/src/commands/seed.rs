//! `cargo xtask seed [--products N]`: each service's `seed` command (idempotent), then, with
//! `--products`, the product service's large generated catalogue for benchmarks.

use std::process::ExitCode;

use anyhow::Result;

use super::{present_services, run_for_each};
use crate::infra::{self, Ports};
use crate::signals;
use crate::workspace::Workspace;

/// Runs `seed`.
pub fn run(ports: Ports, products: Option<u32>) -> Result<ExitCode> {
    signals::install()?;
    let ws = Workspace::load()?;
    let present: Vec<_> = present_services(&ws)
        .into_iter()
        .filter(|s| s.database.is_some())
        .collect();
    let _infra = infra::ensure(&ws, ports)?;
    infra::create_databases(&ports)?;
    ws.build_bins(false)?;
    let failures = run_for_each(&ws, &present, "seed", &ports, false)?;
    if !failures.is_empty() {
        return Ok(ExitCode::FAILURE);
    }
    match products {
        Some(count) => super::service_cmd::run(
            ports,
            "product",
            &["seed".into(), "--products".into(), count.to_string()],
        ),
        None => Ok(ExitCode::SUCCESS),
    }
}
