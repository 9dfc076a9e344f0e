//! `cargo xtask infra`: only the infrastructure and the databases, kept running until Ctrl-C
//! (for running one service with `cargo run -p <name>-service`).

use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use anyhow::{Result, bail};

use crate::infra::{self, Ports};
use crate::proc::tail;
use crate::signals;
use crate::ui::ui;
use crate::workspace::Workspace;

/// Runs `infra`.
pub fn run(ports: Ports) -> Result<ExitCode> {
    signals::install()?;
    let ws = Workspace::load()?;
    let mut infra = infra::ensure(&ws, ports)?;
    infra::create_databases(&ports)?;
    if !infra.started_any() {
        ui().info("everything was already running; nothing to keep alive");
        return Ok(ExitCode::SUCCESS);
    }
    ui().info(format!(
        "private infrastructure is running (DATABASE_URL={}, REDIS_URL={}, AMQP_URL={}); Ctrl-C to stop it",
        ports.database_url("<db>"),
        ports.redis_url(),
        ports.amqp_url()
    ));
    while !signals::interrupted() {
        if let Some((name, log)) = infra.exited().into_iter().next() {
            bail!(
                "private {name} exited; log {}:\n{}",
                ws.show(&log),
                tail(&log, 20)
            );
        }
        thread::sleep(Duration::from_millis(200));
    }
    infra.stop();
    Ok(ExitCode::SUCCESS)
}
