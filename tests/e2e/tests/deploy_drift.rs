//! No drift between the code and its deployment: docker-compose.yml and the Helm chart
//! (deploy/k8s/lomash, with each of its value sets) run every service, on its own port and
//! database, with every environment variable that service needs outside a developer machine.
//!
//! The list comes from the config structs, never from a hand-written table: each service's
//! `config()` is run once as in development to learn what it reads, then as in production
//! (`ENVIRONMENT=production`) to learn what it refuses to start without. A variable must be
//! deployed when it is a secret or required in production, or when its default only works on a
//! developer's machine (it points at 127.0.0.1). Adding such a variable without deploying it
//! fails here. Secrets must come from Secret references in the chart, never from plain values.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use service_kit::Service;
use service_kit::config::VarSpec;

/// What the deployment must know about one service.
struct Deployable {
    name: &'static str,
    port: u16,
    database: Option<&'static str>,
    /// Every variable that must be deployed, with whether it is a secret.
    must_deploy: BTreeMap<String, bool>,
    /// Every variable the service reads.
    all: BTreeSet<String>,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

fn deployable<S: Service>() -> Deployable {
    // Development: everything the service reads.
    let env = service_kit::Env::from_pairs::<&str, &str>([]);
    S::config(&env).unwrap_or_else(|e| panic!("{} has no valid defaults: {e}", S::SPEC.name));
    let development = env.described();

    // Production: give every secret a stand-in (valid keys for the key pair) and add whatever
    // else production refuses to start without, until the configuration is accepted.
    let public_key = read("crates/auth-client/dev-keys/internal_ed25519.pub.pem");
    let private_key = read("crates/auth-client/dev-keys/internal_ed25519.pem");
    let stand_in = |name: &str| -> String {
        if name.contains("PUBLIC_KEY") {
            public_key.clone()
        } else if name.contains("PRIVATE_KEY") {
            private_key.clone()
        } else {
            "deployment-value".to_owned()
        }
    };
    let mut pairs: BTreeMap<String, String> =
        BTreeMap::from([("ENVIRONMENT".to_owned(), "production".to_owned())]);
    for var in development.iter().filter(|v| v.secret || v.required) {
        pairs.insert(var.name.clone(), stand_in(&var.name));
    }
    let mut refused = BTreeSet::new();
    let production: Vec<VarSpec> = loop {
        let env = service_kit::Env::from_pairs(pairs.clone());
        match S::config(&env) {
            Ok(_) => break env.described(),
            Err(e) => {
                assert!(
                    !pairs.contains_key(&e.variable),
                    "{}: production refuses the stand-in for {}: {e}; teach this test a valid one",
                    S::SPEC.name,
                    e.variable
                );
                refused.insert(e.variable.clone());
                pairs.insert(e.variable.clone(), stand_in(&e.variable));
            }
        }
    };

    let developer_machine_only = |v: &VarSpec| {
        v.default
            .as_deref()
            .is_some_and(|d| d.contains("127.0.0.1") || d.contains("localhost"))
    };
    let mut must_deploy = BTreeMap::new();
    for var in development.iter().chain(&production) {
        if var.secret || var.required || refused.contains(&var.name) || developer_machine_only(var)
        {
            let secret = must_deploy.get(&var.name).copied().unwrap_or(false) || var.secret;
            must_deploy.insert(var.name.clone(), secret);
        }
    }
    // Production is what marks secrets as mandatory: the deployment must say so.
    must_deploy.entry("ENVIRONMENT".to_owned()).or_insert(false);
    Deployable {
        name: S::SPEC.name,
        port: S::SPEC.default_port,
        database: S::SPEC.database,
        all: development
            .iter()
            .chain(&production)
            .map(|v| v.name.clone())
            .collect(),
        must_deploy,
    }
}

fn platform() -> Vec<Deployable> {
    vec![
        deployable::<gateway_service::GatewayService>(),
        deployable::<auth_service::AuthService>(),
        deployable::<product_service::ProductService>(),
        deployable::<order_payment_service::OrderPaymentService>(),
        deployable::<appointment_service::AppointmentService>(),
        deployable::<content_service::ContentService>(),
        deployable::<customer_service::CustomerService>(),
        deployable::<notification_service::NotificationService>(),
        deployable::<analytics_service::AnalyticsService>(),
    ]
}

#[test]
fn the_derived_lists_are_meaningful() {
    // Guards the derivation itself: if these vanish, the checks below check nothing.
    for service in platform() {
        for var in [
            "REDIS_URL",
            "AMQP_URL",
            "INTERNAL_TOKEN_PUBLIC_KEY",
            "HOST",
            "ENVIRONMENT",
        ] {
            assert!(
                service.must_deploy.contains_key(var),
                "{}: {var} not derived",
                service.name
            );
        }
        assert_eq!(
            service.must_deploy.get("REDIS_URL"),
            Some(&true),
            "{}",
            service.name
        );
        assert_eq!(
            service.must_deploy.contains_key("DATABASE_URL"),
            service.database.is_some(),
            "{}",
            service.name
        );
    }
}

// ------------------------------------------------------------------------------------------
// docker-compose.yml
// ------------------------------------------------------------------------------------------

#[test]
fn compose_runs_every_service_with_what_it_needs() {
    let compose = load_yaml(&read("docker-compose.yml")).remove(0);
    let services = compose["services"].as_object().expect("services:");
    let init_sql = read("docker/postgres/init.sql");
    let platform = platform();
    let read_anywhere: BTreeSet<&String> = platform.iter().flat_map(|s| &s.all).collect();
    let mut problems = Vec::new();
    for service in &platform {
        let name = service.name;
        let Some(composed) = services.get(name) else {
            problems.push(format!("docker-compose.yml has no service {name}"));
            continue;
        };
        if composed
            .pointer("/build/args/SERVICE")
            .and_then(Value::as_str)
            != Some(name)
        {
            problems.push(format!(
                "{name}: must build docker/Dockerfile with SERVICE={name}"
            ));
        }
        let env = composed["environment"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let value = |var: &str| env.get(var).map(scalar);
        for var in service.must_deploy.keys() {
            if !env.contains_key(var) {
                problems.push(format!("{name}: environment lacks {var}"));
            }
        }
        // Shared settings may be set on a service that ignores them, but never a name that
        // no service reads (a typo, or a setting that was removed).
        for var in env.keys() {
            if !read_anywhere.contains(var) {
                problems.push(format!("{name}: sets {var}, which no service reads"));
            }
        }
        if value("HOST").as_deref() != Some("0.0.0.0") {
            problems.push(format!("{name}: HOST must be 0.0.0.0"));
        }
        let port = service.port.to_string();
        if value("PORT").is_some_and(|p| p != port) {
            problems.push(format!("{name}: PORT is not its port {port}"));
        }
        let health = composed
            .pointer("/healthcheck/test")
            .map(Value::to_string)
            .unwrap_or_default();
        if !health.contains("/ready") {
            problems.push(format!("{name}: the healthcheck must probe /ready"));
        }
        if let Some(database) = service.database {
            let url = value("DATABASE_URL").unwrap_or_default();
            if !url.ends_with(&format!("@postgres:5432/{database}")) {
                problems.push(format!(
                    "{name}: DATABASE_URL {url} is not its database {database}"
                ));
            }
            if !init_sql.contains(&format!("CREATE DATABASE {database};")) {
                problems.push(format!(
                    "docker/postgres/init.sql does not create {database}"
                ));
            }
        }
    }
    // The gateway reaches every service by its compose name and port.
    let gateway_env = &services["gateway"]["environment"];
    for (upstream, port) in gateway_service::UPSTREAMS {
        let var = gateway_service::upstream_var(upstream);
        let expected = format!("http://{upstream}:{port}");
        if gateway_env.get(&var).map(scalar).as_deref() != Some(expected.as_str()) {
            problems.push(format!("gateway: {var} must be {expected}"));
        }
    }
    assert!(
        problems.is_empty(),
        "docker-compose.yml drifted from the code:\n{}",
        problems.join("\n")
    );
}

// ------------------------------------------------------------------------------------------
// The Helm chart
// ------------------------------------------------------------------------------------------

const CHART: &str = "deploy/k8s/lomash";

/// Helm's coalescing of a values file over the defaults: maps merge, `null` deletes a key,
/// anything else replaces.
fn coalesce(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                if v.is_null() {
                    b.remove(k);
                } else if let Some(existing) =
                    b.get_mut(k).filter(|e| e.is_object() && v.is_object())
                {
                    coalesce(existing, v);
                } else {
                    b.insert(k.clone(), v.clone());
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

fn value_sets() -> Vec<(&'static str, Value)> {
    let defaults = load_yaml(&read(&format!("{CHART}/values.yaml"))).remove(0);
    let mut sets = vec![("values.yaml", defaults.clone())];
    for file in ["values-staging.yaml", "values-production.yaml"] {
        let mut values = defaults.clone();
        coalesce(
            &mut values,
            &load_yaml(&read(&format!("{CHART}/{file}"))).remove(0),
        );
        sets.push((file, values));
    }
    sets
}

/// A service's plain env and Secret references as the chart's templates assemble them:
/// the global map, then the service's own, `null` removing an entry.
fn chart_env(values: &Value, service: &str, key: &str) -> Map<String, Value> {
    let mut merged = values["global"][key]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (k, v) in values["services"][service][key]
        .as_object()
        .into_iter()
        .flatten()
    {
        merged.insert(k.clone(), v.clone());
    }
    merged.retain(|_, v| !v.is_null());
    merged
}

#[test]
fn the_chart_deploys_every_service_with_what_it_needs() {
    let helpers = read(&format!("{CHART}/templates/_helpers.tpl"));
    for wired in [
        "$root.Values.global.env",
        "$root.Values.global.secretEnv",
        "\"PORT\"",
    ] {
        assert!(
            helpers.contains(wired),
            "templates/_helpers.tpl no longer assembles the environment from {wired}: update this test"
        );
    }
    let platform = platform();
    let read_anywhere: BTreeSet<&String> = platform.iter().flat_map(|s| &s.all).collect();
    let mut problems = Vec::new();
    for (file, values) in value_sets() {
        let chart_services: BTreeSet<&str> = values["services"]
            .as_object()
            .expect("services:")
            .keys()
            .map(String::as_str)
            .collect();
        let code_services: BTreeSet<&str> = platform.iter().map(|s| s.name).collect();
        if chart_services != code_services {
            problems.push(format!(
                "{file}: services {chart_services:?} are not the platform's {code_services:?}"
            ));
        }
        for service in &platform {
            let name = service.name;
            let block = &values["services"][name];
            if block.get("enabled") == Some(&Value::Bool(false)) {
                problems.push(format!("{file}: {name} is disabled"));
            }
            if block["port"].as_u64() != Some(u64::from(service.port)) {
                problems.push(format!(
                    "{file}: services.{name}.port must be {}",
                    service.port
                ));
            }
            let database = block["database"].as_str().filter(|d| !d.is_empty());
            if database != service.database {
                problems.push(format!(
                    "{file}: services.{name}.database is {database:?}, the service uses {:?}",
                    service.database
                ));
            }
            let plain = chart_env(&values, name, "env");
            let secret = chart_env(&values, name, "secretEnv");
            for (var, is_secret) in &service.must_deploy {
                // PORT and SHUTDOWN_GRACE_MS come from the templates themselves.
                let deployed = plain.contains_key(var) || secret.contains_key(var) || var == "PORT";
                if !deployed {
                    problems.push(format!("{file}: {name} gets no {var}"));
                }
                if *is_secret && !secret.contains_key(var) {
                    problems.push(format!(
                        "{file}: {name}: {var} is a secret and must come from secretEnv (a Secret reference)"
                    ));
                }
            }
            for (var, reference) in &secret {
                if reference["secretName"].as_str().is_none_or(str::is_empty)
                    || reference["key"].as_str().is_none_or(str::is_empty)
                {
                    problems.push(format!(
                        "{file}: {name}: secretEnv.{var} needs secretName and key"
                    ));
                }
            }
            for var in plain.keys().chain(secret.keys()) {
                if !read_anywhere.contains(var) {
                    problems.push(format!("{file}: {name} gets {var}, which no service reads"));
                }
            }
            if plain.get("ENVIRONMENT").and_then(Value::as_str) != Some("production") {
                problems.push(format!(
                    "{file}: {name} must run with ENVIRONMENT=production"
                ));
            }
            if plain.get("HOST").and_then(Value::as_str) != Some("0.0.0.0") {
                problems.push(format!("{file}: {name} must bind HOST=0.0.0.0"));
            }
        }
        // The gateway reaches every service through its Kubernetes Service.
        let gateway = chart_env(&values, "gateway", "env");
        for (upstream, port) in gateway_service::UPSTREAMS {
            let var = gateway_service::upstream_var(upstream);
            let expected = format!("http://{{{{ .Release.Name }}}}-{upstream}:{port}");
            if gateway.get(&var).and_then(Value::as_str) != Some(expected.as_str()) {
                problems.push(format!("{file}: gateway {var} must be {expected}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "the Helm chart drifted from the code:\n{}",
        problems.join("\n")
    );
}

// ------------------------------------------------------------------------------------------
// YAML → JSON (anchors resolved, merge keys applied)
// ------------------------------------------------------------------------------------------

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn load_yaml(text: &str) -> Vec<Value> {
    yaml_rust2::YamlLoader::load_from_str(text)
        .expect("valid YAML")
        .iter()
        .map(to_json)
        .collect()
}

fn to_json(yaml: &yaml_rust2::Yaml) -> Value {
    use yaml_rust2::Yaml;
    match yaml {
        Yaml::Null | Yaml::BadValue | Yaml::Alias(_) => Value::Null,
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::Real(r) => r
            .parse::<f64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(r.clone())),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Array(items) => Value::Array(items.iter().map(to_json).collect()),
        Yaml::Hash(hash) => {
            let mut map = Map::new();
            let mut merged = Vec::new();
            for (k, v) in hash {
                let key = match k {
                    Yaml::String(s) | Yaml::Real(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    _ => "null".to_owned(),
                };
                if key == "<<" {
                    match to_json(v) {
                        Value::Object(m) => merged.push(m),
                        Value::Array(list) => {
                            merged.extend(list.into_iter().filter_map(|m| match m {
                                Value::Object(m) => Some(m),
                                _ => None,
                            }))
                        }
                        _ => {}
                    }
                } else {
                    map.insert(key, to_json(v));
                }
            }
            for m in merged {
                for (k, v) in m {
                    map.entry(k).or_insert(v);
                }
            }
            Value::Object(map)
        }
    }
}
