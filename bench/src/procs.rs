//! Child processes of a scenario: started with a clean environment and a log file, probed until
//! they answer, stopped politely then firmly.
//!
//! Children stay in our process group, so whoever stops us by group (xtask, a terminal's Ctrl-C)
//! reaches them too; [`ChildProc::stop`] is the orderly way, used by [`crate::cleanup`].

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::time::{Instant, sleep, timeout};

/// A process we started.
pub struct ChildProc {
    /// Short name for messages: `gateway`, `nginx`.
    pub name: String,
    /// Its process id.
    pub pid: i32,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
    child: Mutex<Option<Child>>,
    exit: Mutex<Option<ExitStatus>>,
}

/// Environment variables a child keeps from ours; everything else is what the scenario sets, so
/// a stray `RATE_LIMIT_*` or `DATABASE_URL` in the caller's shell cannot change a measurement.
const KEPT_ENV: &[&str] = &["PATH", "HOME", "LANG", "LC_ALL", "TZ", "USER"];

impl ChildProc {
    /// Starts `program args` with only `envs` (plus [`KEPT_ENV`]), output to `log`.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        envs: &[(String, String)],
        log: &Path,
    ) -> Result<Self> {
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create log directory {}", dir.display()))?;
        }
        let file = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
        let mut command = Command::new(program);
        command.args(args).env_clear();
        for key in KEPT_ENV {
            if let Some(value) = std::env::var_os(key) {
                command.env(key, value);
            }
        }
        command
            .envs(envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(file.try_clone().context("cannot duplicate a log handle")?)
            .stderr(file)
            .kill_on_drop(true);
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {name} (`{}`)", program.display()))?;
        let pid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .with_context(|| format!("{name} exited at once"))?;
        Ok(Self {
            name: name.to_owned(),
            pid,
            log: log.to_owned(),
            child: Mutex::new(Some(child)),
            exit: Mutex::new(None),
        })
    }

    /// Its exit status, if it has exited.
    pub fn exited(&self) -> Option<ExitStatus> {
        let mut exit = self.exit.lock().unwrap_or_else(|e| e.into_inner());
        if exit.is_none() {
            let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(child) = child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                *exit = Some(status);
            }
        }
        *exit
    }

    /// Its process id with every live descendant (nginx's workers).
    pub fn tree(&self) -> Vec<i32> {
        let mut pids = vec![self.pid];
        pids.extend(crate::machine::descendants(self.pid));
        pids
    }

    /// Fails, with the log's tail, if it has exited.
    pub fn check_alive(&self) -> Result<()> {
        if let Some(status) = self.exited() {
            bail!(
                "{} exited ({status}); log {}:\n{}",
                self.name,
                self.log.display(),
                tail(&self.log, 20)
            );
        }
        Ok(())
    }

    /// SIGTERM, then SIGKILL after `grace`; leftover descendants are killed too.
    pub async fn stop(&self, grace: Duration) {
        let taken = self.child.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(mut child) = taken else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        let descendants = crate::machine::descendants(self.pid);
        let _ = kill(Pid::from_raw(self.pid), Signal::SIGTERM);
        if timeout(grace, child.wait()).await.is_err() {
            eprintln!(
                "  ! {} did not stop within {:.0}s; killing it",
                self.name,
                grace.as_secs_f32()
            );
            let _ = child.kill().await;
        }
        // Workers a killed master left behind (only those still ours: reparented, same names).
        for pid in descendants {
            if is_orphan_or_ours(pid, self.pid) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

/// Whether `pid` is still a child of `parent`, or was reparented (its parent gone).
fn is_orphan_or_ours(pid: i32, parent: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return false;
    };
    let ppid: i32 = rest
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let state = rest.split_whitespace().next().unwrap_or("Z");
    state != "Z" && (ppid == parent || !Path::new(&format!("/proc/{parent}")).exists())
}

/// A free TCP port on 127.0.0.1 (the OS's pick; free at the time of asking).
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("cannot bind 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Polls `url` until it answers 2xx; fails when `process` exits or after `patience`.
pub async fn wait_ready(
    process: &ChildProc,
    client: &reqwest::Client,
    url: &str,
    patience: Duration,
) -> Result<()> {
    let deadline = Instant::now() + patience;
    loop {
        process.check_alive()?;
        let last = match client.get(url).timeout(Duration::from_secs(2)).send().await {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) => format!("answered {}", response.status()),
            Err(error) => error.to_string(),
        };
        if Instant::now() >= deadline {
            bail!(
                "{} did not answer {url} with 2xx within {}s ({last}); log {}:\n{}",
                process.name,
                patience.as_secs(),
                process.log.display(),
                tail(&process.log, 20)
            );
        }
        sleep(Duration::from_millis(100)).await;
    }
}

/// The last `lines` lines of a log, indented.
pub fn tail(path: &Path, lines: usize) -> String {
    let Ok(bytes) = std::fs::read(path) else {
        return format!("    (cannot read {})", path.display());
    };
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    if all.is_empty() {
        return "    (the log is empty)".to_owned();
    }
    all[all.len().saturating_sub(lines)..]
        .iter()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first existing executable among `PATH` entries named `name` and `extra` paths.
pub fn find_program(name: &str, extra: &[&str]) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|c| executable(c))
        })
        .or_else(|| extra.iter().map(PathBuf::from).find(|c| executable(c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stopped_child_is_gone_and_its_log_is_kept() {
        let log = std::env::temp_dir().join(format!("bench-procs-{}.log", std::process::id()));
        let child = ChildProc::spawn(
            "sleeper",
            Path::new("/bin/sh"),
            &["-c".into(), "echo started; exec sleep 30".into()],
            &[],
            &log,
        )
        .expect("sh starts");
        sleep(Duration::from_millis(200)).await;
        assert!(child.exited().is_none());
        child.stop(Duration::from_secs(2)).await;
        assert!(
            !Path::new(&format!("/proc/{}/cmdline", child.pid)).exists() || {
                // A zombie until reaped is fine; it must not be running.
                std::fs::read_to_string(format!("/proc/{}/stat", child.pid))
                    .map(|s| s.contains(") Z"))
                    .unwrap_or(true)
            }
        );
        assert!(tail(&log, 5).contains("started"));
        let _ = std::fs::remove_file(&log);
    }

    #[test]
    fn free_ports_are_nonzero() {
        assert!(free_port().expect("a port") > 0);
    }
}
