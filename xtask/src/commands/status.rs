//! `cargo xtask status`: which infra ports answer, and which services answer `/health` and
//! `/ready`. Starts nothing, builds nothing.

use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use console::style;

use crate::http;
use crate::infra::{MOTO_PORT, Ports};
use crate::services::SERVICES;
use crate::ui::ui;

fn mark(ok: bool) -> String {
    if ok {
        style("✔").green().to_string()
    } else {
        style("✘").red().to_string()
    }
}

fn probe(port: u16, path: &str) -> (bool, String) {
    match http::get_status(port, path, Duration::from_secs(2)) {
        Ok(code) => (code == 200, code.to_string()),
        Err(_) if !http::port_open(port) => (false, "down".to_owned()),
        Err(_) => (false, "no HTTP".to_owned()),
    }
}

/// Runs `status`.
pub fn run(ports: Ports) -> ExitCode {
    ui().println(style("infrastructure (127.0.0.1)").bold().to_string());
    let infra = [
        ("postgres", ports.postgres),
        ("redis", ports.redis),
        ("rabbitmq", ports.rabbitmq),
        ("moto (S3/SQS/SES, tests)", MOTO_PORT),
    ];
    for (name, port) in infra {
        let open = http::port_open(port);
        ui().println(format!(
            "  {} {name:<26} :{port:<5} {}",
            mark(open),
            if open { "listening" } else { "not listening" }
        ));
    }

    ui().println(style("services").bold().to_string());
    ui().println(
        style(format!(
            "    {:<14} {:<6} {:<8} {:<8}",
            "service", "port", "/health", "/ready"
        ))
        .dim()
        .to_string(),
    );
    // Probe in parallel: a hung service must not make the whole table wait 2 s per row.
    let results: Vec<_> = thread::scope(|scope| {
        let handles: Vec<_> = SERVICES
            .iter()
            .map(|service| {
                scope.spawn(move || {
                    (
                        probe(service.port, "/health"),
                        probe(service.port, "/ready"),
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or(((false, "?".to_owned()), (false, "?".to_owned())))
            })
            .collect()
    });
    let mut ready = 0;
    for (service, ((_, health), (is_ready, readiness))) in SERVICES.iter().zip(results) {
        if is_ready {
            ready += 1;
        }
        ui().println(format!(
            "  {} {:<14} {:<6} {:<8} {:<8}",
            mark(is_ready),
            service.name,
            service.port,
            health,
            readiness
        ));
    }
    ui().println(format!("{ready}/{} services ready", SERVICES.len()));
    ExitCode::SUCCESS
}
