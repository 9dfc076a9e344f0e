//! `cargo xtask fuzz-api [--examples N] [--short] [--seed S]`: schemathesis against the
//! gateway's merged OpenAPI document (`/docs/openapi.json`), on a platform of its own.
//!
//! The platform is the one `up` starts — the same binaries and the same environment from
//! [`Service::env`] — moved aside so it never meets a running dev platform: every service and
//! stripe-fake listen on free ports, each database is a `lomash_fuzz_*` twin dropped and
//! recreated on every run, Redis keys carry a prefix of this run, and events go over an exchange
//! and queues of their own. Products and appointment slots are seeded (`<bin> seed`); then an
//! administrator is created (`auth-service create-admin`), enrols in two-factor sign-in and signs
//! in with a recovery code, and a customer registers and signs in, all through the gateway.
//!
//! schemathesis (PyPI, pinned, installed into `target/fuzz/venv`) then runs every phase
//! (examples, coverage, fuzzing, stateful) with every check, once as the customer and once as the
//! administrator. The gateway's rate limits are raised by configuration so the run reaches the
//! handlers instead of stopping at 429; nothing is excluded (`fuzz_expectations.toml` names the
//! few operations where a schema-valid request may rightly get 422, and why: a secret, a row
//! that must exist, stored state). The summary counts operations, test cases and failures by
//! check; any failure exits non-zero, with the reports (JUnit, and a pytest file reproducing
//! each failure) in `target/fuzz/<role>/`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use console::style;
use nix::sys::signal::Signal;
use serde_json::{Value, json};

use crate::commands::{check_interrupted, stripe};
use crate::infra::{self, Ports};
use crate::proc::{self, Finished, Managed, stop_all, tail};
use crate::services::{GATEWAY, SERVICES, Service, upstream_var};
use crate::ui::ui;
use crate::workspace::Workspace;
use crate::{Interrupted, http, pg, signals};

/// The schemathesis release the run is written against (its CLI changes between versions).
const SCHEMATHESIS: &str = "schemathesis==4.32.5";
/// Test cases per operation and phase in a full run, unless `--examples` says otherwise.
const FULL_EXAMPLES: u32 = 20;
/// ... and in `--short` (CI).
const SHORT_EXAMPLES: u32 = 2;
/// The seed of `--short`, so CI runs the same cases every time; a full run draws one.
const SHORT_SEED: u64 = 20_261_205;
/// The administrator and the customer the run signs in as.
const ADMIN_EMAIL: &str = "fuzz-admin@example.com";
const CUSTOMER_EMAIL: &str = "fuzz-customer@example.com";
/// Passes the password policy (length, not common, not containing the name or email).
const PASSWORD: &str = "Walnut-Shaker-Larder-2026";
/// Far above what a fuzz run sends, so every request reaches its handler.
const RAISED_LIMIT: &str = "1000000/60s";
/// Long enough for a full run of either pass.
const ACCESS_TOKEN_TTL_SECS: &str = "14400";
/// Auth's failed-password thresholds for the fuzz platform. The fuzzer calls every operation
/// that checks the signed-in user's password (`change-password`, `2fa/disable`, account
/// deletion) with generated passwords, as that user; at the default of five, the account locks
/// (30 s, doubling) and the run's own sign-ins are refused for the rest of it. Throttling has
/// its own tests; this run is about the schemas.
const RAISED_FAILURES: &str = "1000000";

/// Options of `fuzz-api`.
pub struct FuzzOptions {
    /// Test cases per operation (per phase); default by `short`.
    pub examples: Option<u32>,
    /// The quick CI pass: few examples, a fixed seed.
    pub short: bool,
    /// Hypothesis seed, for reproducing a run.
    pub seed: Option<u64>,
    /// Use the debug binaries as they are (CI has just built them; while iterating on a fix,
    /// build only the package you changed).
    pub no_build: bool,
}

/// A signed-in user and what the schemathesis hook needs to sign them in again.
struct Identity {
    role: &'static str,
    email: &'static str,
    token: String,
    /// The administrator's authenticator secret, the recovery codes left, and the last time step
    /// whose code was used (codes are single use).
    totp_secret: Option<String>,
    recovery_codes: Vec<String>,
    last_step: u64,
}

/// The schemathesis hook that keeps the run's session alive (see the file).
const AUTH_HOOK: &str = include_str!("fuzz_auth.py");
/// The operations where a schema-valid request may rightly be refused with 422, and why (see
/// the file).
const EXPECTATIONS: &str = include_str!("fuzz_expectations.toml");

/// Where one run's processes listen and what they share.
struct Plan {
    ports: BTreeMap<&'static str, u16>,
    stripe_port: u16,
    redis_prefix: String,
    dir: PathBuf,
    python: PathBuf,
}

impl Plan {
    fn port(&self, service: &str) -> u16 {
        self.ports[service]
    }

    fn url(&self, service: &str) -> String {
        format!("http://127.0.0.1:{}", self.port(service))
    }

