//! Typed configuration read once from environment variables.
//!
//! Every setting goes through an [`Env`] reader, which remembers the variables it was asked for.
//! That record is how `<service> env` prints the variables a service understands, and how the
//! deployment files are checked against the code: the list is derived from the config structs,
//! never written by hand.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

/// A configuration value that is wrong, naming the variable that holds it.
#[derive(Debug, thiserror::Error)]
#[error("invalid value for environment variable {variable}: {reason}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub variable: String,
    /// Why its value was refused.
    pub reason: String,
}

/// A variable a service understands, as recorded by [`Env`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarSpec {
    /// Environment variable name, e.g. `DATABASE_URL`.
    pub name: String,
    /// The compiled-in default, if any (`None` for optional settings and secrets).
    pub default: Option<String>,
    /// What the variable does.
    pub help: &'static str,
    /// Whether the value must never be printed.
    pub secret: bool,
    /// Whether the service refuses to start without it.
    pub required: bool,
}

/// A secret value that never prints: `Debug` and `Display` show `[redacted]`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Self(value)
    }
    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Reads typed settings from a snapshot of the environment.
pub struct Env {
    values: HashMap<String, String>,
    asked: Mutex<Vec<VarSpec>>,
}

/// The variable that marks a production deployment: there, secrets have no development defaults.
pub const ENVIRONMENT_VAR: &str = "ENVIRONMENT";

impl Env {
    /// A snapshot of this process's environment.
    pub fn from_process() -> Self {
        Self::from_pairs(std::env::vars())
    }

    /// An environment made of the given pairs (tests, and listing variables with none set).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            values: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            asked: Mutex::new(Vec::new()),
        }
    }

    fn record(&self, spec: VarSpec) {
        let mut asked = self.asked.lock().unwrap_or_else(|e| e.into_inner());
        if !asked.iter().any(|s| s.name == spec.name) {
            asked.push(spec);
        }
    }

    fn raw(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    fn parse<T>(&self, name: &str, raw: &str) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        raw.parse::<T>().map_err(|e| ConfigError {
            variable: name.to_owned(),
            reason: format!("{e} (got {raw:?})"),
        })
    }

    /// A setting with a compiled-in default.
    pub fn get<T>(&self, name: &str, default: T, help: &'static str) -> Result<T, ConfigError>
    where
        T: FromStr + fmt::Display,
        T::Err: fmt::Display,
    {
        self.record(VarSpec {
            name: name.to_owned(),
            default: Some(default.to_string()),
            help,
            secret: false,
            required: false,
        });
        match self.raw(name) {
            Some(raw) => self.parse(name, raw),
            None => Ok(default),
        }
    }

    /// A setting that may be absent.
    pub fn optional<T>(&self, name: &str, help: &'static str) -> Result<Option<T>, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        self.record(VarSpec {
            name: name.to_owned(),
            default: None,
            help,
            secret: false,
            required: false,
        });
        self.raw(name).map(|raw| self.parse(name, raw)).transpose()
    }

    /// Whether `ENVIRONMENT=production`.
    pub fn is_production(&self) -> bool {
        self.raw(ENVIRONMENT_VAR)
            .is_some_and(|v| v.eq_ignore_ascii_case("production"))
    }

    /// A secret with a development default: the value never appears in logs or listings, and in
    /// production (`ENVIRONMENT=production`) it must be set.
    pub fn secret_or(
        &self,
        name: &str,
        dev_default: &str,
        help: &'static str,
    ) -> Result<Secret<String>, ConfigError> {
        self.record(VarSpec {
            name: name.to_owned(),
            default: None,
            help,
            secret: true,
            required: self.is_production(),
        });
        match self.raw(name) {
            Some(value) => Ok(Secret(value.to_owned())),
            None if self.is_production() => Err(ConfigError {
                variable: name.to_owned(),
                reason: "must be set when ENVIRONMENT=production".to_owned(),
            }),
            None => Ok(Secret(dev_default.to_owned())),
        }
    }

    /// A secret that may be absent (never printed).
    pub fn optional_secret(
        &self,
        name: &str,
        help: &'static str,
    ) -> Result<Option<Secret<String>>, ConfigError> {
        self.record(VarSpec {
            name: name.to_owned(),
            default: None,
            help,
            secret: true,
            required: false,
        });
        Ok(self.raw(name).map(|v| Secret(v.to_owned())))
    }

    /// A duration given in milliseconds.
    pub fn millis(
        &self,
        name: &str,
        default: Duration,
        help: &'static str,
    ) -> Result<Duration, ConfigError> {
        let ms: u64 = self.get(name, default.as_millis() as u64, help)?;
        Ok(Duration::from_millis(ms))
    }

    /// A comma-separated list; empty when unset.
    pub fn list(&self, name: &str, help: &'static str) -> Result<Vec<String>, ConfigError> {
        self.record(VarSpec {
            name: name.to_owned(),
            default: Some(String::new()),
            help,
            secret: false,
            required: false,
        });
        Ok(self
            .raw(name)
            .map(|raw| {
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Every variable asked for so far, in the order first asked.
    pub fn described(&self) -> Vec<VarSpec> {
        self.asked.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable, coloured when a terminal.
    Pretty,
    /// One JSON object a line (production).
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "pretty" | "text" => Ok(Self::Pretty),
            "json" => Ok(Self::Json),
            other => Err(format!("expected `pretty` or `json`, not `{other}`")),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pretty => "pretty",
            Self::Json => "json",
        })
    }
}

/// Which message broker carries domain events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventBusKind {
    /// RabbitMQ over AMQP 0.9.1 (the default).
    RabbitMq,
    /// Amazon SQS (or a compatible server).
    Sqs,
}

