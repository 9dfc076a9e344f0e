//! What the report says about the machine, and CPU time read from `/proc`.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// Linux reports process times in USER_HZ, which is 100 on every architecture it runs on.
const TICKS_PER_SECOND: f64 = 100.0;

/// The machine a run happened on.
#[derive(Debug, Clone)]
pub struct Machine {
    /// Logical CPUs we may use.
    pub cpus: usize,
    /// `model name` from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// Total memory, GiB.
    pub memory_gib: f64,
    /// Kernel release.
    pub kernel: String,
    /// 1/5/15-minute load averages when the run started.
    pub load_average: String,
}

impl Machine {
    /// Reads `/proc`.
    pub fn read() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".to_owned());
        let memory_gib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
            .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        Self {
            cpus,
            cpu_model,
            memory_gib,
            kernel,
            load_average: load_average(),
        }
    }

    /// One line for the report.
    pub fn describe(&self) -> String {
        format!(
            "{} CPUs (`nproc`), {}, {:.1} GiB RAM, Linux {}",
            self.cpus, self.cpu_model, self.memory_gib, self.kernel
        )
    }
}

/// `/proc/loadavg`'s first three fields.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The commit the workspace is at (`abc123def456`; `-dirty` when files differ from it).
pub fn git_commit(root: &Path) -> String {
    let run = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    match run(&["rev-parse", "--short=12", "HEAD"]) {
        Some(commit) => {
            // Changed or new files (the results file itself aside) mean the commit is not all
            // of what ran.
            let dirty = run(&[
                "status",
                "--porcelain",
                "--",
                ".",
                ":(exclude)bench/RESULTS.md",
            ])
            .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{commit}-dirty")
            } else {
                commit
            }
        }
        None => "unknown (not a git checkout)".to_owned(),
    }
}

/// The `utime + stime` ticks of one process (all its threads), if it exists.
fn process_ticks(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command may contain spaces and parentheses: fields start after the last ')'.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state(0) ppid(1) ... utime(11) stime(12).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The parent pid of a process.
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Every live descendant of `root` (children, grandchildren, ...).
pub fn descendants(root: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let parents: Vec<(i32, i32)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| Some((pid, parent_of(pid)?)))
        .collect();
    let mut found: Vec<i32> = Vec::new();
    let mut frontier: HashSet<i32> = HashSet::from([root]);
    while !frontier.is_empty() {
        let next: HashSet<i32> = parents
            .iter()
            .filter(|(pid, parent)| frontier.contains(parent) && !found.contains(pid))
            .map(|(pid, _)| *pid)
            .collect();
        found.extend(next.iter().copied());
        frontier = next;
    }
    found
}

/// The processes whose command name (`/proc/<pid>/comm`) is `name`.
pub fn processes_named(name: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == name)
        })
        .collect()
}

/// CPU ticks of `roots` and all their descendants.
fn tree_ticks(roots: &[i32]) -> u64 {
    let mut seen = HashSet::new();
    let mut total = 0;
    for root in roots {
        for pid in std::iter::once(*root).chain(descendants(*root)) {
            if seen.insert(pid) {
                total += process_ticks(pid).unwrap_or(0);
            }
        }
    }
    total
}

/// Busy ticks of the whole machine (all CPUs): total minus idle and iowait.
fn machine_busy_ticks() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return 0;
    };
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return 0;
    };
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest counted in user).
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    total.saturating_sub(idle)
}

/// CPU use during a run, in cores (1.0 = one core busy all the time).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct CpuUse {
    /// The measured target (a proxy, or the upstream for a direct run).
    pub target: f64,
    /// The trivial upstream (behind a proxy); 0 for a direct run.
    pub upstream: f64,
    /// The load generator (this process without its children); `None` for an external tool.
    pub load_generator: Option<f64>,
    /// Every `redis-server` process (the gateway's rate limits and sessions live there).
    pub redis: f64,
    /// Everything on the machine, ours included.
    pub machine: f64,
}

/// A CPU-time snapshot to diff at the end of a run.
pub struct CpuProbe {
    started: Instant,
    target: Vec<i32>,
    upstream: Vec<i32>,
    generator: Option<i32>,
    redis: Vec<i32>,
    ticks: [u64; 5],
}

impl CpuProbe {
    /// Snapshots the process trees `target` and `upstream`, the process `generator` (alone) and
    /// the machine.
    pub fn start(target: &[i32], upstream: &[i32], generator: Option<i32>) -> Self {
        let redis = processes_named("redis-server");
        let ticks = [
            tree_ticks(target),
            tree_ticks(upstream),
            generator.and_then(process_ticks).unwrap_or(0),
            tree_ticks(&redis),
            machine_busy_ticks(),
        ];
        Self {
            started: Instant::now(),
            target: target.to_vec(),
            upstream: upstream.to_vec(),
            generator,
            redis,
            ticks,
        }
    }

    /// The cores used since [`CpuProbe::start`].
    pub fn finish(&self) -> CpuUse {
        let seconds = self.started.elapsed().as_secs_f64().max(1e-3);
        let cores =
            |now: u64, then: u64| now.saturating_sub(then) as f64 / TICKS_PER_SECOND / seconds;
        CpuUse {
            target: cores(tree_ticks(&self.target), self.ticks[0]),
            upstream: cores(tree_ticks(&self.upstream), self.ticks[1]),
            load_generator: self
                .generator
                .and_then(process_ticks)
                .map(|now| cores(now, self.ticks[2])),
            redis: cores(tree_ticks(&self.redis), self.ticks[3]),
            machine: cores(machine_busy_ticks(), self.ticks[4]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_cpu_ticks_and_the_machine_is_described() {
        let me = i32::try_from(std::process::id()).unwrap_or(i32::MAX);
        assert!(process_ticks(me).is_some());
        assert_eq!(parent_of(me).map(|p| p > 0), Some(true));
        let machine = Machine::read();
        assert!(machine.cpus >= 1);
        assert!(machine.describe().contains("CPUs"));
    }

    #[test]
    fn a_child_is_a_descendant() {
        let mut child = Command::new("sleep").arg("5").spawn().expect("sleep runs");
        let me = i32::try_from(std::process::id()).unwrap_or(i32::MAX);
        let pid = i32::try_from(child.id()).unwrap_or(i32::MAX);
        assert!(descendants(me).contains(&pid));
        let _ = child.kill();
        let _ = child.wait();
    }
}