    fn gateway(&self) -> u16 {
        self.port(GATEWAY)
    }

    fn log(&self, name: &str) -> PathBuf {
        self.dir.join("logs").join(format!("{name}.log"))
    }
}

/// `lomash_auth` → `lomash_fuzz_auth`.
fn fuzz_database(database: &str) -> String {
    match database.strip_prefix("lomash_") {
        Some(rest) => format!("lomash_fuzz_{rest}"),
        None => format!("fuzz_{database}"),
    }
}

/// Free TCP ports on 127.0.0.1, `count` distinct ones (held together while chosen).
fn free_ports(count: usize) -> Result<Vec<u16>> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<std::io::Result<_>>()
        .context("cannot find free ports on 127.0.0.1")?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

/// The environment `service` runs with: `up`'s, moved onto this run's ports, databases, Redis
/// prefix and event names.
fn service_env(service: &Service, plan: &Plan, ports: &Ports) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = service
        .env(ports)
        .into_iter()
        .filter(|(key, _)| key != "PORT" && key != "DATABASE_URL" && !key.starts_with("UPSTREAM_"))
        .collect();
    let gateway = plan.url(GATEWAY);
    let mut set = |key: &str, value: String| env.push((key.to_owned(), value));
    set("PORT", plan.port(service.name).to_string());
    if let Some(database) = service.database {
        set("DATABASE_URL", ports.database_url(&fuzz_database(database)));
    }
    if service.name == GATEWAY {
        for upstream in SERVICES.iter().filter(|s| s.name != GATEWAY) {
            set(&upstream_var(upstream.name), plan.url(upstream.name));
        }
        for limit in [
            "DEFAULT_IP",
            "DEFAULT_USER",
            "REGISTER",
            "LOGIN",
            "OTP",
            "TRACK",
        ] {
            set(&format!("RATE_LIMIT_{limit}"), RAISED_LIMIT.to_owned());
        }
    }
    if service.name == "auth" {
        set("LOGIN_MAX_FAILURES", RAISED_FAILURES.to_owned());
        set("LOGIN_IP_MAX_FAILURES", RAISED_FAILURES.to_owned());
    }
    set(
        "REDIS_KEY_PREFIX",
        format!("{}:{}", plan.redis_prefix, service.name),
    );
    set("SESSION_KEY_PREFIX", format!("{}:auth", plan.redis_prefix));
    set("EVENT_EXCHANGE", "fuzz.events".to_owned());
    set("EVENT_QUEUE_PREFIX", "fuzz.".to_owned());
    set("ACCESS_TOKEN_TTL_SECS", ACCESS_TOKEN_TTL_SECS.to_owned());
    set("PRODUCT_SERVICE_URL", plan.url("product"));
    set("CONTENT_SERVICE_URL", plan.url("content"));
    set("CDN_BASE_URL", gateway.clone());
    set("WEB_BASE_URL", gateway.clone());
    set("PUBLIC_API_URL", gateway.clone());
    set(
        "INVOICE_URL_TEMPLATE",
        format!("{gateway}/v1/invoices/{{invoiceNumber}}"),
    );
    set(
        "MEDIA_LOCAL_DIR",
        plan.dir.join("media").to_string_lossy().into_owned(),
    );
    env
}

/// Runs `fuzz-api`.
pub fn run(ports: Ports, options: &FuzzOptions) -> Result<ExitCode> {
    signals::install()?;
    let ws = Workspace::load()?;
    let missing: Vec<&str> = SERVICES
        .iter()
        .filter(|s| !ws.has_service(s))
        .map(|s| s.name)
        .collect();
    if !missing.is_empty() {
        bail!(
            "fuzz-api needs all nine services; missing: {}",
            missing.join(", ")
        );
    }
    let examples = options.examples.unwrap_or(if options.short {
        SHORT_EXAMPLES
    } else {
        FULL_EXAMPLES
    });
    let seed = options.seed.unwrap_or(if options.short {
        SHORT_SEED
    } else {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_secs())
    });
    let dir = ws.target_dir.join("fuzz");
    fs::create_dir_all(dir.join("logs"))?;
    let st = ensure_schemathesis(&ws, &dir)?;
    check_interrupted()?;

    let mut infra = infra::ensure(&ws, ports)?;
    check_interrupted()?;
    if !options.no_build {
        ws.build_bins(false)?;
        check_interrupted()?;
    }

    let chosen = free_ports(SERVICES.len() + 1)?;
    let plan = Plan {
        ports: SERVICES
            .iter()
            .map(|s| s.name)
            .zip(chosen.iter().copied())
            .collect(),
        stripe_port: chosen[SERVICES.len()],
        redis_prefix: format!("fuzz-{}-{}", std::process::id(), seed),
        dir: dir.clone(),
        python: st.with_file_name("python"),
    };
    reset_databases(&ports)?;
    let mut children = Vec::new();
    let outcome = (|| -> Result<ExitCode> {
        let secret = stripe::local_webhook_secret(&ws.root)?;
        children.push(start_stripe_fake(&ws, &plan, &secret)?);
        seed_data(&ws, &plan, &ports)?;
        check_interrupted()?;
        start_services(&ws, &plan, &ports, &secret, &mut children)?;
        wait_ready(&plan, &mut children)?;
        let admin = admin_token(&ws, &plan, &ports)?;
        let customer = customer_token(&plan)?;
        let spec = fetch_spec(&plan)?;
        let operations = count_operations(&spec);
        ui().info(format!(
            "{operations} operations in the merged document; {examples} examples per operation \
             and phase, seed {seed}"
        ));
        let hook = plan.dir.join("auth_hook.py");
        fs::write(&hook, AUTH_HOOK)?;
        let expectations = plan.dir.join("expectations.toml");
        fs::write(&expectations, EXPECTATIONS)?;
        let mut passes = Vec::new();
        for identity in [&customer, &admin] {
            check_interrupted()?;
            passes.push(run_pass(
                &st,
                &plan,
                &Hooks {
                    auth: &hook,
                    expectations: &expectations,
                },
                identity,
                &secret,
                examples,
                seed,
            )?);
        }
        Ok(report(operations, &passes, &plan))
    })();
    let step = ui().step("stopping the fuzz platform");
    stop_all(&mut children, Duration::from_secs(15));
    step.finish("stopped");
    infra.stop();
    outcome
}

