//! Child processes we start and must not leave behind.
//!
//! Every child runs in its own process group (so a terminal's Ctrl-C reaches only xtask, which
//! then stops children in order) and is stopped by signalling the whole group: first its
//! polite stop signal, then, after a bounded grace period, SIGKILL. A [`Managed`] that is
//! dropped without being stopped stops itself, so error paths leave nothing running either.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::{http, signals, ui::ui};

/// A running child process with its log file.
pub struct Managed {
    /// Short name for messages (`auth`, `postgres`).
    pub name: String,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
    child: Child,
    stop_signal: Signal,
    exit: Option<ExitStatus>,
    readers: Vec<JoinHandle<()>>,
}

impl Managed {
    /// Starts `command` with stdout/stderr written to `log` (truncated first). With
    /// `stream_tag`, every line is also printed to the terminal behind that tag.
    pub fn spawn(
        name: &str,
        mut command: Command,
        log: &Path,
        stream_tag: Option<String>,
        stop_signal: Signal,
    ) -> Result<Self> {
        if let Some(dir) = log.parent() {
            fs::create_dir_all(dir)
                .with_context(|| format!("cannot create log directory {}", dir.display()))?;
        }
        let file =
            File::create(log).with_context(|| format!("cannot create log {}", log.display()))?;
        command.stdin(Stdio::null()).process_group(0);
        if stream_tag.is_some() {
            command.stdout(Stdio::piped()).stderr(Stdio::piped());
        } else {
            command
                .stdout(
                    file.try_clone()
                        .context("cannot duplicate log file handle")?,
                )
                .stderr(
                    file.try_clone()
                        .context("cannot duplicate log file handle")?,
                );
        }
        let program = command.get_program().to_string_lossy().into_owned();
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {name} (`{program}`)"))?;
        let mut readers = Vec::new();
        if let Some(tag) = stream_tag {
            let sink = Arc::new(Mutex::new(file));
            if let Some(out) = child.stdout.take() {
                readers.push(pipe_lines(out, tag.clone(), Arc::clone(&sink)));
            }
            if let Some(err) = child.stderr.take() {
                readers.push(pipe_lines(err, tag, sink));
            }
        }
        Ok(Self {
            name: name.to_owned(),
            log: log.to_owned(),
            child,
            stop_signal,
            exit: None,
            readers,
        })
    }

    fn pgid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.child.id()).unwrap_or(i32::MAX))
    }

    /// The exit status, if it has exited (reaps it).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none()
            && let Ok(Some(status)) = self.child.try_wait()
        {
            self.exit = Some(status);
        }
        self.exit
    }

    /// Stops it (see [`stop_all`]).
    pub fn stop(&mut self, grace: Duration) {
        stop_all(std::slice::from_mut(self), grace);
    }

    fn join_readers(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }
}

impl Drop for Managed {
    fn drop(&mut self) {
        if self.exit.is_none() {
            self.stop(Duration::from_secs(5));
        }
        self.join_readers();
    }
}

/// Sends each child its stop signal, waits up to `grace` for all of them (less if another
/// Ctrl-C arrives), then SIGKILLs whatever is left of each process group.
pub fn stop_all(children: &mut [Managed], grace: Duration) {
    let signals_before = signals::count();
    for child in children.iter_mut() {
        if child.exited().is_none() {
            let _ = killpg(child.pgid(), child.stop_signal);
        }
    }
    let deadline = Instant::now() + grace;
    while children.iter_mut().any(|c| c.exited().is_none())
        && Instant::now() < deadline
        && signals::count() == signals_before
    {
        thread::sleep(Duration::from_millis(50));
    }
    for child in children.iter_mut() {
        if child.exited().is_none() {
            ui().warn(format!(
                "{} did not stop within {:.1}s; killing it",
                child.name,
                grace.as_secs_f32()
            ));
        }
        // Also sweeps up grandchildren left in the group after the leader exited.
        let _ = killpg(child.pgid(), Signal::SIGKILL);
        if child.exit.is_none() {
            child.exit = child.child.wait().ok();
        }
        child.join_readers();
    }
}

/// How a bounded run ended.
pub enum Finished {
    /// The process exited by itself.
    Exited(ExitStatus),
    /// It ran past its time limit and was killed.
    TimedOut,
    /// A Ctrl-C/SIGTERM arrived and it was killed.
    Interrupted,
    /// The watched port started accepting connections (it began serving instead of exiting),
    /// and it was killed.
    StartedServing,
}

