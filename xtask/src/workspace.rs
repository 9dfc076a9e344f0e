//! The Cargo workspace: where it is, which service packages exist, and building them.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;

use anyhow::{Context, Result, bail};
use console::style;

use crate::proc::{display_path, strip_ansi};
use crate::services::Service;
use crate::ui::ui;

/// What `cargo metadata --no-deps` told us.
pub struct Workspace {
    /// The workspace root (where the top `Cargo.toml` is).
    pub root: PathBuf,
    /// Cargo's target directory (shared with other builds; honours `CARGO_TARGET_DIR`).
    pub target_dir: PathBuf,
    /// Package name → its binary targets.
    bins: HashMap<String, Vec<String>>,
}

impl Workspace {
    /// Reads the workspace with `cargo metadata --no-deps --format-version 1`.
    pub fn load() -> Result<Self> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("xtask is not inside a workspace")?
            .to_owned();
        let output = cargo(&root)
            .args(["metadata", "--no-deps", "--format-version", "1"])
            .stderr(Stdio::piped())
            .output()
            .context("cannot run `cargo metadata`")?;
        if !output.status.success() {
            bail!(
                "`cargo metadata` failed (is a Cargo.toml in the workspace broken?):\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let metadata: serde_json::Value =
            serde_json::from_slice(&output.stdout).context("cannot parse `cargo metadata`")?;
        let root = metadata["workspace_root"]
            .as_str()
            .map_or(root, PathBuf::from);
        let target_dir = metadata["target_directory"]
            .as_str()
            .map_or_else(|| root.join("target"), PathBuf::from);
        let mut bins = HashMap::new();
        for package in metadata["packages"].as_array().into_iter().flatten() {
            let Some(name) = package["name"].as_str() else {
                continue;
            };
            let targets = package["targets"].as_array().into_iter().flatten();
            let names = targets
                .filter(|t| {
                    t["kind"]
                        .as_array()
                        .is_some_and(|k| k.iter().any(|k| k == "bin"))
                })
                .filter_map(|t| t["name"].as_str().map(str::to_owned))
                .collect();
            bins.insert(name.to_owned(), names);
        }
        Ok(Self {
            root,
            target_dir,
            bins,
        })
    }

    /// Whether the service's package, with its binary, is in the workspace.
    pub fn has_service(&self, service: &Service) -> bool {
        self.bins
            .get(&service.package())
            .is_some_and(|bins| bins.contains(&service.binary()))
    }

    /// `target/dev-logs`: one log per service and per infra process.
    pub fn logs_dir(&self) -> PathBuf {
        self.target_dir.join("dev-logs")
    }

    /// The log file of `name` (`target/dev-logs/<name>.log`).
    pub fn log_path(&self, name: &str) -> PathBuf {
        self.logs_dir().join(format!("{name}.log"))
    }

    /// `target/dev-infra/<name>`: data of private infra instances.
    pub fn infra_dir(&self, name: &str) -> PathBuf {
        self.target_dir.join("dev-infra").join(name)
    }

    /// Where a built binary is.
    pub fn bin_path(&self, binary: &str, release: bool) -> PathBuf {
        self.target_dir
            .join(if release { "release" } else { "debug" })
            .join(binary)
    }

    /// A path for messages, relative to the root when inside it.
    pub fn show(&self, path: &Path) -> String {
        display_path(path, &self.root)
    }

    /// A `cargo` command in the workspace root.
    pub fn cargo(&self) -> Command {
        cargo(&self.root)
    }

    /// Builds every binary of the workspace in one `cargo build --workspace --bins`, showing
    /// progress (the bar's length is the unit count of the previous build).
    pub fn build_bins(&self, release: bool) -> Result<()> {
        fs::create_dir_all(self.logs_dir())?;
        let log_path = self.log_path("build");
        let units_path = self.logs_dir().join(".build-units");
        let expected: Option<u64> = fs::read_to_string(&units_path)
            .ok()
            .and_then(|s| s.trim().parse().ok());
        let label = if release {
            "building services (release)"
        } else {
            "building services"
        };
        let step = match expected {
            Some(len) => ui().bar(label, len),
            None => ui().step(label),
        };
        let mut command = self.cargo();
        command.args([
            "build",
            "--workspace",
            "--bins",
            "--message-format=json-render-diagnostics",
        ]);
        if release {
            command.arg("--release");
        }
        if console::colors_enabled() {
            command.arg("--color=always");
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot run `cargo build`")?;
        let stderr = child.stderr.take().context("no stderr pipe")?;
        let mut log = File::create(&log_path)
            .with_context(|| format!("cannot create {}", log_path.display()))?;
        let stderr_reader = thread::spawn(move || {
            // Keep the tail for the failure message; the whole output goes to the log.
            let mut tail = VecDeque::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(log, "{}", strip_ansi(&line));
                tail.push_back(line);
                if tail.len() > 400 {
                    tail.pop_front();
                }
            }
            tail
        });
        let mut units = 0u64;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if message["reason"] == "compiler-artifact" {
                units += 1;
                if expected.is_some_and(|len| units > len) {
                    step.set_length(units);
                }
                step.set_position(units);
                if let Some(name) = message["target"]["name"].as_str() {
                    step.set_message(name.to_owned());
                }
            }
        }
        let status = child.wait().context("cannot wait for `cargo build`")?;
        let tail = stderr_reader.join().unwrap_or_default();
        if crate::signals::interrupted() {
            step.fail("interrupted");
            bail!(crate::Interrupted);
        }
        if !status.success() {
            step.fail(format!(
                "cargo build failed (full output: {})",
                self.show(&log_path)
            ));
            print_build_errors(&tail);
            bail!(
                "step `build` failed; see the errors above or {}",
                self.show(&log_path)
            );
        }
        let _ = fs::write(&units_path, units.to_string());
        step.finish(format!("{units} units up to date"));
        Ok(())
    }
}

/// Shows the compiler's errors: from the first `error`/`warning` line on, at most 60 lines.
fn print_build_errors(lines: &VecDeque<String>) {
    let first = lines
        .iter()
        .position(|l| {
            let plain = strip_ansi(l);
            plain.starts_with("error") || plain.starts_with("warning")
        })
        .unwrap_or(0);
    let shown: Vec<&String> = lines.iter().skip(first).collect();
    let skip = shown.len().saturating_sub(60);
    if skip > 0 {
        ui().println(
            style(format!("    … {skip} earlier lines in the log"))
                .dim()
                .to_string(),
        );
    }
    for line in &shown[skip..] {
        ui().println(format!("    {line}"));
    }
}

fn cargo(root: &Path) -> Command {
    let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(program);
    command.current_dir(root);
    command
}
