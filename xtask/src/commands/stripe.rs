//! The local Stripe stand-in: `cargo xtask up` without `STRIPE_SECRET_KEY` runs the
//! `stripe-fake` binary and points order-payment at it; `cargo xtask stripe-webhook <type>
//! <paymentIntentId>` sends a correctly signed event to the gateway.
//!
//! The webhook secret is the one `.env.example` documents (`STRIPE_WEBHOOK_SECRET=`), so the
//! service, the fake and this command always agree.

use std::path::Path;
use std::process::{Command, ExitCode};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::Signal;

use crate::http;
use crate::proc::{Managed, tail};
use crate::ui::ui;
use crate::workspace::Workspace;

/// Where the fake listens locally.
pub const FAKE_PORT: u16 = 12111;

/// The gateway's webhook endpoint.
pub const WEBHOOK_URL: &str = "http://127.0.0.1:3000/v1/webhooks/stripe";

/// The binary of the `stripe-fake` crate.
const BINARY: &str = "stripe-fake";

/// The fake's API base URL (async-stripe wants the trailing `/`).
pub fn fake_base_url() -> String {
    format!("http://127.0.0.1:{FAKE_PORT}/")
}

/// Whether real Stripe keys were given (then no fake runs).
pub fn real_keys_given() -> bool {
    std::env::var("STRIPE_SECRET_KEY").is_ok_and(|v| !v.trim().is_empty())
}

/// The local webhook secret, read from `.env.example`.
pub fn local_webhook_secret(root: &Path) -> Result<String> {
    let path = root.join(".env.example");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    secret_in(&text).with_context(|| {
        format!(
            "{} has no uncommented STRIPE_WEBHOOK_SECRET= line",
            path.display()
        )
    })
}

fn secret_in(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("STRIPE_WEBHOOK_SECRET="))
        .map(|value| value.trim().to_owned())
        .find(|value| !value.is_empty())
}

/// What order-payment runs with while the fake stands in for Stripe.
pub fn service_env(secret: &str) -> Vec<(String, String)> {
    vec![
        ("STRIPE_API_BASE".to_owned(), fake_base_url()),
        ("STRIPE_WEBHOOK_SECRET".to_owned(), secret.to_owned()),
    ]
}

/// Starts the fake (already built by `build_bins`) and waits until it listens. Its `/_fake/`
/// controls deliver the events they cause to the gateway, signed with `secret`.
pub fn start_fake(ws: &Workspace, release: bool, secret: &str) -> Result<Managed> {
    if http::port_open(FAKE_PORT) {
        bail!("step `stripe-fake`: port {FAKE_PORT} is already in use");
    }
    let mut command = Command::new(ws.bin_path(BINARY, release));
    command
        .args(["serve", "--port", &FAKE_PORT.to_string()])
        .args(["--webhook-url", WEBHOOK_URL, "--webhook-secret", secret])
        .current_dir(&ws.root);
    let log = ws.log_path(BINARY);
    let mut managed = Managed::spawn(BINARY, command, &log, None, Signal::SIGTERM)
        .map_err(|e| e.context("step `stripe-fake`"))?;
    let started = Instant::now();
    while !http::port_open(FAKE_PORT) {
        if let Some(status) = managed.exited() {
            bail!(
                "step `stripe-fake`: exited ({status}); log {}:\n{}",
                ws.show(&log),
                tail(&log, 20)
            );
        }
        if started.elapsed() > Duration::from_secs(10) {
            bail!("step `stripe-fake`: not listening on {FAKE_PORT} after 10 s");
        }
        thread::sleep(Duration::from_millis(100));
    }
    ui().println(format!(
        "  Stripe: no STRIPE_SECRET_KEY, so stripe-fake stands in at {} (log {})",
        fake_base_url(),
        ws.show(&log)
    ));
    Ok(managed)
}

/// `cargo xtask stripe-webhook <event-type> <id>`: sends one signed event to the gateway. With
/// the fake running, the object comes from it (and is moved into the state the event reports,
/// e.g. the intent succeeds); otherwise a fixture PaymentIntent with that id is sent.
pub fn send_webhook(event_type: &str, id: &str) -> Result<ExitCode> {
    let ws = Workspace::load()?;
    let secret = local_webhook_secret(&ws.root)?;
    let binary = ws.bin_path(BINARY, false);
    if !binary.exists() {
        let status = ws
            .cargo()
            .args(["build", "-p", "stripe-fake", "--bin", BINARY])
            .status()
            .context("cannot run cargo build")?;
        if !status.success() {
            bail!("building {BINARY} failed");
        }
    }
    let mut command = Command::new(&binary);
    command.args([
        "send-webhook",
        "--type",
        event_type,
        "--id",
        id,
        "--url",
        WEBHOOK_URL,
        "--secret",
        &secret,
    ]);
    if http::port_open(FAKE_PORT) {
        command.args(["--api", &fake_base_url()]);
    }
    let status = command
        .status()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_is_the_uncommented_line() {
        let text = "# STRIPE_WEBHOOK_SECRET=whsec_commented\nSTRIPE_WEBHOOK_SECRET=whsec_local\n";
        assert_eq!(secret_in(text).as_deref(), Some("whsec_local"));
        assert_eq!(secret_in("# STRIPE_WEBHOOK_SECRET=x\n"), None);
    }

    #[test]
    fn the_repository_documents_a_local_secret() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let secret = local_webhook_secret(&root).expect("documented");
        assert!(secret.starts_with("whsec_"));
    }

    #[test]
    fn order_payment_is_pointed_at_the_fake() {
        let env = service_env("whsec_x");
        assert!(env.contains(&(
            "STRIPE_API_BASE".to_owned(),
            "http://127.0.0.1:12111/".to_owned()
        )));
        assert!(env.contains(&("STRIPE_WEBHOOK_SECRET".to_owned(), "whsec_x".to_owned())));
    }
}