/// The venv's `st`, installing the pinned schemathesis into it when it is not there yet.
fn ensure_schemathesis(ws: &Workspace, dir: &Path) -> Result<PathBuf> {
    let venv = dir.join("venv");
    let st = venv.join("bin").join("st");
    let pin = venv.join(".pinned");
    if st.exists() && fs::read_to_string(&pin).is_ok_and(|p| p == SCHEMATHESIS) {
        return Ok(st);
    }
    let python = proc::find_program("python3", &["/usr/bin/python3"])
        .context("fuzz-api needs python3 (apt-get install python3 python3-venv)")?;
    let step = ui().step(&format!(
        "installing {SCHEMATHESIS} into {}",
        ws.show(&venv)
    ));
    let log = dir.join("logs").join("pip.log");
    let mut commands = Vec::new();
    if !venv.join("bin").join("pip").exists() {
        let mut venv_cmd = Command::new(&python);
        venv_cmd.args(["-m", "venv"]).arg(&venv);
        commands.push(venv_cmd);
    }
    let mut pip = Command::new(venv.join("bin").join("pip"));
    pip.args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        SCHEMATHESIS,
    ]);
    commands.push(pip);
    for command in commands {
        match proc::run_bounded("pip", command, &log, Duration::from_secs(15 * 60), None)? {
            Finished::Exited(status) if status.success() => {}
            Finished::Interrupted => bail!(Interrupted),
            _ => {
                step.fail("failed");
                bail!(
                    "step `schemathesis`: installing failed; log {}:\n{}",
                    ws.show(&log),
                    tail(&log, 20)
                );
            }
        }
    }
    fs::write(&pin, SCHEMATHESIS)?;
    step.finish("installed");
    Ok(st)
}

/// Drops and recreates the `lomash_fuzz_*` databases, so every run starts from the seed alone.
fn reset_databases(ports: &Ports) -> Result<()> {
    let step = ui().step("fuzz databases");
    let names: Vec<String> = SERVICES
        .iter()
        .filter_map(|s| s.database)
        .map(fuzz_database)
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    pg::drop_databases(ports.postgres, "postgres", &names)
        .and_then(|()| pg::ensure_databases(ports.postgres, "postgres", &names))
        .context("step `databases`")?;
    step.finish(format!("{} fresh lomash_fuzz_* databases", names.len()));
    Ok(())
}

fn start_stripe_fake(ws: &Workspace, plan: &Plan, secret: &str) -> Result<Managed> {
    let webhook = format!("{}/v1/webhooks/stripe", plan.url(GATEWAY));
    let mut command = Command::new(ws.bin_path("stripe-fake", false));
    command
        .args(["serve", "--port", &plan.stripe_port.to_string()])
        .args(["--webhook-url", &webhook, "--webhook-secret", secret])
        .current_dir(&ws.root);
    let log = plan.log("stripe-fake");
    let mut managed = Managed::spawn("stripe-fake", command, &log, None, Signal::SIGTERM)?;
    let started = Instant::now();
    while !http::port_open(plan.stripe_port) {
        if let Some(status) = managed.exited() {
            bail!(
                "stripe-fake exited ({status}); log {}:\n{}",
                ws.show(&log),
                tail(&log, 20)
            );
        }
        if started.elapsed() > Duration::from_secs(10) {
            bail!(
                "stripe-fake is not listening after 10 s; log {}",
                ws.show(&log)
            );
        }
        thread::sleep(Duration::from_millis(100));
    }
    Ok(managed)
}

