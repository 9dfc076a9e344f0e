//! Operational commands that live in the service binaries (so they also work in a pod with
//! `kubectl exec`): `events dlq`, `create-admin`, `rotate-keys`, `seed`. xtask makes the infra
//! available, builds, and runs `<service>-service <args>` with the service's environment.

use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

use crate::infra::{self, Ports};
use crate::services::{SERVICES, Service};
use crate::signals;
use crate::workspace::Workspace;

fn service(name: &str) -> Result<&'static Service> {
    SERVICES.iter().find(|s| s.name == name).with_context(|| {
        let names: Vec<&str> = SERVICES.iter().map(|s| s.name).collect();
        format!("no service `{name}`; one of: {}", names.join(", "))
    })
}

/// Runs `<service>-service <args>` in the foreground, its output on this terminal.
pub fn run(ports: Ports, name: &str, args: &[String]) -> Result<ExitCode> {
    signals::install()?;
    let service = service(name)?;
    let ws = Workspace::load()?;
    if !ws.has_service(service) {
        bail!("{} is not in the workspace", service.package());
    }
    let _infra = infra::ensure(&ws, ports)?;
    infra::create_databases(&ports)?;
    ws.build_bins(false)?;
    let status = Command::new(ws.bin_path(&service.binary(), false))
        .args(args)
        .envs(service.env(&ports))
        .current_dir(&ws.root)
        .status()
        .with_context(|| format!("cannot run {}", service.binary()))?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
