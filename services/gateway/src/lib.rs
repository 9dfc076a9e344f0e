//! The gateway: the one door of the platform.
//!
//! Every request that is not one of the gateway's own endpoints (`/health`, `/ready`, `/metrics`,
//! `/openapi.json`, `/docs`) goes through [`proxy::proxy`]: matched against the route table
//! ([`routes`]), its access token verified against auth's JWKS ([`tokens`],
//! [`auth_client::jwks`]), counted and its session checked in one Redis round trip
//! ([`ratelimit`]), stripped of client-supplied identity headers, given an internal token, and
//! streamed to its service. `/ready` is ready when every service is; `/docs` documents them all.

pub mod client_ip;
pub mod docs;
pub mod internal_tokens;
pub mod mfa;
pub mod proxy;
pub mod ratelimit;
pub mod routes;
pub mod tokens;

use std::sync::Arc;
use std::time::Duration;

use auth_client::{JwksConfig, JwksVerifier};
use axum::Router;
use axum::routing::get;
use service_kit::Migrator;
use service_kit::breaker::{Breaker, ResilienceConfig, RetryBudget};
use service_kit::config::{CommonConfig, ConfigError, Env, ServiceSpec};
use service_kit::readiness::ReadinessCheck;
use service_kit::{Infra, Service, Started};
use utoipa_axum::router::OpenApiRouter;

use crate::client_ip::TrustedProxies;
use crate::docs::Docs;
use crate::internal_tokens::InternalTokens;
use crate::proxy::{UpstreamClients, UpstreamTarget};
use crate::ratelimit::{Gate, GateConfig, Limit, RateLimits};
use crate::routes::{RouteDefaults, RouteSpec, RouteTable};
use crate::tokens::TokenVerifier;

/// The services behind the gateway, as `(name, default port)`.
pub const UPSTREAMS: &[(&str, u16)] = &[
    ("auth", 3001),
    ("product", 3002),
    ("order-payment", 3003),
    ("appointment", 3004),
    ("content", 3005),
    ("customer", 3006),
    ("notification", 3007),
    ("analytics", 3008),
];

/// One service behind the gateway.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Service name.
    pub name: &'static str,
    /// Its base URL, e.g. `http://127.0.0.1:3002`.
    pub url: String,
}

/// The gateway's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Shared settings. Its body limit and request timeout are raised to the largest route's, so
    /// the shared shell never cuts a request a route allows.
    pub common: CommonConfig,
    /// Where each service listens (in [`UPSTREAMS`] order).
    pub upstreams: Vec<Upstream>,
    /// The compiled route table.
    pub routes: RouteTable,
    /// How long connecting to a service may take.
    pub connect_timeout: Duration,
    /// Where auth's keys are and how often to refresh them.
    pub jwks: JwksConfig,
    /// Auth's Redis key prefix, under which it mirrors live sessions.
    pub session_key_prefix: String,
    /// How long a live session is believed without asking Redis (≤ 1 s; 0 turns it off).
    pub session_cache: Duration,
    /// How long a Redis call may take before Redis counts as down.
    pub redis_timeout: Duration,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: TrustedProxies,
    /// The rate limits.
    pub rate_limits: RateLimits,
    /// Whether each proxied request is logged.
    pub access_log: bool,
    /// How long the merged OpenAPI document is cached.
    pub docs_cache: Duration,
    /// Circuit breaking and retries of calls to the services (`UPSTREAM_BREAKER_*`,
    /// `UPSTREAM_RETRY_*`).
    pub resilience: ResilienceConfig,
}

/// The environment variable holding a service's base URL: `UPSTREAM_ORDER_PAYMENT_URL`.
pub fn upstream_var(name: &str) -> String {
    format!(
        "UPSTREAM_{}_URL",
        name.to_ascii_uppercase().replace('-', "_")
    )
}