impl FromStr for EventBusKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "rabbitmq" | "amqp" => Ok(Self::RabbitMq),
            "sqs" => Ok(Self::Sqs),
            other => Err(format!("expected `rabbitmq` or `sqs`, not `{other}`")),
        }
    }
}

impl fmt::Display for EventBusKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::RabbitMq => "rabbitmq",
            Self::Sqs => "sqs",
        })
    }
}

/// What a service is: its name, default port and database.
#[derive(Debug, Clone, Copy)]
pub struct ServiceSpec {
    /// Short name, e.g. `product`; also the default Redis key prefix and broker queue name.
    pub name: &'static str,
    /// Port it listens on by default (3000–3008).
    pub default_port: u16,
    /// Its own Postgres database, if it has one (the gateway has none).
    pub database: Option<&'static str>,
}

/// The settings every service shares.
#[derive(Debug, Clone)]
pub struct CommonConfig {
    /// Which service this is.
    pub service: ServiceSpec,
    /// Address to bind.
    pub host: String,
    /// Port to listen on.
    pub port: u16,
    /// Postgres connection string (absent for services without a database).
    pub database_url: Option<Secret<String>>,
    /// Upper bound of pooled Postgres connections.
    pub database_max_connections: u32,
    /// Longest wait for a pooled connection before a request fails.
    pub database_acquire_timeout: Duration,
    /// Apply embedded migrations at start.
    pub run_migrations: bool,
    /// Redis connection string.
    pub redis_url: Secret<String>,
    /// Prefix of every Redis key this service writes (`<prefix>:<entity>:<id>`).
    pub redis_prefix: String,
    /// Which broker carries events.
    pub event_bus: EventBusKind,
    /// AMQP connection string.
    pub amqp_url: Secret<String>,
    /// Name of the topic exchange.
    pub event_exchange: String,
    /// Prefix for this service's queue names (tests isolate themselves with it).
    pub event_queue_prefix: String,
    /// When set, RabbitMQ deletes a quorum queue that has gone unused this long (`x-expires`).
    /// Tests set it so their throwaway queues clean themselves up; production leaves it unset.
    pub event_queue_expiry: Option<Duration>,
    /// Deliveries of one event before it is dead-lettered.
    pub event_delivery_limit: u32,
    /// Longest wait for the broker to confirm a publish.
    pub event_publish_timeout: Duration,
    /// Events this service's consumer handles at once (`ConsumerSettings::concurrency`; each
    /// holds a pooled database connection while it runs). At least 1.
    pub event_consumer_concurrency: u16,
    /// Unacknowledged events the broker hands the consumer at a time
    /// (`ConsumerSettings::prefetch`; raised to the concurrency when smaller). At least 1.
    pub event_consumer_prefetch: u16,
    /// SQS endpoint override (local servers); `None` uses AWS.
    pub sqs_endpoint: Option<String>,
    /// AWS region for SQS.
    pub aws_region: String,
    /// Log output format.
    pub log_format: LogFormat,
    /// Log filter directives (`RUST_LOG` syntax).
    pub log_level: String,
    /// OTLP/HTTP collector endpoint; tracing export is off when unset.
    pub otlp_endpoint: Option<String>,
    /// Longest time a request may take before a 503.
    pub request_timeout: Duration,
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// Origins allowed by CORS; none when empty.
    pub cors_allowed_origins: Vec<String>,
    /// Keys that verify (and, where held, mint) internal tokens.
    pub internal_keys: auth_client::InternalKeys,
    /// How long shutdown waits for in-flight work.
    pub shutdown_grace: Duration,
    /// Threads that serve HTTP, each running a single-threaded runtime of its own and accepting
    /// from the one listening socket (`HTTP_WORKERS`); `None` leaves the choice to the service
    /// ([`crate::Service::HTTP_WORKERS_PER_CORE`]), `Some(0)` serves on the main runtime.
    pub http_workers: Option<usize>,
    /// Circuit breaking and retries of this service's calls to its peers (`PEER_BREAKER_*`,
    /// `PEER_RETRY_*`; see [`crate::breaker::ResilienceConfig::from_env`]), applied by
    /// [`crate::PeerClient::for_service`].
    pub peer_resilience: crate::breaker::ResilienceConfig,
}

