//! `cargo xtask test [-- args]`: infra + moto, then every test of the workspace.

use std::process::{Command, ExitCode, ExitStatus, Stdio};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::check_interrupted;
use crate::infra::{self, MOTO_PORT, Ports};
use crate::signals;
use crate::ui::ui;
use crate::workspace::Workspace;

/// Runs `test`, passing `extra` to the test runner.
pub fn run(ports: Ports, extra: &[String]) -> Result<ExitCode> {
    signals::install()?;
    let ws = Workspace::load()?;
    let _infra = infra::ensure(&ws, ports)?;
    infra::create_databases(&ports)?;
    check_interrupted()?;
    let _moto = infra::ensure_moto(&ws)?;
    check_interrupted()?;
    // The deployment files are part of what the tests guard (issue: delivery checked offline).
    if extra.is_empty() {
        crate::deploy_check::run(&ws.root)?;
        check_interrupted()?;
    }

    let nextest = ws
        .cargo()
        .args(["nextest", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let mut command = ws.cargo();
    if nextest {
        command.args(["nextest", "run"]);
    } else {
        ui().warn(
            "cargo-nextest is not installed; using `cargo test` (cargo install cargo-nextest)",
        );
        command.arg("test");
    }
    // `-p`/`--package` narrows the run; otherwise run the whole workspace.
    let narrowed = extra
        .iter()
        .any(|a| a.starts_with("-p") || a.starts_with("--package"));
    if !narrowed {
        command.arg("--workspace");
    }
    command.arg("--no-fail-fast").args(extra);
    set_test_env(&mut command, &ports);
    let shown: Vec<String> = command
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    ui().info(format!("running cargo {}", shown.join(" ")));

    let mut status = run_forwarding_signals(command)?;
    // nextest does not run doctests; run them too when the whole workspace was asked for.
    if nextest && extra.is_empty() && !signals::interrupted() {
        let mut doc = ws.cargo();
        doc.args(["test", "--doc", "--workspace", "--no-fail-fast"]);
        set_test_env(&mut doc, &ports);
        ui().info("running cargo test --doc --workspace --no-fail-fast (nextest skips doctests)");
        let doc_status = run_forwarding_signals(doc)?;
        if status.success() {
            status = doc_status;
        }
    }
    check_interrupted()?;
    if status.success() {
        ui().println(format!(
            "{} all tests passed",
            console::style("✔").green().bold()
        ));
        Ok(ExitCode::SUCCESS)
    } else {
        let code = status.code().unwrap_or(1);
        ui().println(format!(
            "{} tests failed (runner exited with {status})",
            console::style("✘").red().bold()
        ));
        Ok(ExitCode::from(u8::try_from(code).unwrap_or(1).max(1)))
    }
}

/// What tests find in their environment: moto as the AWS endpoint with dummy credentials, and
/// the Postgres server test-support creates its per-test databases on.
fn set_test_env(command: &mut Command, ports: &Ports) {
    command
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{MOTO_PORT}"))
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "eu-west-2");
    if std::env::var_os("TEST_DATABASE_URL").is_none() {
        command.env("TEST_DATABASE_URL", ports.database_url("postgres"));
    }
}

/// Runs the test runner in our process group (so a terminal Ctrl-C reaches it directly) and
/// forwards a SIGTERM sent only to us.
fn run_forwarding_signals(mut command: Command) -> Result<ExitStatus> {
    let mut child = command
        .stdin(Stdio::null())
        .spawn()
        .context("cannot start the test runner")?;
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    let mut forwarded = signals::count();
    loop {
        if let Some(status) = child
            .try_wait()
            .context("cannot wait for the test runner")?
        {
            return Ok(status);
        }
        let received = signals::count();
        if received > forwarded {
            forwarded = received;
            let _ = kill(pid, Signal::SIGTERM);
        }
        thread::sleep(Duration::from_millis(100));
    }
}