/// What the gateway's handlers share.
pub struct Gateway {
    pub(crate) routes: RouteTable,
    pub(crate) upstreams: Vec<UpstreamTarget>,
    /// One per upstream, in `upstreams` order.
    pub(crate) breakers: Vec<Breaker>,
    /// One per upstream, in `upstreams` order.
    pub(crate) retry_budgets: Vec<RetryBudget>,
    pub(crate) clients: UpstreamClients,
    pub(crate) tokens: TokenVerifier,
    pub(crate) gate: Gate,
    pub(crate) internal_tokens: InternalTokens,
    pub(crate) trusted_proxies: TrustedProxies,
    pub(crate) access_log: bool,
    pub(crate) route_metrics: Vec<metrics::Histogram>,
    pub(crate) docs: Docs,
}

/// The handlers' state.
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Gateway>,
}

fn config_error(variable: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        variable: variable.to_owned(),
        reason: reason.into(),
    }
}

fn read_routes_file(path: &str) -> Result<Vec<RouteSpec>, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| config_error("ROUTES_FILE", format!("cannot read {path}: {e}")))?;
    serde_json::from_str(&text).map_err(|e| {
        config_error(
            "ROUTES_FILE",
            format!("{path} is not a list of routes: {e}"),
        )
    })
}

/// The gateway service.
pub struct GatewayService;

impl Service for GatewayService {
    const SPEC: ServiceSpec = ServiceSpec {
        name: "gateway",
        default_port: 3000,
        database: None,
    };
    const REQUIRES_INTERNAL_TOKEN: bool = false;
    const PUBLIC_FACING: bool = true;
    // Nginx's shape: a connection and its upstream connection on one thread.
    const HTTP_WORKERS_PER_CORE: bool = true;
    type Config = Config;
    type State = AppState;