impl CommonConfig {
    /// Reads the shared settings for `service` from `env`.
    pub fn from_env(service: ServiceSpec, env: &Env) -> Result<Self, ConfigError> {
        let database_url = match service.database {
            Some(db) => Some(env.secret_or(
                "DATABASE_URL",
                &format!("postgres://postgres@127.0.0.1:5432/{db}"),
                "Postgres connection string of this service's own database",
            )?),
            None => None,
        };
        let _ = env.get(
            ENVIRONMENT_VAR,
            "development".to_owned(),
            "development or production (production refuses development secrets)",
        )?;
        let public_key = env.secret_or(
            "INTERNAL_TOKEN_PUBLIC_KEY",
            auth_client::DEV_PUBLIC_KEY_PEM,
            "Ed25519 public key (PEM) verifying internal tokens",
        )?;
        // Only the gateway and services that call peers mint; in production the others run
        // without the private key, so it is optional there.
        let private_key = if env.is_production() {
            env.optional_secret(
                "INTERNAL_TOKEN_PRIVATE_KEY",
                "Ed25519 private key (PEM) minting internal tokens (gateway, and services calling peers)",
            )?
        } else {
            Some(env.secret_or(
                "INTERNAL_TOKEN_PRIVATE_KEY",
                auth_client::DEV_PRIVATE_KEY_PEM,
                "Ed25519 private key (PEM) minting internal tokens (gateway, and services calling peers)",
            )?)
        };
        let internal_ttl: i64 = env.get(
            "INTERNAL_TOKEN_TTL_SECS",
            60,
            "Lifetime of minted internal tokens, in seconds",
        )?;
        let internal_keys = auth_client::InternalKeys::from_pem(
            &public_key.expose().replace("\\n", "\n"),
            private_key
                .as_ref()
                .map(|k| k.expose().replace("\\n", "\n"))
                .as_deref(),
            internal_ttl,
        )
        .map_err(|e| ConfigError {
            variable: "INTERNAL_TOKEN_PUBLIC_KEY / INTERNAL_TOKEN_PRIVATE_KEY".to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            internal_keys,
            service,
            host: env.get("HOST", "127.0.0.1".to_owned(), "Address to bind")?,
            port: env.get("PORT", service.default_port, "Port to listen on")?,
            database_url,
            database_max_connections: if service.database.is_some() {
                env.get(
                    "DATABASE_MAX_CONNECTIONS",
                    10u32,
                    "Upper bound of pooled Postgres connections",
                )?
            } else {
                0
            },
            database_acquire_timeout: if service.database.is_some() {
                env.millis(
                    "DATABASE_ACQUIRE_TIMEOUT_MS",
                    crate::db::DEFAULT_ACQUIRE_TIMEOUT,
                    "Longest wait for a pooled Postgres connection, in milliseconds",
                )?
            } else {
                crate::db::DEFAULT_ACQUIRE_TIMEOUT
            },
            run_migrations: service.database.is_some()
                && env.get(
                    "RUN_MIGRATIONS",
                    true,
                    "Apply embedded migrations at start (true/false)",
                )?,
            redis_url: env.secret_or(
                "REDIS_URL",
                "redis://127.0.0.1:6379",
                "Redis connection string",
            )?,
            redis_prefix: env.get(
                "REDIS_KEY_PREFIX",
                service.name.to_owned(),
                "Prefix of every Redis key this service writes",
            )?,
            event_bus: env.get(
                "EVENT_BUS",
                EventBusKind::RabbitMq,
                "Event broker: rabbitmq or sqs",
            )?,
            amqp_url: env.secret_or(
                "AMQP_URL",
                "amqp://guest:guest@127.0.0.1:5672/%2f",
                "RabbitMQ connection string",
            )?,
            event_exchange: env.get(
                "EVENT_EXCHANGE",
                "lomash.events".to_owned(),
                "Topic exchange carrying domain events",
            )?,
            event_queue_prefix: env.get(
                "EVENT_QUEUE_PREFIX",
                String::new(),
                "Prefix for this service's queue names",
            )?,
            event_queue_expiry: env
                .optional::<u64>(
                    "EVENT_QUEUE_EXPIRY_MS",
                    "Delete an unused event queue after this many milliseconds (tests only; unset in production)",
                )?
                .map(Duration::from_millis),
            event_delivery_limit: env.get(
                "EVENT_DELIVERY_LIMIT",
                5u32,
                "Deliveries of one event before it is dead-lettered",
            )?,
            event_publish_timeout: env.millis(
                "EVENT_PUBLISH_TIMEOUT_MS",
                Duration::from_secs(5),
                "Longest wait for the broker to confirm a publish, in milliseconds",
            )?,
            event_consumer_concurrency: at_least_one(
                env,
                "EVENT_CONSUMER_CONCURRENCY",
                event_bus::ConsumerSettings::default().concurrency,
                "Events the consumer handles at once, each holding a database connection (1-65535)",
            )?,
            event_consumer_prefetch: at_least_one(
                env,
                "EVENT_CONSUMER_PREFETCH",
                event_bus::ConsumerSettings::default().prefetch,
                "Unacknowledged events the broker hands the consumer at a time; raised to the concurrency when smaller (1-65535)",
            )?,
            sqs_endpoint: env.optional(
                "AWS_ENDPOINT_URL",
                "AWS endpoint override (a local AWS-compatible server)",
            )?,
            aws_region: env.get("AWS_REGION", "eu-west-2".to_owned(), "AWS region")?,
            log_format: env.get(
                "LOG_FORMAT",
                LogFormat::Pretty,
                "Log format: pretty or json",
            )?,
            log_level: env.get(
                "LOG_LEVEL",
                "info".to_owned(),
                "Log filter (RUST_LOG syntax), e.g. info,sqlx=warn",
            )?,
            otlp_endpoint: env.optional(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "OTLP/HTTP collector endpoint; trace export is off when unset",
            )?,
            request_timeout: env.millis(
                "REQUEST_TIMEOUT_MS",
                Duration::from_secs(30),
                "Longest time a request may take, in milliseconds",
            )?,
            body_limit_bytes: env.get(
                "BODY_LIMIT_BYTES",
                1024 * 1024,
                "Largest request body accepted, in bytes",
            )?,
            cors_allowed_origins: env.list(
                "CORS_ALLOWED_ORIGINS",
                "Comma-separated origins allowed by CORS",
            )?,
            shutdown_grace: env.millis(
                "SHUTDOWN_GRACE_MS",
                Duration::from_secs(20),
                "How long shutdown waits for in-flight work, in milliseconds",
            )?,
            http_workers: env.optional(
                "HTTP_WORKERS",
                "Threads serving HTTP, each with a single-threaded runtime, sharing the listening socket (0: serve on the main runtime; default: one per core for the gateway, 0 for the others)",
            )?,
            peer_resilience: crate::breaker::ResilienceConfig::from_env(env, "PEER_")?,
        })
    }