/// Runs `<bin> <args>` for `service` with this run's environment, to completion.
fn run_service_command(
    ws: &Workspace,
    plan: &Plan,
    ports: &Ports,
    service: &Service,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<String> {
    let name = format!("{}-{}", service.name, args.join("-"));
    let log = plan.log(&name);
    let mut command = Command::new(ws.bin_path(&service.binary(), false));
    command
        .args(args)
        .envs(service_env(service, plan, ports))
        .envs(env.iter().copied())
        .current_dir(&ws.root);
    match proc::run_bounded(&name, command, &log, Duration::from_secs(300), None)? {
        Finished::Exited(status) if status.success() => Ok(fs::read_to_string(&log)?),
        Finished::Interrupted => bail!(Interrupted),
        _ => bail!(
            "`{} {}` failed; log {}:\n{}",
            service.binary(),
            args.join(" "),
            ws.show(&log),
            tail(&log, 20)
        ),
    }
}

/// The services with demo data (products, showrooms and slots) load it; `seed` migrates first.
fn seed_data(ws: &Workspace, plan: &Plan, ports: &Ports) -> Result<()> {
    let step = ui().step("seeding demo data");
    for service in SERVICES.iter().filter(|s| s.database.is_some()) {
        // Every service answers `seed` (those without demo data only migrate).
        run_service_command(ws, plan, ports, service, &["seed"], &[])?;
    }
    step.finish("seeded");
    Ok(())
}

fn start_services(
    ws: &Workspace,
    plan: &Plan,
    ports: &Ports,
    secret: &str,
    children: &mut Vec<Managed>,
) -> Result<()> {
    let stripe_env = [
        (
            "STRIPE_API_BASE".to_owned(),
            format!("http://127.0.0.1:{}/", plan.stripe_port),
        ),
        ("STRIPE_WEBHOOK_SECRET".to_owned(), secret.to_owned()),
    ];
    for service in SERVICES {
        let mut command = Command::new(ws.bin_path(&service.binary(), false));
        command
            .arg("serve")
            .envs(service_env(service, plan, ports))
            .current_dir(&ws.root);
        if service.name == "order-payment" {
            command.envs(stripe_env.iter().cloned());
        }
        children.push(Managed::spawn(
            service.name,
            command,
            &plan.log(service.name),
            None,
            Signal::SIGTERM,
        )?);
    }
    Ok(())
}

fn wait_ready(plan: &Plan, children: &mut [Managed]) -> Result<()> {
    let step = ui().bar("waiting for /ready", SERVICES.len() as u64);
    let started = Instant::now();
    let mut ready: Vec<&str> = Vec::new();
    while ready.len() < SERVICES.len() {
        if signals::interrupted() {
            step.fail("interrupted");
            bail!(Interrupted);
        }
        for child in children.iter_mut() {
            if let Some(status) = child.exited() {
                step.fail(format!("{} exited", child.name));
                bail!(
                    "{} exited ({status}) before it was ready; log {}:\n{}",
                    child.name,
                    child.log.display(),
                    tail(&child.log, 25)
                );
            }
        }
        for service in SERVICES {
            if !ready.contains(&service.name)
                && matches!(
                    http::get_status(plan.port(service.name), "/ready", Duration::from_secs(2)),
                    Ok(200)
                )
            {
                ready.push(service.name);
                step.inc(1);
            }
        }
        if started.elapsed() > Duration::from_secs(180) {
            step.fail("timed out");
            let pending: Vec<&str> = SERVICES
                .iter()
                .map(|s| s.name)
                .filter(|n| !ready.contains(n))
                .collect();
            bail!("not ready after 180 s: {}", pending.join(", "));
        }
        thread::sleep(Duration::from_millis(250));
    }
    step.finish(format!("{} services ready", ready.len()));
    Ok(())
}

/// One HTTP exchange with the gateway: the status and the body parsed as JSON (`Null` when empty
/// or not JSON). HTTP/1.0, so the answer is never chunked and ends when the connection closes.
fn call(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Result<(u16, Value)> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))
        .with_context(|| format!("nothing listens on 127.0.0.1:{port}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let payload = body.map(Value::to_string).unwrap_or_default();
    let mut request = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: xtask-fuzz\r\n\
         Accept: application/json\r\nContent-Length: {}\r\n",
        payload.len()
    );
    if body.is_some() {
        request.push_str("Content-Type: application/json\r\n");
    }
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(&payload);
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("{method} {path}: not an HTTP response: {head:?}"))?;
    Ok((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}

/// `call`, insisting on a 2xx.
fn call_ok(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Result<Value> {
    let (status, answer) = call(port, method, path, token, body)?;
    if !(200..300).contains(&status) {
        bail!("{method} {path} answered {status}: {answer}");
    }
    Ok(answer)
}

fn string_at<'a>(value: &'a Value, pointer: &str) -> Result<&'a str> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .with_context(|| format!("no {pointer} in {value}"))
}