    fn migrator() -> Option<&'static Migrator> {
        None
    }

    fn config(env: &Env) -> Result<Config, ConfigError> {
        let mut common = CommonConfig::from_env(Self::SPEC, env)?;
        let upstreams: Vec<Upstream> = UPSTREAMS
            .iter()
            .map(|(name, port)| {
                let var = upstream_var(name);
                let url: String = env.get(
                    &var,
                    format!("http://127.0.0.1:{port}"),
                    "Base URL of a service behind the gateway",
                )?;
                let url = url.trim_end_matches('/').to_owned();
                UpstreamTarget::parse(name, &url).map_err(|e| config_error(&var, e))?;
                Ok(Upstream { name, url })
            })
            .collect::<Result<_, ConfigError>>()?;

        let timeout = env.millis(
            "UPSTREAM_TIMEOUT_MS",
            Duration::from_secs(30),
            "How long a service may take to answer (response headers), unless its route says otherwise",
        )?;
        let connect_timeout = env.millis(
            "UPSTREAM_CONNECT_TIMEOUT_MS",
            Duration::from_secs(1),
            "How long connecting to a service may take",
        )?;
        let upload_body_limit: u64 = env.get(
            "UPLOAD_BODY_LIMIT_BYTES",
            routes::UPLOAD_BODY_LIMIT,
            "Largest request body on upload routes (other routes: BODY_LIMIT_BYTES)",
        )?;
        let routes_file: Option<String> = env.optional(
            "ROUTES_FILE",
            "JSON file of route entries ({pattern, service, auth, timeoutMs, bodyLimitBytes, rateLimit}) replacing the built-in entry with the same pattern or adding new ones",
        )?;
        let overrides = match &routes_file {
            Some(path) => read_routes_file(path)?,
            None => Vec::new(),
        };
        let specs = routes::merge(routes::default_table(), overrides);
        let routes = RouteTable::compile(
            &specs,
            RouteDefaults {
                timeout,
                body_limit: common.body_limit_bytes as u64,
                upload_body_limit,
            },
        )
        .map_err(|e| config_error("ROUTES_FILE", e.to_string()))?;
        // The shared shell must not cut what a route allows.
        let largest_body = routes
            .routes()
            .iter()
            .map(|r| r.body_limit)
            .max()
            .unwrap_or(0);
        common.body_limit_bytes = common
            .body_limit_bytes
            .max(usize::try_from(largest_body).unwrap_or(usize::MAX));
        let longest = routes
            .routes()
            .iter()
            .map(|r| r.timeout)
            .max()
            .unwrap_or_default();
        common.request_timeout = common.request_timeout.max(longest + Duration::from_secs(1));

        let auth_url = upstreams
            .iter()
            .find(|u| u.name == "auth")
            .map(|u| u.url.clone())
            .unwrap_or_default();
        let jwks_url: Option<String> = env.optional(
            "JWKS_URL",
            "Where auth publishes its signing keys (default: <UPSTREAM_AUTH_URL>/.well-known/jwks.json)",
        )?;
        let mut jwks = JwksConfig::new(
            jwks_url.unwrap_or_else(|| format!("{auth_url}/.well-known/jwks.json")),
        );
        jwks.refresh_interval = Duration::from_secs(env.get(
            "JWKS_REFRESH_SECS",
            300u64,
            "How often auth's signing keys are refetched, in seconds",
        )?);
        jwks.min_refetch_interval = env.millis(
            "JWKS_MIN_REFETCH_MS",
            Duration::from_secs(5),
            "Smallest gap between key refetches triggered by unknown `kid`s, in milliseconds",
        )?;

        let session_key_prefix: String = env.get(
            "SESSION_KEY_PREFIX",
            "auth".to_owned(),
            "Auth's Redis key prefix: live sessions are <prefix>:session:<id>",
        )?;
        let session_cache = env.millis(
            "SESSION_CACHE_MS",
            Duration::from_millis(1000),
            "How long a live session is believed without asking Redis (at most 1000; 0 = always ask)",
        )?;
        if session_cache > Duration::from_secs(1) {
            return Err(config_error(
                "SESSION_CACHE_MS",
                "at most 1000: a revoked session must be refused within a second",
            ));
        }
        let redis_timeout = env.millis(
            "REDIS_TIMEOUT_MS",
            Duration::from_millis(250),
            "How long a rate-limit/session call to Redis may take before Redis counts as down",
        )?;
        let trusted_proxies = TrustedProxies::parse(&env.list(
            "TRUSTED_PROXIES",
            "Comma-separated addresses/CIDR ranges of proxies in front of the gateway whose X-Forwarded-For is believed",
        )?)
        .map_err(|e| config_error("TRUSTED_PROXIES", e))?;

        let defaults = RateLimits::default();
        let limit = |name: &str, default: Limit, help: &'static str| env.get(name, default, help);
        let rate_limits = RateLimits {
            default_ip: limit(
                "RATE_LIMIT_DEFAULT_IP",
                defaults.default_ip,
                "Requests per window per IP on general routes (anonymous callers), e.g. 600/60s",
            )?,
            default_user: limit(
                "RATE_LIMIT_DEFAULT_USER",
                defaults.default_user,
                "Requests per window per user on general routes (signed-in callers)",
            )?,
            register: limit(
                "RATE_LIMIT_REGISTER",
                defaults.register,
                "Registrations per window per IP",
            )?,
            login: limit(
                "RATE_LIMIT_LOGIN",
                defaults.login,
                "Login attempts per window per IP",
            )?,
            otp: limit(
                "RATE_LIMIT_OTP",
                defaults.otp,
                "Forgot/reset password, verify email and resend OTP requests per window per IP",
            )?,
            track: limit(
                "RATE_LIMIT_TRACK",
                defaults.track,
                "Analytics tracking requests per window per IP",
            )?,
        };
        let access_log = env.get(
            "ACCESS_LOG",
            true,
            "Log one line per proxied request (method, route, status, latency, upstream)",
        )?;
        let docs_cache = Duration::from_secs(env.get(
            "DOCS_CACHE_SECS",
            60u64,
            "How long the merged OpenAPI document behind /docs is cached, in seconds",
        )?);

        let resilience = ResilienceConfig::from_env(env, "UPSTREAM_")?;

        Ok(Config {
            common,
            upstreams,
            routes,
            connect_timeout,
            jwks,
            session_key_prefix,
            session_cache,
            redis_timeout,
            trusted_proxies,
            rate_limits,
            access_log,
            docs_cache,
            resilience,
        })
    }

    fn common(config: &Config) -> &CommonConfig {
        &config.common
    }

    fn routes() -> OpenApiRouter<AppState> {
        OpenApiRouter::new()
    }

    fn extra_routes(router: Router<AppState>) -> Router<AppState> {
        router
            .route("/docs", get(docs::redirect))
            .route("/docs/", get(docs::index))
            .route("/docs/openapi.json", get(docs::openapi))
            .route("/docs/{*file}", get(docs::asset))
            // Security headers come from service-kit's shell (PUBLIC_FACING) on every response.
            .fallback(proxy::proxy)
    }

    async fn start(config: Config, infra: Infra) -> anyhow::Result<Started<AppState>> {
        // Install the metrics recorder before registering the per-route histograms.
        let _ = service_kit::metrics::handle();
        let keys = config.common.internal_keys.clone();
        if !keys.can_mint() {
            anyhow::bail!("the gateway needs INTERNAL_TOKEN_PRIVATE_KEY to mint internal tokens");
        }

        let upstreams = config
            .upstreams
            .iter()
            .map(|u| UpstreamTarget::parse(u.name, &u.url).map_err(anyhow::Error::msg))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let breakers = upstreams
            .iter()
            .map(|u| Breaker::new(u.name, config.resilience.breaker.clone()))
            .collect();
        let retry_budgets = upstreams
            .iter()
            .map(|u| RetryBudget::new(u.name, config.resilience.retry.clone()))
            .collect();

        let jwks = JwksVerifier::new(config.jwks.clone(), Some((keys.clone(), "gateway")))?;
        let gate = Gate::new(
            infra.redis.conn(),
            GateConfig {
                key_prefix: infra.redis.prefix().to_owned(),
                session_prefix: config.session_key_prefix.clone(),
                limits: config.rate_limits,
                redis_timeout: config.redis_timeout,
                session_cache: config.session_cache,
            },
        );
        let route_metrics = config
            .routes
            .routes()
            .iter()
            .map(|route| {
                metrics::histogram!(
                    "gateway_request_duration_seconds",
                    "route" => route.pattern.clone(),
                    "upstream" => route.service
                )
            })
            .collect();

        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(2))
            .build()?;
        let docs = Docs::new(
            http.clone(),
            keys.clone(),
            config
                .upstreams
                .iter()
                .map(|u| (u.name, u.url.clone()))
                .collect(),
            config.docs_cache,
        );

        let gateway = Gateway {
            routes: config.routes.clone(),
            upstreams,
            breakers,
            retry_budgets,
            clients: UpstreamClients::new(config.connect_timeout),
            tokens: TokenVerifier::new(jwks.clone()),
            gate,
            internal_tokens: InternalTokens::new(keys),
            trusted_proxies: config.trusted_proxies.clone(),
            access_log: config.access_log,
            route_metrics,
            docs,
        };
        let inner = Arc::new(gateway);
        let watcher = inner.clone();
        let mut started = Started::new(AppState { inner });
        started
            .tasks
            .push(service_kit::task(move |shutdown| async move {
                watcher.gate.watch_redis(shutdown).await;
            }));
        started
            .tasks
            .push(service_kit::task(move |shutdown| async move {
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    () = jwks.run_refresh() => {}
                }
            }));
        // The platform is ready when every service behind the gateway is.
        for upstream in config.upstreams {
            let client = http.clone();
            let url = format!("{}/ready", upstream.url);
            started
                .checks
                .push(ReadinessCheck::new(upstream.name, move || {
                    let request = client.get(url.clone()).send();
                    async move {
                        let response = request.await.map_err(|e| e.to_string())?;
                        if response.status().is_success() {
                            Ok(())
                        } else {
                            Err(format!("answered {}", response.status()))
                        }
                    }
                }));
        }
        Ok(started)
    }
}
