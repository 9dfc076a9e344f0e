//! `cargo xtask up`: infra, databases, build, migrate, (seed), start, wait for `/ready`,
//! stream logs until Ctrl-C/SIGTERM, then stop everything.

use std::collections::HashMap;
use std::process::{Command, ExitCode};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use console::{Style, style};
use nix::sys::signal::Signal;

use super::{check_interrupted, present_services, run_for_each, stripe};
use crate::infra::{self, Ports};
use crate::proc::{Managed, stop_all, tail};
use crate::services::{GATEWAY, Service};
use crate::ui::ui;
use crate::workspace::Workspace;
use crate::{Interrupted, http, signals};

/// Options of `up`.
pub struct UpOptions {
    /// Run each service's `seed` command before starting.
    pub seed: bool,
    /// Build and run release binaries.
    pub release: bool,
    /// How long to wait for every `/ready`.
    pub ready_timeout: Duration,
}

/// Running services, stopped together (in parallel) when dropped.
struct Services(Vec<(&'static Service, Managed)>);

impl Services {
    fn stop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let step = ui().step("stopping services");
        let mut children: Vec<Managed> = self.0.drain(..).map(|(_, m)| m).collect();
        stop_all(&mut children, Duration::from_secs(15));
        step.finish("all stopped");
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `up`.
pub fn run(ports: Ports, options: &UpOptions) -> Result<ExitCode> {
    signals::install()?;
    let ws = Workspace::load()?;
    let present = present_services(&ws);
    if present.is_empty() {
        bail!(
            "no service packages (`<name>-service` under services/) in the workspace; nothing to start"
        );
    }
    let mut infra = infra::ensure(&ws, ports)?;
    infra::create_databases(&ports)?;
    check_interrupted()?;
    ws.build_bins(options.release)?;
    check_interrupted()?;
    ensure_ports_free(&present)?;
    // Without real Stripe keys, payments go to the stripe-fake stand-in (stopped when dropped).
    let mut stripe_env = Vec::new();
    let _stripe_fake =
        if !stripe::real_keys_given() && present.iter().any(|s| s.name == "order-payment") {
            let secret = stripe::local_webhook_secret(&ws.root)?;
            stripe_env = stripe::service_env(&secret);
            Some(stripe::start_fake(&ws, options.release, &secret)?)
        } else {
            None
        };

    let with_database: Vec<&Service> = present
        .iter()
        .copied()
        .filter(|s| s.database.is_some())
        .collect();
    let failures = run_for_each(&ws, &with_database, "migrate", &ports, options.release)?;
    if let Some((name, why, log)) = failures.first() {
        bail!(
            "step `migrate` failed for {name}: {why}; log {}:\n{}",
            ws.show(log),
            tail(log, 20)
        );
    }
    if options.seed {
        let failures = run_for_each(&ws, &present, "seed", &ports, options.release)?;
        if let Some((name, why, log)) = failures.first() {
            bail!(
                "step `seed` failed for {name}: {why}; log {}:\n{}",
                ws.show(log),
                tail(log, 20)
            );
        }
    }
    check_interrupted()?;

    let mut services = start(&ws, &present, &ports, options.release, &stripe_env)?;
    wait_ready(&ws, &mut services, options.ready_timeout)?;
    announce(&ws, &present);
    let code = stream_until_stopped(&ws, &mut services, &mut infra);
    services.stop();
    infra.stop();
    code
}

/// Fails if something already listens on a service's port (another `up`?).
fn ensure_ports_free(services: &[&Service]) -> Result<()> {
    let busy: Vec<String> = services
        .iter()
        .filter(|s| http::port_open(s.port))
        .map(|s| format!("{} :{}", s.name, s.port))
        .collect();
    if !busy.is_empty() {
        bail!(
            "step `start`: ports already in use: {} (is another `cargo xtask up` running? \
             `cargo xtask status` shows what answers)",
            busy.join(", ")
        );
    }
    Ok(())
}

const TAG_COLOURS: [fn(Style) -> Style; 9] = [
    Style::cyan,
    Style::green,
    Style::yellow,
    Style::blue,
    Style::magenta,
    Style::red,
    Style::bright,
    |s| s.cyan().bright(),
    |s| s.magenta().bright(),
];

fn tag(service: &Service, index: usize, width: usize) -> String {
    let colour = TAG_COLOURS[index % TAG_COLOURS.len()];
    let tag = format!("[{}]", service.name);
    colour(Style::new().bold())
        .apply_to(format!("{tag:<width$}", width = width + 2))
        .to_string()
}

fn start(
    ws: &Workspace,
    present: &[&'static Service],
    ports: &Ports,
    release: bool,
    stripe_env: &[(String, String)],
) -> Result<Services> {
    let width = present.iter().map(|s| s.name.len()).max().unwrap_or(0);
    let mut services = Services(Vec::new());
    for (index, service) in present.iter().enumerate() {
        let mut command = Command::new(ws.bin_path(&service.binary(), release));
        command
            .arg("serve")
            .envs(service.env(ports))
            .current_dir(&ws.root);
        if service.name == "order-payment" {
            command.envs(stripe_env.iter().cloned());
        }
        let managed = Managed::spawn(
            service.name,
            command,
            &ws.log_path(service.name),
            Some(tag(service, index, width)),
            Signal::SIGTERM,
        )
        .map_err(|e| e.context(format!("step `start`: {}", service.name)))?;
        services.0.push((service, managed));
    }
    Ok(services)
}

fn wait_ready(ws: &Workspace, services: &mut Services, timeout: Duration) -> Result<()> {
    let step = ui().bar("waiting for /ready", services.0.len() as u64);
    let started = Instant::now();
    let mut last: HashMap<&str, String> = HashMap::new();
    let mut ready: Vec<&str> = Vec::new();
    loop {
        if signals::interrupted() {
            step.fail("interrupted");
            bail!(Interrupted);
        }
        for (service, managed) in &mut services.0 {
            if ready.contains(&service.name) {
                continue;
            }
            if let Some(status) = managed.exited() {
                step.fail(format!("{} exited", service.name));
                bail!(
                    "step `start`: {} exited ({status}) before it was ready; log {}:\n{}",
                    service.name,
                    ws.show(&managed.log),
                    tail(&managed.log, 25)
                );
            }
            match http::get_status(service.port, "/ready", Duration::from_secs(2)) {
                Ok(200) => {
                    ready.push(service.name);
                    step.inc(1);
                    ui().println(format!(
                        "{} {} ready on {}",
                        style("✔").green(),
                        service.name,
                        service.url()
                    ));
                }
                Ok(code) => {
                    last.insert(service.name, format!("/ready answered {code}"));
                }
                Err(error) => {
                    last.insert(service.name, format!("{error:#}"));
                }
            }
        }
        if ready.len() == services.0.len() {
            step.finish(format!("{} services ready", ready.len()));
            return Ok(());
        }
        let pending: Vec<&Service> = services
            .0
            .iter()
            .map(|(s, _)| *s)
            .filter(|s| !ready.contains(&s.name))
            .collect();
        if started.elapsed() > timeout {
            step.fail(format!("timed out after {}s", timeout.as_secs()));
            let details: Vec<String> = pending
                .iter()
                .map(|s| {
                    let log = ws.log_path(s.name);
                    format!(
                        "  {} ({}; log {}):\n{}",
                        s.name,
                        last.get(s.name).map_or("no answer", String::as_str),
                        ws.show(&log),
                        tail(&log, 10)
                    )
                })
                .collect();
            let names: Vec<&str> = pending.iter().map(|s| s.name).collect();
            bail!(
                "step `ready`: timed out after {}s waiting for /ready of {}\n{}",
                timeout.as_secs(),
                names.join(", "),
                details.join("\n")
            );
        }
        let names: Vec<&str> = pending.iter().map(|s| s.name).collect();
        step.set_message(format!("waiting for {}", names.join(", ")));
        thread::sleep(Duration::from_millis(250));
    }
}

fn announce(ws: &Workspace, present: &[&Service]) {
    let gateway = present.iter().find(|s| s.name == GATEWAY);
    let line = "─".repeat(60);
    ui().println(style(&line).dim().to_string());
    match gateway {
        Some(gateway) => {
            ui().println(format!(
                "  Lomash Wood is up: {}",
                style(gateway.url()).bold().underlined()
            ));
            ui().println(format!(
                "  API docs:          {}",
                style(format!("{}/docs", gateway.url())).bold().underlined()
            ));
        }
        None => {
            ui().println("  The gateway is not in the workspace yet; services answer directly:");
            for service in present {
                ui().println(format!("    {:<14} {}", service.name, service.url()));
            }
        }
    }
    ui().println(format!(
        "  Logs are in {}/. {} to stop.",
        ws.show(&ws.logs_dir()),
        style("Ctrl-C").bold()
    ));
    ui().println(style(&line).dim().to_string());
}

fn stream_until_stopped(
    ws: &Workspace,
    services: &mut Services,
    infra: &mut infra::Infra,
) -> Result<ExitCode> {
    let mut reported: Vec<&str> = Vec::new();
    loop {
        if signals::interrupted() {
            ui().info("stopping (press Ctrl-C again to kill at once)…");
            return Ok(ExitCode::SUCCESS);
        }
        for (service, managed) in &mut services.0 {
            if !reported.contains(&service.name)
                && let Some(status) = managed.exited()
            {
                reported.push(service.name);
                ui().warn(format!(
                    "{} exited ({status}); log {}",
                    service.name,
                    ws.show(&managed.log)
                ));
            }
        }
        if reported.len() == services.0.len() {
            bail!(
                "every service has exited; see their logs in {}/",
                ws.show(&ws.logs_dir())
            );
        }
        if let Some((name, log)) = infra.exited().into_iter().next() {
            bail!(
                "private {name} exited; log {}:\n{}",
                ws.show(&log),
                tail(&log, 20)
            );
        }
        thread::sleep(Duration::from_millis(200));
    }
}