/// A SUPER_ADMIN with two-factor sign-in, signed in with both factors: `create-admin`, sign in
/// with the password, enrol (setup, confirm with the current code), then sign in again and
/// answer the challenge with a recovery code (the current code was just used; codes are single
/// use).
fn admin_token(ws: &Workspace, plan: &Plan, ports: &Ports) -> Result<Identity> {
    let step = ui().step("signing in an administrator (two-factor)");
    let auth = SERVICES
        .iter()
        .find(|s| s.name == "auth")
        .context("no auth service")?;
    run_service_command(
        ws,
        plan,
        ports,
        auth,
        &["create-admin", ADMIN_EMAIL],
        &[("ADMIN_PASSWORD", PASSWORD)],
    )?;
    let gateway = plan.gateway();
    let credentials = json!({"email": ADMIN_EMAIL, "password": PASSWORD});
    let first = call_ok(gateway, "POST", "/v1/auth/login", None, Some(&credentials))?;
    let first_token = string_at(&first, "/accessToken")?;
    let setup = call_ok(
        gateway,
        "POST",
        "/v1/auth/2fa/setup",
        Some(first_token),
        None,
    )?;
    let secret = string_at(&setup, "/secret")?;
    let code = totp(&plan.python, secret, None)?;
    let last_step = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        / 30;
    let confirmed = call_ok(
        gateway,
        "POST",
        "/v1/auth/2fa/confirm",
        Some(first_token),
        Some(&json!({"code": code})),
    )?;
    let mut recovery_codes: Vec<String> = confirmed
        .get("recoveryCodes")
        .and_then(Value::as_array)
        .map(|codes| {
            codes
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if recovery_codes.is_empty() {
        bail!("POST /v1/auth/2fa/confirm answered no recovery codes: {confirmed}");
    }
    let recovery = recovery_codes.remove(0);
    let challenge = call_ok(gateway, "POST", "/v1/auth/login", None, Some(&credentials))?;
    let challenge_id = string_at(&challenge, "/challengeId")?;
    let verified = call_ok(
        gateway,
        "POST",
        "/v1/auth/2fa/verify",
        None,
        Some(&json!({"challengeId": challenge_id, "code": recovery.as_str()})),
    )?;
    let token = string_at(&verified, "/accessToken")?.to_owned();
    step.finish(format!(
        "{ADMIN_EMAIL} (SUPER_ADMIN, password and recovery code)"
    ));
    Ok(Identity {
        role: "admin",
        email: ADMIN_EMAIL,
        token,
        totp_secret: Some(secret.to_owned()),
        recovery_codes,
        // The code just used may still be accepted in the next step (one step of skew) and is
        // refused as a replay anyway: the hook starts after it.
        last_step: last_step + 1,
    })
}

/// A customer registered and signed in through the gateway.
fn customer_token(plan: &Plan) -> Result<Identity> {
    let step = ui().step("registering a customer");
    let gateway = plan.gateway();
    call_ok(
        gateway,
        "POST",
        "/v1/auth/register",
        None,
        Some(&json!({
            "email": CUSTOMER_EMAIL,
            "password": PASSWORD,
            "firstName": "Fuzz",
            "lastName": "Customer",
        })),
    )?;
    let login = call_ok(
        gateway,
        "POST",
        "/v1/auth/login",
        None,
        Some(&json!({"email": CUSTOMER_EMAIL, "password": PASSWORD})),
    )?;
    let token = string_at(&login, "/accessToken")?.to_owned();
    step.finish(CUSTOMER_EMAIL);
    Ok(Identity {
        role: "customer",
        email: CUSTOMER_EMAIL,
        token,
        totp_secret: None,
        recovery_codes: Vec::new(),
        last_step: 0,
    })
}

/// RFC 6238 (HMAC-SHA1, six digits, 30 s steps) in Python's standard library: the venv's
/// interpreter is here anyway, and xtask stays free of crypto crates.
const TOTP_PY: &str = "import base64,hashlib,hmac,struct,sys,time
secret=sys.argv[1]
key=base64.b32decode(secret+'='*(-len(secret)%8),casefold=True)
at=int(sys.argv[2]) if len(sys.argv)>2 else int(time.time())
mac=hmac.new(key,struct.pack('>Q',at//30),hashlib.sha1).digest()
o=mac[-1]&15
print('%06d'%((struct.unpack('>I',mac[o:o+4])[0]&0x7fffffff)%1000000))";

/// The code an authenticator shows for the base32 `secret` at `unix_time` (now when `None`).
fn totp(python: &Path, secret: &str, unix_time: Option<u64>) -> Result<String> {
    let mut command = Command::new(python);
    command.args(["-c", TOTP_PY, secret]);
    if let Some(at) = unix_time {
        command.arg(at.to_string());
    }
    let output = command
        .output()
        .context("cannot run python for the TOTP code")?;
    let code = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !output.status.success() || code.len() != 6 {
        bail!(
            "cannot compute the TOTP code: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(code)
}

/// Fetches the merged document and keeps a copy beside the reports.
fn fetch_spec(plan: &Plan) -> Result<Value> {
    let (status, spec) = call(plan.gateway(), "GET", "/docs/openapi.json", None, None)?;
    if status != 200 || !spec.is_object() {
        bail!("GET /docs/openapi.json answered {status}");
    }
    if let Some(missing) = spec.get("x-unavailable-services") {
        bail!("the merged document lacks services: {missing}");
    }
    fs::write(
        plan.dir.join("openapi.json"),
        serde_json::to_string_pretty(&spec)?,
    )?;
    Ok(spec)
}

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn count_operations(spec: &Value) -> usize {
    spec.get("paths")
        .and_then(Value::as_object)
        .map_or(0, |paths| {
            paths
                .values()
                .filter_map(Value::as_object)
                .map(|item| {
                    item.keys()
                        .filter(|k| METHODS.contains(&k.as_str()))
                        .count()
                })
                .sum()
        })
}

/// One distinct failure: the check, the operation, and what went wrong.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Failure {
    check: String,
    operation: String,
    title: String,
}

/// What one schemathesis run found in its ndjson event stream.
#[derive(Debug, Default)]
struct Findings {
    /// Test cases generated and sent, over every phase.
    test_cases: u64,
    /// Distinct failures (schemathesis reports each failing case, shrunk or not; the same
    /// check failing the same way on the same operation is one failure here).
    failures: BTreeSet<Failure>,
    /// Errors that are not check failures (e.g. a case that could not be generated or sent).
    errors: BTreeSet<String>,
}

impl Findings {
    fn by_check(&self) -> BTreeMap<&str, usize> {
        let mut counts = BTreeMap::new();
        for failure in &self.failures {
            *counts.entry(failure.check.as_str()).or_default() += 1;
        }
        counts
    }

    /// Adds one ndjson event.
    fn add(&mut self, event: &Value) {
        if let Some(error) = event.get("NonFatalError") {
            let label = error.get("label").and_then(Value::as_str).unwrap_or("?");
            let message = error
                .pointer("/info/message")
                .or_else(|| error.pointer("/value/message"))
                .and_then(Value::as_str)
                .unwrap_or("?");
            self.errors.insert(format!("{label}: {message}"));
            return;
        }
        let Some(finished) = event.get("ScenarioFinished") else {
            return;
        };
        let label = finished.get("label").and_then(Value::as_str).unwrap_or("?");
        if let Some(cases) = finished
            .pointer("/recorder/cases")
            .and_then(Value::as_object)
        {
            self.test_cases += cases.len() as u64;
        }
        let Some(checks) = finished
            .pointer("/recorder/checks")
            .and_then(Value::as_object)
        else {
            return;
        };
        for result in checks.values().filter_map(Value::as_array).flatten() {
            if result.get("status").and_then(Value::as_str) != Some("failure") {
                continue;
            }
            let failure = result.pointer("/failure_info/failure");
            let operation = failure
                .and_then(|f| f.get("operation"))
                .and_then(Value::as_str)
                .unwrap_or(label);
            let title = failure
                .and_then(|f| f.get("title"))
                .and_then(Value::as_str)
                .unwrap_or("?");
            self.failures.insert(Failure {
                check: result
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
                    .to_owned(),
                operation: operation.to_owned(),
                title: title.to_owned(),
            });
        }
    }
}

/// One schemathesis run's outcome.
struct Pass {
    role: &'static str,
    exit: Option<i32>,
    findings: Findings,
    summary: String,
    dir: PathBuf,
}

/// The files a schemathesis run is configured with.
struct Hooks<'a> {
    /// `fuzz_auth.py`.
    auth: &'a Path,
    /// `fuzz_expectations.toml`.
    expectations: &'a Path,
}

fn run_pass(
    st: &Path,
    plan: &Plan,
    hooks: &Hooks<'_>,
    identity: &Identity,
    webhook_secret: &str,
    examples: u32,
    seed: u64,
) -> Result<Pass> {
    let role = identity.role;
    let dir = plan.dir.join(role);
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::create_dir_all(&dir)?;
    let step = ui().step(&format!("schemathesis as the {role}"));
    let log = dir.join("schemathesis.log");
    let mut command = Command::new(st);
    command
        .arg("--config-file")
        .arg(hooks.expectations)
        .arg("run")
        .arg(format!("{}/docs/openapi.json", plan.url(GATEWAY)))
        .args(["--url", &plan.url(GATEWAY)])
        .args(["--checks", "all"])
        .args(["--phases", "examples,coverage,fuzzing,stateful"])
        .args(["--max-examples", &examples.to_string()])
        .args(["--seed", &seed.to_string()])
        .args(["--workers", "2"])
        .args(["--request-timeout", "30"])
        .args(["--generation-database", "none"])
        .args(["--report", "junit,ndjson"])
        .arg("--report-dir")
        .arg(&dir)
        .args(["--no-color", "--output-truncate", "false"])
        .env("SCHEMATHESIS_HOOKS", hooks.auth)
        .env("FUZZ_BASE_URL", plan.url(GATEWAY))
        .env("FUZZ_EMAIL", identity.email)
        .env("FUZZ_PASSWORD", PASSWORD)
        .env("FUZZ_TOKEN", &identity.token)
        .env(
            "FUZZ_TOTP_SECRET",
            identity.totp_secret.as_deref().unwrap_or_default(),
        )
        .env("FUZZ_RECOVERY_CODES", identity.recovery_codes.join(","))
        .env("FUZZ_TOTP_LAST_STEP", identity.last_step.to_string())
        .env("FUZZ_STRIPE_WEBHOOK_SECRET", webhook_secret)
        .current_dir(&dir);
    let finished = proc::run_bounded(
        &format!("st run ({role})"),
        command,
        &log,
        Duration::from_secs(3 * 60 * 60),
        None,
    )?;
    let exit = match finished {
        Finished::Exited(status) => status.code(),
        Finished::Interrupted => bail!(Interrupted),
        Finished::TimedOut | Finished::StartedServing => None,
    };
    let output = fs::read_to_string(&log).unwrap_or_default();
    let findings = read_events(&dir);
    let summary = summary_of(&output);
    let line = format!(
        "{} test cases, {} failures, {} errors",
        findings.test_cases,
        findings.failures.len(),
        findings.errors.len()
    );
    if exit == Some(0) && findings.failures.is_empty() {
        step.finish(line);
    } else {
        step.fail(line);
    }
    Ok(Pass {
        role,
        exit,
        findings,
        summary,
        dir,
    })
}

/// Reads every ndjson report in `dir`.
fn read_events(dir: &Path) -> Findings {
    let mut findings = Findings::default();
    let Ok(entries) = fs::read_dir(dir) else {
        return findings;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "ndjson") {
            continue;
        }
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        for line in text.lines() {
            if let Ok(event) = serde_json::from_str::<Value>(line) {
                findings.add(&event);
            }
        }
    }
    findings
}

/// The closing block of schemathesis's own output (from its `SUMMARY` rule on).
fn summary_of(output: &str) -> String {
    output
        .find("SUMMARY")
        .map(|at| output[at..].trim().to_owned())
        .unwrap_or_default()
}

fn report(operations: usize, passes: &[Pass], plan: &Plan) -> ExitCode {
    let line = "─".repeat(60);
    ui().println(style(&line).dim().to_string());
    let mut failed = false;
    for pass in passes {
        let findings = &pass.findings;
        let clean =
            pass.exit == Some(0) && findings.failures.is_empty() && findings.errors.is_empty();
        failed |= !clean;
        ui().println(format!(
            "  {} as the {}: {operations} operations, {} test cases, {} failures, {} errors{}",
            if clean {
                style("✔").green()
            } else {
                style("✘").red()
            },
            pass.role,
            findings.test_cases,
            findings.failures.len(),
            findings.errors.len(),
            match pass.exit {
                Some(code) => format!(" (schemathesis exited {code})"),
                None => " (schemathesis did not finish)".to_owned(),
            }
        ));
        for (check, count) in findings.by_check() {
            ui().println(format!("      {check}: {count}"));
        }
        for failure in &findings.failures {
            ui().println(format!(
                "      {} — {} — {}",
                failure.check, failure.operation, failure.title
            ));
        }
        for error in &findings.errors {
            ui().println(format!("      error: {error}"));
        }
        if !clean {
            ui().println(format!(
                "      reports (ndjson, junit) in {}; schemathesis's summary:",
                pass.dir.display()
            ));
            for summary_line in pass.summary.lines() {
                ui().println(format!("      │ {summary_line}"));
            }
        }
    }
    ui().println(format!(
        "  service logs in {}",
        plan.dir.join("logs").display()
    ));
    ui().println(style(&line).dim().to_string());
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzz_databases_are_twins_of_the_service_databases() {
        assert_eq!(fuzz_database("lomash_orders"), "lomash_fuzz_orders");
        assert_eq!(fuzz_database("other"), "fuzz_other");
    }

    #[test]
    fn free_ports_are_distinct() {
        let ports = free_ports(10).expect("ports");
        let mut sorted = ports.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 10);
        assert!(ports.iter().all(|p| *p != 0));
    }

    fn plan() -> Plan {
        Plan {
            ports: SERVICES.iter().map(|s| s.name).zip(41_000..).collect(),
            stripe_port: 41_100,
            redis_prefix: "fuzz-1-2".to_owned(),
            dir: PathBuf::from("/tmp/fuzz"),
            python: PathBuf::from("python3"),
        }
    }

    #[test]
    fn the_environment_moves_every_address_off_the_dev_platform() {
        let plan = plan();
        let gateway = SERVICES
            .iter()
            .find(|s| s.name == GATEWAY)
            .expect("gateway");
        let env: BTreeMap<String, String> = service_env(gateway, &plan, &Ports::default())
            .into_iter()
            .collect();
        assert_eq!(env["PORT"], "41000");
        assert_eq!(env["UPSTREAM_AUTH_URL"], "http://127.0.0.1:41001");
        assert_eq!(env["UPSTREAM_ANALYTICS_URL"], "http://127.0.0.1:41008");
        assert_eq!(env["RATE_LIMIT_LOGIN"], RAISED_LIMIT);
        assert_eq!(env["SESSION_KEY_PREFIX"], "fuzz-1-2:auth");
        assert!(!env.contains_key("DATABASE_URL"));
        assert!(
            env.values()
                .all(|v| !v.contains(":3000") && !v.contains(":3001"))
        );

        let orders = SERVICES
            .iter()
            .find(|s| s.name == "order-payment")
            .expect("orders");
        let env: BTreeMap<String, String> = service_env(orders, &plan, &Ports::default())
            .into_iter()
            .collect();
        assert_eq!(env["PORT"], "41003");
        assert_eq!(
            env["DATABASE_URL"],
            "postgres://postgres@127.0.0.1:5432/lomash_fuzz_orders"
        );
        assert_eq!(env["REDIS_KEY_PREFIX"], "fuzz-1-2:order-payment");
        assert_eq!(env["PRODUCT_SERVICE_URL"], "http://127.0.0.1:41002");
        assert_eq!(env["EVENT_EXCHANGE"], "fuzz.events");
        assert!(!env.contains_key("RATE_LIMIT_LOGIN"));
        assert!(!env.contains_key("LOGIN_MAX_FAILURES"));

        // Each key is set once: nothing of `up`'s is left behind under a duplicate.
        let keys: Vec<&String> = env.keys().collect();
        assert_eq!(
            keys.len(),
            service_env(orders, &plan, &Ports::default()).len()
        );

        let auth = SERVICES.iter().find(|s| s.name == "auth").expect("auth");
        let env: BTreeMap<String, String> = service_env(auth, &plan, &Ports::default())
            .into_iter()
            .collect();
        assert_eq!(env["LOGIN_MAX_FAILURES"], RAISED_FAILURES);
        assert_eq!(env["LOGIN_IP_MAX_FAILURES"], RAISED_FAILURES);
    }

    #[test]
    fn operations_are_counted_by_method() {
        let spec = json!({"paths": {
            "/a": {"get": {}, "post": {}, "parameters": []},
            "/b/{id}": {"delete": {}, "summary": "x"},
        }});
        assert_eq!(count_operations(&spec), 3);
        assert_eq!(count_operations(&json!({})), 0);
    }

    /// RFC 6238 appendix B, SHA-1 (six-digit codes are the last six digits of its vectors).
    #[test]
    fn totp_codes_match_the_rfc_vectors() {
        let Some(python) = proc::find_program("python3", &["/usr/bin/python3"]) else {
            eprintln!("skipped: no python3");
            return;
        };
        let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        assert_eq!(totp(&python, secret, Some(59)).expect("code"), "287082");
        assert_eq!(
            totp(&python, secret, Some(1_111_111_109)).expect("code"),
            "081804"
        );
        assert_eq!(
            totp(&python, secret, Some(2_000_000_000)).expect("code"),
            "279037"
        );
        assert_eq!(totp(&python, secret, None).expect("code").len(), 6);
        assert!(totp(&python, "not base32!", None).is_err());
    }

    #[test]
    fn findings_count_cases_and_distinct_failures() {
        let failing = |title: &str| {
            json!({"name": "response_schema_conformance", "status": "failure",
                   "failure_info": {"failure": {"operation": "GET /v1/x", "title": title}}})
        };
        let event = json!({"ScenarioFinished": {"label": "GET /v1/x", "recorder": {
            "cases": {"a": {}, "b": {}, "c": {}},
            "checks": {
                "a": [{"name": "not_a_server_error", "status": "success"}, failing("Response violates schema")],
                "b": [failing("Response violates schema")],
                "c": [failing("Undocumented Content-Type")],
            },
        }}});
        let mut findings = Findings::default();
        findings.add(&event);
        findings.add(&json!({"Initialize": {"seed": 1}}));
        findings
            .add(&json!({"NonFatalError": {"label": "POST /v1/y", "info": {"message": "boom"}}}));
        assert_eq!(findings.test_cases, 3);
        assert_eq!(findings.failures.len(), 2);
        assert_eq!(findings.by_check()["response_schema_conformance"], 2);
        findings
            .add(&json!({"NonFatalError": {"label": "POST /v1/y", "info": {"message": "boom"}}}));
        assert_eq!(findings.errors.len(), 1);
        assert!(findings.errors.contains("POST /v1/y: boom"));
    }

    #[test]
    fn the_summary_starts_at_schemathesis_rule() {
        let output = "noise\n=== SUMMARY ===\nAPI Operations: 3\n";
        assert!(summary_of(output).starts_with("SUMMARY"));
        assert_eq!(summary_of("nothing"), "");
    }
}