/// Runs `command` to completion with output to `log`, killing it after `timeout`, on a
/// signal, or as soon as `watch_port` opens.
pub fn run_bounded(
    name: &str,
    command: Command,
    log: &Path,
    timeout: Duration,
    watch_port: Option<u16>,
) -> Result<Finished> {
    let mut child = Managed::spawn(name, command, log, None, Signal::SIGTERM)?;
    let started = Instant::now();
    loop {
        if let Some(status) = child.exited() {
            return Ok(Finished::Exited(status));
        }
        let verdict = if signals::interrupted() {
            Some(Finished::Interrupted)
        } else if started.elapsed() > timeout {
            Some(Finished::TimedOut)
        } else if watch_port.is_some_and(http::port_open) {
            Some(Finished::StartedServing)
        } else {
            None
        };
        if let Some(verdict) = verdict {
            child.stop(Duration::from_secs(5));
            return Ok(verdict);
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Copies a pipe to the log (ANSI colours stripped) and to the terminal behind `tag`.
fn pipe_lines(
    source: impl Read + Send + 'static,
    tag: String,
    sink: Arc<Mutex<File>>,
) -> JoinHandle<()> {
    let colour = console::colors_enabled();
    thread::spawn(move || {
        let mut reader = BufReader::new(source);
        let mut buffer = Vec::new();
        loop {
            buffer.clear();
            match reader.read_until(b'\n', &mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let text = String::from_utf8_lossy(&buffer);
            let text = text.trim_end_matches(['\n', '\r']);
            if let Ok(mut file) = sink.lock() {
                let _ = writeln!(file, "{}", strip_ansi(text));
            }
            if colour {
                ui().println(format!("{tag} {text}"));
            } else {
                ui().println(format!("{tag} {}", strip_ansi(text)));
            }
        }
    })
}

/// Removes ANSI escape sequences (colours, cursor moves) from a line.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            // CSI: ESC [ params... final byte in @..~
            Some('[') => {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            // OSC: ESC ] ... BEL or ESC \
            Some(']') => {
                chars.next();
                while let Some(c) = chars.next() {
                    if c == '\u{7}' {
                        break;
                    }
                    if c == '\u{1b}' && chars.peek() == Some(&'\\') {
                        chars.next();
                        break;
                    }
                }
            }
            Some(_) => {
                chars.next();
            }
            None => {}
        }
    }
    out
}

/// The last `lines` lines of a log file, indented, for failure messages.
pub fn tail(path: &Path, lines: usize) -> String {
    let Ok(text) = fs::read(path) else {
        return format!("    (cannot read {})", path.display());
    };
    let text = String::from_utf8_lossy(&text);
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    if all.is_empty() {
        return "    (the log is empty)".to_owned();
    }
    all[start..]
        .iter()
        .map(|line| format!("    {}", strip_ansi(line)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A path relative to the workspace root when possible, for shorter messages.
pub fn display_path(path: &Path, root: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Finds an executable on `PATH` (or at `extra` absolute locations).
pub fn find_program(name: &str, extra: &[&str]) -> Option<PathBuf> {
    let from_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| is_executable(candidate))
    });
    from_path.or_else(|| {
        extra
            .iter()
            .map(PathBuf::from)
            .find(|candidate| is_executable(candidate))
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansi_sequences_are_stripped() {
        let cases = [
            ("plain", "plain"),
            ("\u{1b}[32mINFO\u{1b}[0m ready", "INFO ready"),
            ("\u{1b}[1;31merror\u{1b}[0m: x", "error: x"),
            ("\u{1b}]8;;http://x\u{1b}\\link\u{1b}]8;;\u{1b}\\", "link"),
            ("trailing \u{1b}", "trailing "),
        ];
        for (input, expected) in cases {
            assert_eq!(strip_ansi(input), expected, "{input:?}");
        }
    }

    /// Processes of group `pgid` that are not zombies (killed grandchildren wait as zombies
    /// until PID 1 reaps them; those are gone for our purposes).
    fn live_members(pgid: i32) -> Vec<String> {
        let mut live = Vec::new();
        for entry in fs::read_dir("/proc").expect("procfs").flatten() {
            let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            let Some((_, rest)) = stat.rsplit_once(')') else {
                continue;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            // After the command: state, ppid, pgrp.
            if fields.get(2) == Some(&pgid.to_string().as_str()) && fields.first() != Some(&"Z") {
                live.push(stat);
            }
        }
        live
    }

    #[test]
    fn a_stopped_child_leaves_no_process_behind() {
        let log = std::env::temp_dir().join(format!("xtask-proc-test-{}.log", std::process::id()));
        let mut command = Command::new("sh");
        // The child shell ignores SIGTERM and starts a grandchild: both must still go.
        command.args(["-c", "trap '' TERM; sleep 300 & echo started; wait"]);
        let mut child =
            Managed::spawn("sleeper", command, &log, None, Signal::SIGTERM).expect("spawns");
        let pgid = child.pgid();
        thread::sleep(Duration::from_millis(300));
        child.stop(Duration::from_millis(500));
        assert!(child.exited().is_some());
        thread::sleep(Duration::from_millis(100));
        // No process is left in its group.
        let live = live_members(pgid.as_raw());
        assert!(
            live.is_empty(),
            "process group still has live members: {live:?}"
        );
        assert!(tail(&log, 5).contains("started"));
        let _ = fs::remove_file(&log);
    }
}
