//! Postgres, Redis and RabbitMQ (and, for tests, moto) on 127.0.0.1.
//!
//! For each server: if its port already accepts connections we use it. Otherwise, if the server
//! is installed we start a private instance with its data under `target/dev-infra/<name>/` and
//! its log in `target/dev-logs/<name>.log`, bound to loopback, and stop it when the command
//! ends. If it is not installed we install it with apt-get when we are root, or print the exact
//! command and fail.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::Signal;
use nix::unistd::{Gid, Uid, User};

use crate::proc::{self, Finished, Managed, find_program, stop_all, tail};
use crate::workspace::Workspace;
use crate::{http, pg, services, signals, ui::ui};

/// Where the infrastructure listens (always 127.0.0.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// Postgres.
    pub postgres: u16,
    /// Redis.
    pub redis: u16,
    /// RabbitMQ (AMQP).
    pub rabbitmq: u16,
}

impl Default for Ports {
    fn default() -> Self {
        Self {
            postgres: 5432,
            redis: 6379,
            rabbitmq: 5672,
        }
    }
}

impl Ports {
    /// `postgres://postgres@127.0.0.1:<port>/<database>` (trust auth locally).
    pub fn database_url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.postgres)
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn redis_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.redis)
    }

    /// `amqp://guest:guest@127.0.0.1:<port>/%2f` (the default vhost).
    pub fn amqp_url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.rabbitmq)
    }
}

/// The port moto_server (S3, SQS, SES) listens on for tests.
pub const MOTO_PORT: u16 = 4566;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Postgres,
    Redis,
    RabbitMq,
}

