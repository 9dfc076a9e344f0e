//! The gateway: the one door of the platform. It routes public paths to the services and
//! reports whether they are all up.

use std::time::Duration;

use service_kit::config::{CommonConfig, ConfigError, Env, ServiceSpec};
use service_kit::readiness::ReadinessCheck;
use service_kit::{Infra, Service, Started};
use service_kit::Migrator;
use utoipa_axum::router::OpenApiRouter;

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
    /// Shared settings.
    pub common: CommonConfig,
    /// Where each service listens.
    pub upstreams: Vec<Upstream>,
}

/// The environment variable holding a service's base URL: `UPSTREAM_ORDER_PAYMENT_URL`.
pub fn upstream_var(name: &str) -> String {
    format!("UPSTREAM_{}_URL", name.to_ascii_uppercase().replace('-', "_"))
}

/// What the gateway's handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Pooled keep-alive client for upstream calls.
    pub client: reqwest::Client,
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
    type Config = Config;
    type State = AppState;

    fn migrator() -> Option<&'static Migrator> {
        None
    }

    fn config(env: &Env) -> Result<Config, ConfigError> {
        let common = CommonConfig::from_env(Self::SPEC, env)?;
        let upstreams = UPSTREAMS
            .iter()
            .map(|(name, port)| {
                let url: String = env.get(
                    &upstream_var(name),
                    format!("http://127.0.0.1:{port}"),
                    "Base URL of a service behind the gateway",
                )?;
                Ok(Upstream {
                    name,
                    url: url.trim_end_matches('/').to_owned(),
                })
            })
            .collect::<Result<_, ConfigError>>()?;
        Ok(Config { common, upstreams })
    }

    fn common(config: &Config) -> &CommonConfig {
        &config.common
    }

    fn routes() -> OpenApiRouter<AppState> {
        OpenApiRouter::new()
    }

    async fn start(config: Config, _infra: Infra) -> anyhow::Result<Started<AppState>> {
        let client = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(2))
            .build()?;
        let mut started = Started::new(AppState {
            client: client.clone(),
        });
        // The platform is ready when every service behind the gateway is.
        for upstream in config.upstreams {
            let client = client.clone();
            let url = format!("{}/ready", upstream.url);
            started.checks.push(ReadinessCheck::new(upstream.name, move || {
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