    /// The socket address to bind.
    pub fn bind_addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The event-bus settings: broker, names, and the SQS topic → queues routing table derived
    /// from every service's subscriptions.
    pub fn bus_config(&self) -> event_bus::BusConfig {
        let defaults = event_bus::BusConfig::default();
        let mut routes = std::collections::BTreeMap::<String, Vec<String>>::new();
        for (service, topics) in shared_types::topics::SUBSCRIPTIONS {
            for topic in *topics {
                routes
                    .entry((*topic).to_owned())
                    .or_default()
                    .push((*service).to_owned());
            }
        }
        event_bus::BusConfig {
            backend: match self.event_bus {
                EventBusKind::RabbitMq => event_bus::BackendKind::RabbitMq,
                EventBusKind::Sqs => event_bus::BackendKind::Sqs,
            },
            amqp_url: self.amqp_url.expose().clone(),
            exchange: self.event_exchange.clone(),
            queue_prefix: self.event_queue_prefix.clone(),
            queue_expiry: self.event_queue_expiry,
            sqs: event_bus::SqsConfig {
                endpoint_url: self.sqs_endpoint.clone(),
                region: self.aws_region.clone(),
                routes,
                ..event_bus::SqsConfig::default()
            },
            publish_timeout: self.event_publish_timeout,
            consumer: event_bus::ConsumerSettings {
                delivery_limit: self.event_delivery_limit,
                concurrency: self.event_consumer_concurrency,
                prefetch: self.event_consumer_prefetch,
                ..defaults.consumer.clone()
            },
            ..defaults
        }
    }
}