const ALL: [Kind; 3] = [Kind::Postgres, Kind::Redis, Kind::RabbitMq];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Postgres => "postgres",
            Kind::Redis => "redis",
            Kind::RabbitMq => "rabbitmq",
        }
    }

    fn port(self, ports: &Ports) -> u16 {
        match self {
            Kind::Postgres => ports.postgres,
            Kind::Redis => ports.redis,
            Kind::RabbitMq => ports.rabbitmq,
        }
    }

    fn apt_package(self) -> &'static str {
        match self {
            Kind::Postgres => "postgresql",
            Kind::Redis => "redis-server",
            Kind::RabbitMq => "rabbitmq-server",
        }
    }

    /// How long the server may take to open its port.
    fn start_timeout(self) -> Duration {
        match self {
            Kind::Postgres => Duration::from_secs(60),
            Kind::Redis => Duration::from_secs(20),
            Kind::RabbitMq => Duration::from_secs(120),
        }
    }

    /// The installed server program, if any.
    fn locate(self) -> Option<PathBuf> {
        match self {
            Kind::Postgres => postgres_bin_dir(),
            Kind::Redis => find_program("redis-server", &["/usr/bin/redis-server"]),
            // Debian's /usr/sbin/rabbitmq-server is a wrapper that switches user and ignores
            // our HOME; the script behind it takes our environment as it is.
            Kind::RabbitMq => {
                let debian = Path::new("/usr/lib/rabbitmq/bin/rabbitmq-server");
                if debian.is_file() {
                    Some(debian.to_owned())
                } else {
                    find_program("rabbitmq-server", &["/usr/sbin/rabbitmq-server"])
                }
            }
        }
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` holding both `initdb` and `postgres`, or a
/// directory on `PATH` holding both.
fn postgres_bin_dir() -> Option<PathBuf> {
    let complete = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| complete(dir))
        .collect();
    versions.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
    versions.into_iter().map(|(_, dir)| dir).next().or_else(|| {
        find_program("initdb", &[])
            .and_then(|initdb| initdb.parent().map(Path::to_owned))
            .filter(|dir| complete(dir))
    })
}

fn is_root() -> bool {
    Uid::effective().is_root()
}

/// The infrastructure for one command; private instances it started stop when it is dropped.
pub struct Infra {
    started: Vec<Managed>,
}

impl Infra {
    /// Whether we started any private instance.
    pub fn started_any(&self) -> bool {
        !self.started.is_empty()
    }

    /// Names and logs of private instances that have exited (they should not).
    pub fn exited(&mut self) -> Vec<(String, PathBuf)> {
        let mut gone = Vec::new();
        for managed in &mut self.started {
            if managed.exited().is_some() {
                gone.push((managed.name.clone(), managed.log.clone()));
            }
        }
        gone
    }

    /// Stops the private instances we started (no-op when we started none).
    pub fn stop(&mut self) {
        if self.started.is_empty() {
            return;
        }
        let names: Vec<String> = self.started.iter().map(|m| m.name.clone()).collect();
        let step = ui().step("stopping private infrastructure");
        stop_all(&mut self.started, Duration::from_secs(30));
        self.started.clear();
        step.finish(names.join(", "));
    }
}

impl Drop for Infra {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Makes sure Postgres, Redis and RabbitMQ answer on `ports`.
pub fn ensure(ws: &Workspace, ports: Ports) -> Result<Infra> {
    let mut infra = Infra {
        started: Vec::new(),
    };
    let mut down: Vec<Kind> = ALL
        .into_iter()
        .filter(|kind| !http::port_open(kind.port(&ports)))
        .collect();
    let summary = |kinds: &[Kind]| {
        kinds
            .iter()
            .map(|k| format!("{} :{}", k.name(), k.port(&ports)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let up: Vec<Kind> = ALL.into_iter().filter(|k| !down.contains(k)).collect();
    if !up.is_empty() {
        ui().info(format!("using running {}", summary(&up)));
    }
    if down.is_empty() {
        return Ok(infra);
    }

    let not_installed: Vec<Kind> = down
        .iter()
        .copied()
        .filter(|kind| kind.locate().is_none())
        .collect();
    if !not_installed.is_empty() {
        install(ws, &not_installed)?;
        // Installing may have started the distribution's own servers.
        down.retain(|kind| !http::port_open(kind.port(&ports)));
        if down.is_empty() {
            return Ok(infra);
        }
    }

    let step = ui().bar("starting private infrastructure", down.len() as u64);
    step.set_message(summary(&down));
    for kind in &down {
        let server = kind.locate().with_context(|| {
            format!(
                "{} is still not installed after apt-get",
                kind.apt_package()
            )
        })?;
        let started = match kind {
            Kind::Postgres => start_postgres(ws, &server, kind.port(&ports)),
            Kind::Redis => start_redis(ws, &server, kind.port(&ports)),
            Kind::RabbitMq => start_rabbitmq(ws, &server, kind.port(&ports)),
        };
        match started {
            Ok(managed) => infra.started.push(managed),
            Err(error) => {
                step.fail(format!("{} did not start", kind.name()));
                return Err(error.context(format!("step `infra`: starting {}", kind.name())));
            }
        }
    }
    let started_at = Instant::now();
    let mut waiting: Vec<Kind> = down.clone();
    while !waiting.is_empty() {
        if signals::interrupted() {
            step.fail("interrupted");
            bail!(crate::Interrupted);
        }
        let mut failure = None;
        waiting.retain(|kind| {
            let port = kind.port(&ports);
            if http::port_open(port) {
                step.inc(1);
                return false;
            }
            if failure.is_none() && started_at.elapsed() > kind.start_timeout() {
                failure = Some((*kind, "did not open its port in time".to_owned()));
            }
            true
        });
        for managed in &mut infra.started {
            if let Some(status) = managed.exited()
                && let Some(kind) = waiting.iter().find(|k| k.name() == managed.name)
            {
                failure = Some((*kind, format!("exited ({status})")));
            }
        }
        if let Some((kind, why)) = failure {
            let log = ws.log_path(kind.name());
            step.fail(format!("{} {why}", kind.name()));
            bail!(
                "step `infra`: private {} on 127.0.0.1:{} {why}; log {}:\n{}",
                kind.name(),
                kind.port(&ports),
                ws.show(&log),
                tail(&log, 25)
            );
        }
        step.set_message(summary(&waiting));
        thread::sleep(Duration::from_millis(200));
    }
    step.finish(format!(
        "{} (data in {})",
        summary(&down),
        ws.show(&ws.target_dir.join("dev-infra"))
    ));
    Ok(infra)
}

/// Creates the eight `lomash_*` databases that are missing.
pub fn create_databases(ports: &Ports) -> Result<()> {
    let step = ui().step("databases");
    let names = services::databases();
    match pg::ensure_databases(ports.postgres, "postgres", &names) {
        Ok(created) if created.is_empty() => {
            step.finish(format!("all {} lomash_* databases exist", names.len()));
            Ok(())
        }
        Ok(created) => {
            step.finish(format!("created {}", created.join(", ")));
            Ok(())
        }
        Err(error) => {
            step.fail("cannot create the lomash_* databases");
            Err(error.context(format!(
                "step `databases` on 127.0.0.1:{} as user postgres",
                ports.postgres
            )))
        }
    }
}

/// Installs the missing servers with apt-get (as root), or explains how.
fn install(ws: &Workspace, kinds: &[Kind]) -> Result<()> {
    let packages: Vec<&str> = kinds.iter().map(|k| k.apt_package()).collect();
    let packages_line = packages.join(" ");
    let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
    let apt_get = find_program("apt-get", &["/usr/bin/apt-get"]);
    let Some(apt_get) = apt_get.filter(|_| is_root()) else {
        bail!(
            "{} {} not running on 127.0.0.1 and not installed. Install, then re-run:\n    sudo apt-get install -y {packages_line}",
            names.join(", "),
            if names.len() == 1 { "is" } else { "are" },
        );
    };
    let step = ui().step(&format!("installing {packages_line} with apt-get"));
    let apt = |args: &[&str], log: &str| -> Result<bool> {
        let mut command = Command::new(&apt_get);
        command.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        let finished = proc::run_bounded(
            "apt-get",
            command,
            &ws.log_path(log),
            Duration::from_secs(30 * 60),
            None,
        )?;
        match finished {
            Finished::Exited(status) => Ok(status.success()),
            Finished::Interrupted => bail!(crate::Interrupted),
            Finished::TimedOut | Finished::StartedServing => Ok(false),
        }
    };
    let mut install_args = vec!["install", "-y"];
    install_args.extend(&packages);
    let installed = apt(&install_args, "apt")?
        || (apt(&["update"], "apt-update")? && apt(&install_args, "apt")?);
    if !installed {
        step.fail("apt-get failed");
        bail!(
            "step `infra`: `apt-get install -y {packages_line}` failed; log {}:\n{}",
            ws.show(&ws.log_path("apt")),
            tail(&ws.log_path("apt"), 20)
        );
    }
    step.finish("installed");
    Ok(())
}

/// The `postgres` account's ids, needed because `initdb` and `postgres` refuse to run as root.
fn postgres_account() -> Result<Option<(Uid, Gid)>> {
    if !is_root() {
        return Ok(None);
    }
    let user = User::from_name("postgres")
        .context("cannot look up the postgres user")?
        .context(
            "running as root, Postgres must run as the `postgres` user, which does not exist \
             (apt-get install postgresql creates it)",
        )?;
    Ok(Some((user.uid, user.gid)))
}

/// Runs the command as `account` (no-op when `None`), dropping root's groups.
fn run_as(command: &mut Command, account: Option<(Uid, Gid)>) {
    if let Some((uid, gid)) = account {
        command.uid(uid.as_raw()).gid(gid.as_raw());
    }
}

/// Fails clearly when `account` cannot reach `dir` (some parent is not searchable).
fn check_reachable(dir: &Path, account: Option<(Uid, Gid)>) -> Result<()> {
    let Some((uid, gid)) = account else {
        return Ok(());
    };
    for ancestor in dir.ancestors().skip(1) {
        let meta = fs::metadata(ancestor)
            .with_context(|| format!("cannot stat {}", ancestor.display()))?;
        let mode = meta.permissions().mode();
        let searchable = mode & 0o001 != 0
            || (meta.uid() == uid.as_raw() && mode & 0o100 != 0)
            || (meta.gid() == gid.as_raw() && mode & 0o010 != 0);
        if !searchable {
            bail!(
                "the postgres user cannot reach {}: {} is not searchable by it (chmod o+x it, \
                 or point CARGO_TARGET_DIR somewhere it can reach)",
                dir.display(),
                ancestor.display()
            );
        }
    }
    Ok(())
}

fn start_postgres(ws: &Workspace, bin_dir: &Path, port: u16) -> Result<Managed> {
    let dir = ws.infra_dir("postgres");
    let data = dir.join("data");
    let account = postgres_account()?;
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    if !data.join("PG_VERSION").is_file() {
        // Nothing there, or what a failed initdb left behind: start from scratch.
        if data.exists() {
            fs::remove_dir_all(&data)
                .with_context(|| format!("cannot clear {}", data.display()))?;
        }
        fs::create_dir_all(&data)?;
        fs::set_permissions(&data, fs::Permissions::from_mode(0o700))?;
        if let Some((uid, gid)) = account {
            std::os::unix::fs::chown(&data, Some(uid.as_raw()), Some(gid.as_raw()))
                .with_context(|| format!("cannot chown {} to postgres", data.display()))?;
        }
        check_reachable(&data, account)?;
        let mut initdb = Command::new(bin_dir.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
            ])
            .current_dir(&dir);
        run_as(&mut initdb, account);
        let log = ws.log_path("postgres-initdb");
        match proc::run_bounded("initdb", initdb, &log, Duration::from_secs(180), None)? {
            Finished::Exited(status) if status.success() => {}
            Finished::Interrupted => bail!(crate::Interrupted),
            _ => bail!("initdb failed; log {}:\n{}", ws.show(&log), tail(&log, 20)),
        }
    }
    let mut postgres = Command::new(bin_dir.join("postgres"));
    postgres
        .arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string()])
        .args(["-c", "listen_addresses=127.0.0.1"])
        // No Unix socket: the system one may own /var/run/postgresql; we only use TCP.
        .args(["-c", "unix_socket_directories="])
        // Nine services' pools plus a database per test.
        .args(["-c", "max_connections=300"])
        .current_dir(&dir);
    run_as(&mut postgres, account);
    // SIGINT is Postgres's "fast" shutdown (SIGTERM would wait for clients to leave).
    Managed::spawn(
        "postgres",
        postgres,
        &ws.log_path("postgres"),
        None,
        Signal::SIGINT,
    )
}

fn start_redis(ws: &Workspace, server: &Path, port: u16) -> Result<Managed> {
    let dir = ws.infra_dir("redis");
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut redis = Command::new(server);
    redis
        .args(["--port", &port.to_string()])
        .args(["--bind", "127.0.0.1"])
        .arg("--dir")
        .arg(&dir)
        // Redis is a cache here, never a system of record: no persistence.
        .args(["--save", "", "--appendonly", "no"])
        .args([
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
            "--logfile",
            "",
        ])
        .current_dir(&dir);
    Managed::spawn("redis", redis, &ws.log_path("redis"), None, Signal::SIGTERM)
}

fn start_rabbitmq(ws: &Workspace, server: &Path, port: u16) -> Result<Managed> {
    let dir = ws.infra_dir("rabbitmq");
    let home = dir.join("home");
    for sub in ["mnesia", "log", "home"] {
        fs::create_dir_all(dir.join(sub))
            .with_context(|| format!("cannot create {}", dir.join(sub).display()))?;
    }
    // Our own config files, so /etc/rabbitmq (node name, listeners, plugins) does not apply.
    let config = dir.join("rabbitmq.conf");
    fs::write(
        &config,
        format!("listeners.tcp.local = 127.0.0.1:{port}\nloopback_users.guest = true\n"),
    )?;
    fs::write(dir.join("rabbitmq-env.conf"), "")?;
    fs::write(dir.join("enabled_plugins"), "[].\n")?;
    // Erlang distribution port: the usual AMQP + 20000, kept in range.
    let dist_port = if port <= 45_535 {
        port + 20_000
    } else {
        port - 20_000
    };
    let mut rabbit = Command::new(server);
    rabbit
        .env("RABBITMQ_NODENAME", format!("lomash-dev-{port}@localhost"))
        .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
        .env("RABBITMQ_NODE_PORT", port.to_string())
        .env("RABBITMQ_DIST_PORT", dist_port.to_string())
        .env("RABBITMQ_CONFIG_FILE", &config)
        .env("RABBITMQ_ADVANCED_CONFIG_FILE", dir.join("advanced.config"))
        .env("RABBITMQ_CONF_ENV_FILE", dir.join("rabbitmq-env.conf"))
        .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
        .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
        .env("RABBITMQ_LOG_BASE", dir.join("log"))
        .env("RABBITMQ_PID_FILE", dir.join("rabbitmq.pid"))
        .env("RABBITMQ_LOGS", "-")
        .env("ERL_EPMD_ADDRESS", "127.0.0.1")
        .env(
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
            "-kernel inet_dist_use_interface {127,0,0,1}",
        )
        // The Erlang cookie lives in HOME: keep it private to this instance.
        .env("HOME", &home)
        .current_dir(&dir);
    Managed::spawn(
        "rabbitmq",
        rabbit,
        &ws.log_path("rabbitmq"),
        None,
        Signal::SIGTERM,
    )
}

/// Makes sure something S3/SQS/SES-compatible answers on 127.0.0.1:4566 for tests: an
/// existing server, or a `moto_server` we start (installing moto with pip if needed).
pub fn ensure_moto(ws: &Workspace) -> Result<Option<Managed>> {
    if http::port_open(MOTO_PORT) {
        ui().info(format!("using running moto/AWS stand-in on :{MOTO_PORT}"));
        return Ok(None);
    }
    let venv = ws.infra_dir("moto-venv");
    let venv_bin = venv.join("bin/moto_server");
    let home_bin = std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".local/bin/moto_server"))
        .unwrap_or_default();
    let extra = [venv_bin.to_string_lossy(), home_bin.to_string_lossy()];
    let extra: Vec<&str> = extra.iter().map(AsRef::as_ref).collect();
    let program = match find_program("moto_server", &extra) {
        Some(program) => program,
        None => install_moto(ws, &venv)?,
    };
    let step = ui().step(&format!("starting moto_server on 127.0.0.1:{MOTO_PORT}"));
    let mut command = Command::new(&program);
    command.args(["-H", "127.0.0.1", "-p", &MOTO_PORT.to_string()]);
    let log = ws.log_path("moto");
    let mut moto = Managed::spawn("moto", command, &log, None, Signal::SIGTERM)?;
    let started = Instant::now();
    while !http::port_open(MOTO_PORT) {
        let failed = if let Some(status) = moto.exited() {
            Some(format!("exited ({status})"))
        } else if started.elapsed() > Duration::from_secs(60) {
            Some("did not open its port within 60s".to_owned())
        } else if signals::interrupted() {
            step.fail("interrupted");
            bail!(crate::Interrupted);
        } else {
            None
        };
        if let Some(why) = failed {
            step.fail(format!("moto_server {why}"));
            bail!(
                "step `moto`: moto_server {why}; log {}:\n{}",
                ws.show(&log),
                tail(&log, 20)
            );
        }
        thread::sleep(Duration::from_millis(200));
    }
    step.finish(format!("S3/SQS/SES at http://127.0.0.1:{MOTO_PORT}"));
    Ok(Some(moto))
}

/// `pip install 'moto[server]'`; where pip refuses (an externally managed Python), into a
/// private virtualenv under `target/dev-infra/moto-venv`.
fn install_moto(ws: &Workspace, venv: &Path) -> Result<PathBuf> {
    let step = ui().step("installing moto[server] with pip");
    let log = ws.log_path("pip");
    let run = |command: Command| -> Result<bool> {
        match proc::run_bounded("pip", command, &log, Duration::from_secs(15 * 60), None)? {
            Finished::Exited(status) => Ok(status.success()),
            Finished::Interrupted => bail!(crate::Interrupted),
            _ => Ok(false),
        }
    };
    let pip = find_program("pip3", &[]).or_else(|| find_program("pip", &[]));
    if let Some(pip) = pip {
        let mut command = Command::new(pip);
        command.args(["install", "--quiet", "moto[server]"]);
        if run(command)?
            && let Some(program) = find_program("moto_server", &[])
        {
            step.finish(program.display().to_string());
            return Ok(program);
        }
    }
    let python = find_program("python3", &[]).context("python3 is not installed")?;
    let created = Command::new(&python)
        .arg("-m")
        .arg("venv")
        .arg(venv)
        .status()
        .is_ok_and(|s| s.success());
    if created {
        let mut command = Command::new(venv.join("bin/pip"));
        command.args(["install", "--quiet", "moto[server]"]);
        let program = venv.join("bin/moto_server");
        if run(command)? && program.is_file() {
            step.finish(ws.show(&program));
            return Ok(program);
        }
    }
    step.fail("pip failed");
    bail!(
        "step `moto`: cannot install moto; log {}. Install it yourself:\n    pip install 'moto[server]'",
        ws.show(&log)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_the_ports() {
        let ports = Ports::default();
        assert_eq!(
            ports.database_url("lomash_auth"),
            "postgres://postgres@127.0.0.1:5432/lomash_auth"
        );
        assert_eq!(ports.redis_url(), "redis://127.0.0.1:6379");
        assert_eq!(ports.amqp_url(), "amqp://guest:guest@127.0.0.1:5672/%2f");
    }

    #[test]
    fn the_installed_servers_are_found() {
        // On this machine kind all three are installed; elsewhere this only checks no panic.
        for kind in ALL {
            if let Some(path) = kind.locate() {
                assert!(path.exists(), "{path:?}");
            }
        }
    }

    #[test]
    fn reachability_is_checked_for_the_postgres_account() {
        let dir = std::env::temp_dir().join(format!("xtask-reach-{}", std::process::id()));
        let locked = dir.join("locked");
        let inner = locked.join("data");
        fs::create_dir_all(&inner).expect("mkdir");
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o700)).expect("chmod");
        let nobody = Some((Uid::from_raw(65_534), Gid::from_raw(65_534)));
        let error = check_reachable(&inner, nobody).expect_err("not reachable");
        assert!(error.to_string().contains("not searchable"), "{error}");
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o711)).expect("chmod");
        check_reachable(&inner, nobody).expect("reachable");
        check_reachable(&inner, None).expect("no account, no check");
        let _ = fs::remove_dir_all(&dir);
    }
}