/// A count of which 0 makes no sense (a consumer that takes nothing would stall silently).
fn at_least_one(
    env: &Env,
    name: &str,
    default: u16,
    help: &'static str,
) -> Result<u16, ConfigError> {
    match env.get(name, default, help)? {
        0 => Err(ConfigError {
            variable: name.to_owned(),
            reason: "must be at least 1 (got \"0\")".to_owned(),
        }),
        value => Ok(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRODUCT: ServiceSpec = ServiceSpec {
        name: "product",
        default_port: 3002,
        database: Some("lomash_products"),
    };

    #[test]
    fn defaults_point_at_local_infrastructure() {
        let config = CommonConfig::from_env(PRODUCT, &Env::from_pairs::<&str, &str>([]))
            .expect("defaults are valid");
        assert_eq!(config.port, 3002);
        assert_eq!(
            config.database_url.as_ref().map(|s| s.expose().as_str()),
            Some("postgres://postgres@127.0.0.1:5432/lomash_products")
        );
        assert_eq!(config.redis_prefix, "product");
        assert_eq!(config.log_format, LogFormat::Pretty);
        assert!(config.run_migrations);
    }

    #[test]
    fn a_bad_port_names_the_variable() {
        let err = CommonConfig::from_env(PRODUCT, &Env::from_pairs([("PORT", "eighty")]))
            .expect_err("PORT must be a number");
        assert_eq!(err.variable, "PORT");
        assert!(err.to_string().contains("PORT"), "{err}");
        assert!(err.to_string().contains("eighty"), "{err}");
    }

    #[test]
    fn a_bad_enum_names_the_variable_and_the_choices() {
        let err = CommonConfig::from_env(PRODUCT, &Env::from_pairs([("LOG_FORMAT", "xml")]))
            .expect_err("xml is not a log format");
        assert_eq!(err.variable, "LOG_FORMAT");
        assert!(err.reason.contains("pretty"), "{err}");
    }

    #[test]
    fn consumer_concurrency_and_prefetch_come_from_the_environment() {
        let defaults = event_bus::ConsumerSettings::default();
        let config =
            CommonConfig::from_env(PRODUCT, &Env::from_pairs::<&str, &str>([])).expect("defaults");
        let consumer = config.bus_config().consumer;
        assert_eq!(consumer.concurrency, defaults.concurrency);
        assert_eq!(consumer.prefetch, defaults.prefetch);

        let config = CommonConfig::from_env(
            PRODUCT,
            &Env::from_pairs([
                ("EVENT_CONSUMER_CONCURRENCY", " 12 "),
                ("EVENT_CONSUMER_PREFETCH", "48"),
                ("EVENT_DELIVERY_LIMIT", "7"),
            ]),
        )
        .expect("valid values");
        let consumer = config.bus_config().consumer;
        assert_eq!(
            (
                consumer.concurrency,
                consumer.prefetch,
                consumer.delivery_limit
            ),
            (12, 48, 7)
        );
        assert_eq!(consumer.retry_backoff, defaults.retry_backoff);
    }

    #[test]
    fn peer_breaker_and_retry_settings_come_from_the_environment() {
        let config =
            CommonConfig::from_env(PRODUCT, &Env::from_pairs::<&str, &str>([])).expect("defaults");
        assert_eq!(
            config.peer_resilience,
            crate::breaker::ResilienceConfig::default()
        );
        let config = CommonConfig::from_env(
            PRODUCT,
            &Env::from_pairs([
                ("PEER_BREAKER_FAILURES", "2"),
                ("PEER_BREAKER_COOL_DOWN_MS", "1500"),
                ("PEER_RETRY_MAX", "0"),
                ("PEER_RETRY_BUDGET_PERCENT", "5"),
            ]),
        )
        .expect("valid values");
        let resilience = &config.peer_resilience;
        assert_eq!(resilience.breaker.consecutive_failures, 2);
        assert_eq!(resilience.breaker.cool_down, Duration::from_millis(1500));
        assert_eq!(resilience.retry.max_retries, 0);
        assert_eq!(resilience.retry.budget_percent, 5);
        for (name, value) in [
            ("PEER_BREAKER_HALF_OPEN_PROBES", "0"),
            ("PEER_BREAKER_FAILURE_RATE_PERCENT", "150"),
            ("PEER_RETRY_BACKOFF_MS", "soon"),
        ] {
            let err = CommonConfig::from_env(PRODUCT, &Env::from_pairs([(name, value)]))
                .expect_err("value is invalid");
            assert_eq!(err.variable, name, "{value}");
        }
    }

    #[test]
    fn bad_consumer_settings_name_their_variables() {
        for (name, value, why) in [
            ("EVENT_CONSUMER_CONCURRENCY", "0", "at least 1"),
            ("EVENT_CONSUMER_CONCURRENCY", "-2", "-2"),
            ("EVENT_CONSUMER_CONCURRENCY", "four", "four"),
            ("EVENT_CONSUMER_CONCURRENCY", "70000", "70000"),
            ("EVENT_CONSUMER_PREFETCH", "0", "at least 1"),
            ("EVENT_CONSUMER_PREFETCH", "1.5", "1.5"),
        ] {
            let err = CommonConfig::from_env(PRODUCT, &Env::from_pairs([(name, value)]))
                .expect_err("value is invalid");
            assert_eq!(err.variable, name, "{value}");
            assert!(err.reason.contains(why), "{value}: {err}");
        }
    }

    #[test]
    fn bad_booleans_and_durations_name_their_variables() {
        for (name, value) in [
            ("RUN_MIGRATIONS", "perhaps"),
            ("REQUEST_TIMEOUT_MS", "-5"),
            ("BODY_LIMIT_BYTES", "1MB"),
            ("EVENT_BUS", "kafka"),
        ] {
            let err = CommonConfig::from_env(PRODUCT, &Env::from_pairs([(name, value)]))
                .expect_err("value is invalid");
            assert_eq!(err.variable, name);
        }
    }

    #[test]
    fn set_values_override_defaults() {
        let env = Env::from_pairs([
            ("PORT", "4100"),
            ("LOG_FORMAT", "json"),
            (
                "CORS_ALLOWED_ORIGINS",
                "https://a.example, https://b.example",
            ),
            ("REQUEST_TIMEOUT_MS", "2500"),
        ]);
        let config = CommonConfig::from_env(PRODUCT, &env).expect("valid");
        assert_eq!(config.port, 4100);
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(
            config.cors_allowed_origins,
            vec!["https://a.example", "https://b.example"]
        );
        assert_eq!(config.request_timeout, Duration::from_millis(2500));
    }

    #[test]
    fn production_refuses_development_secrets() {
        let err =
            CommonConfig::from_env(PRODUCT, &Env::from_pairs([("ENVIRONMENT", "production")]))
                .expect_err("no secrets set");
        assert_eq!(err.variable, "DATABASE_URL");
        assert!(err.reason.contains("production"), "{err}");
    }

    #[test]
    fn a_malformed_internal_key_names_the_variable() {
        let err = CommonConfig::from_env(
            PRODUCT,
            &Env::from_pairs([("INTERNAL_TOKEN_PUBLIC_KEY", "not a pem")]),
        )
        .expect_err("bad key");
        assert!(err.variable.contains("INTERNAL_TOKEN_PUBLIC_KEY"), "{err}");
    }

    #[test]
    fn secrets_never_print() {
        let env = Env::from_pairs([("DATABASE_URL", "postgres://u:hunter2@db/x")]);
        let config = CommonConfig::from_env(PRODUCT, &env).expect("valid");
        let printed = format!("{config:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
    }

    #[test]
    fn the_variables_read_are_listed() {
        let env = Env::from_pairs::<&str, &str>([]);
        CommonConfig::from_env(PRODUCT, &env).expect("valid");
        let names: Vec<String> = env.described().into_iter().map(|v| v.name).collect();
        for expected in [
            "PORT",
            "DATABASE_URL",
            "REDIS_URL",
            "AMQP_URL",
            "LOG_FORMAT",
        ] {
            assert!(names.iter().any(|n| n == expected), "{expected} missing");
        }
        let gateway = ServiceSpec {
            name: "gateway",
            default_port: 3000,
            database: None,
        };
        let env = Env::from_pairs::<&str, &str>([]);
        CommonConfig::from_env(gateway, &env).expect("valid");
        assert!(!env.described().iter().any(|v| v.name == "DATABASE_URL"));
    }
}
