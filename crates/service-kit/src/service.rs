//! A service is a library implementing [`Service`] plus a `main.rs` of one line:
//! `service_kit::main!(my_service::MyService);` (the allocator and `fn main`, see [`main!`]).
//!
//! The binary understands `serve` (default), `migrate`, `openapi` and `env`; tests call [`start`]
//! on `127.0.0.1:0` with their own environment and shutdown signal.

pub mod dlq;
mod workers;

use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use futures::future::BoxFuture;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;

use crate::config::{CommonConfig, ConfigError, Env, ServiceSpec};
use crate::http::{self, Shell};
use crate::metrics::{self as kit_metrics, Collector};
use crate::readiness::ReadinessCheck;
use crate::redis::Redis;

/// Work that runs beside the HTTP server (outbox relay, event consumers, schedulers) until the
/// token is cancelled; it must then finish what it holds and return.
pub type BackgroundTask = Box<dyn FnOnce(CancellationToken) -> BoxFuture<'static, ()> + Send>;

/// Boxes an async task for [`Started::tasks`].
pub fn task<F, Fut>(f: F) -> BackgroundTask
where
    F: FnOnce(CancellationToken) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Box::new(move |token| Box::pin(f(token)))
}

/// Runs `consumer` as a background task; a consumer that stops with an error is logged (the
/// service keeps serving HTTP and reports the broker in `/ready`).
pub fn consumer_task(consumer: event_bus::Consumer) -> BackgroundTask {
    task(move |token| async move {
        if let Err(error) = consumer.run(token).await {
            tracing::error!(%error, "event consumer stopped");
        }
    })
}

/// The connections every service gets before its own start-up code runs.
#[derive(Clone)]
pub struct Infra {
    /// The shared settings.
    pub config: Arc<CommonConfig>,
    /// The service's own database (absent for the gateway).
    pub db: Option<PgPool>,
    /// Redis, prefixed with the service's key prefix.
    pub redis: Redis,
    /// The event bus (absent for services without a database: no outbox, no inbox).
    pub bus: Option<event_bus::SharedBus>,
}

impl Infra {
    /// Connects Postgres (migrating it when enabled) and Redis.
    pub async fn connect(
        config: Arc<CommonConfig>,
        migrator: Option<&'static Migrator>,
    ) -> anyhow::Result<Self> {
        let db = match &config.database_url {
            Some(url) => Some(
                crate::db::connect_with_timeout(
                    url.expose(),
                    config.database_max_connections,
                    config.database_acquire_timeout,
                    migrator.filter(|_| config.run_migrations),
                )
                .await?,
            ),
            None => None,
        };
        let redis = Redis::connect(config.redis_url.expose(), &config.redis_prefix).await?;
        // Connecting is lazy: a broker that is down at start delays delivery, never start-up,
        // since every event waits in the outbox.
        let bus = match &db {
            Some(_) => Some(
                event_bus::connect(config.bus_config())
                    .await
                    .map_err(|e| anyhow::anyhow!("event bus: {e}"))?,
            ),
            None => None,
        };
        Ok(Self {
            config,
            db,
            redis,
            bus,
        })
    }

    /// The event bus; an error for services configured without one.
    pub fn bus(&self) -> anyhow::Result<event_bus::SharedBus> {
        self.bus
            .clone()
            .ok_or_else(|| anyhow::anyhow!("{} has no event bus", self.config.service.name))
    }

    /// A consumer for this service's queue, to register handlers on and return as a task with
    /// [`consumer_task`].
    pub fn consumer(&self) -> anyhow::Result<event_bus::Consumer> {
        Ok(event_bus::Consumer::new(
            self.db()?,
            self.bus()?,
            self.config.service.name,
        ))
    }

    /// The database pool; an error for services configured without one.
    pub fn db(&self) -> anyhow::Result<PgPool> {
        self.db
            .clone()
            .ok_or_else(|| anyhow::anyhow!("{} has no database", self.config.service.name))
    }

    fn checks(&self) -> Vec<ReadinessCheck> {
        let mut checks = Vec::new();
        if let Some(db) = &self.db {
            checks.push(ReadinessCheck::postgres(db.clone()));
        }
        checks.push(ReadinessCheck::redis(self.redis.clone()));
        if let Some(bus) = &self.bus {
            let bus = bus.clone();
            checks.push(ReadinessCheck::new("broker", move || {
                let bus = bus.clone();
                async move { bus.check_ready().await }
            }));
        }
        checks
    }

    fn collectors(&self) -> Vec<Collector> {
        self.db
            .iter()
            .map(|db| kit_metrics::pool_collector(self.config.service.name, db.clone()))
            .collect()
    }
}

/// What a service's start-up code hands back.
pub struct Started<S> {
    /// The state its routes need.
    pub state: S,
    /// Background work to run beside the server.
    pub tasks: Vec<BackgroundTask>,
    /// Extra `/ready` checks (peer services, the broker).
    pub checks: Vec<ReadinessCheck>,
    /// Extra gauge refreshers for `/metrics`.
    pub collectors: Vec<Collector>,
}

impl<S> Started<S> {
    /// Just the state.
    pub fn new(state: S) -> Self {
        Self {
            state,
            tasks: Vec::new(),
            checks: Vec::new(),
            collectors: Vec::new(),
        }
    }
}

/// One of the platform's services.
pub trait Service: 'static {
    /// Name, port and database.
    const SPEC: ServiceSpec;
    /// Whether the service writes domain events to its outbox: then an outbox relay runs beside
    /// it.
    const PUBLISHES_EVENTS: bool = false;
    /// Whether browsers talk to it directly (the gateway): then every response carries the
    /// browser security headers.
    const PUBLIC_FACING: bool = false;
    /// Whether every route needs a valid internal token (all services but the gateway, which is
    /// where tokens are minted).
    const REQUIRES_INTERNAL_TOKEN: bool = true;
    /// Whether HTTP is served by one thread per core, each with a single-threaded runtime (see
    /// [`CommonConfig::http_workers`]) unless `HTTP_WORKERS` says otherwise. Right for a service
    /// whose requests are short and keep no per-runtime resources but those they make on the
    /// thread (the gateway); the others serve on the main runtime, where their database and
    /// broker connections live.
    const HTTP_WORKERS_PER_CORE: bool = false;
    /// The service's configuration (containing the [`CommonConfig`]).
    type Config: Send + 'static;
    /// The state its handlers share.
    type State: Clone + Send + Sync + 'static;

    /// The embedded migrations (`sqlx::migrate!`), if the service has a database.
    fn migrator() -> Option<&'static Migrator>;
    /// Reads the configuration.
    fn config(env: &Env) -> Result<Self::Config, ConfigError>;
    /// The shared part of the configuration.
    fn common(config: &Self::Config) -> &CommonConfig;
    /// Every route with its OpenAPI description.
    fn routes() -> OpenApiRouter<Self::State>;
    /// Routes with no OpenAPI description (a proxy's fallback); none by default.
    fn extra_routes(router: Router<Self::State>) -> Router<Self::State> {
        router
    }
    /// Loads demo data into the (migrated) database for `<bin> seed [args...]`; idempotent.
    /// Services without demo data keep this default, which loads nothing.
    fn seed(db: PgPool, args: Vec<String>) -> impl Future<Output = anyhow::Result<()>> + Send {
        let _ = (db, args);
        async { Ok(()) }
    }
    /// Operational commands of this service's binary beyond the common ones (e.g. auth's
    /// `create-admin`), run against its migrated database: `Some(future)` when `command` is one.
    fn admin_command(
        command: &str,
        args: Vec<String>,
        db: PgPool,
    ) -> Option<BoxFuture<'static, anyhow::Result<()>>> {
        let _ = (command, args, db);
        None
    }
    /// Builds the state and background tasks from the connected infrastructure.
    fn start(
        config: Self::Config,
        infra: Infra,
    ) -> impl Future<Output = anyhow::Result<Started<Self::State>>> + Send;
}

/// The service's OpenAPI document, built from its routes.
pub fn openapi<S: Service>() -> utoipa::openapi::OpenApi {
    let (_, doc) = S::routes().split_for_parts();
    completed::<S>(doc)
}

/// `doc` (from the service's routes) with its title, version and the platform's additions.
fn completed<S: Service>(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    doc.info.title = format!("Lomash Wood {} service", S::SPEC.name);
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    crate::openapi::complete(&mut doc);
    doc
}

/// Every route of the service's OpenAPI document as `METHOD /path`, sorted: what route-list
/// tests pin, so an API change shows up in review.
pub fn route_list<S: Service>() -> Vec<String> {
    let doc = openapi::<S>();
    let mut routes: Vec<String> = doc
        .paths
        .paths
        .iter()
        .flat_map(|(path, item)| {
            [
                ("GET", item.get.is_some()),
                ("POST", item.post.is_some()),
                ("PUT", item.put.is_some()),
                ("PATCH", item.patch.is_some()),
                ("DELETE", item.delete.is_some()),
            ]
            .into_iter()
            .filter(|(_, present)| *present)
            .map(move |(method, _)| format!("{method} {path}"))
        })
        .collect();
    routes.sort();
    routes
}

/// A started service: its address and the means to stop it.
pub struct RunningService {
    /// Where it listens.
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningService {
    /// Asks it to stop and waits until it has.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.handle.await?
    }

    /// Waits until it stops (after its shutdown token is cancelled, or on a server error).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.handle.await?
    }

    /// Cancelling this token stops it.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }
}

/// Connects, builds and starts serving `S` on `listener`; returns once it accepts requests.
pub async fn start<S: Service>(
    config: S::Config,
    listener: TcpListener,
) -> anyhow::Result<RunningService> {
    let common = Arc::new(S::common(&config).clone());
    let infra = Infra::connect(common.clone(), S::migrator()).await?;
    let mut checks = infra.checks();
    let mut collectors = infra.collectors();
    let relay = match (S::PUBLISHES_EVENTS, &infra.db, &infra.bus) {
        (true, Some(db), Some(bus)) => Some(event_bus::Relay::new(
            db.clone(),
            bus.clone(),
            event_bus::RelaySettings::new(S::SPEC.name),
        )),
        _ => None,
    };
    let mut started = S::start(config, infra).await?;
    if let Some(relay) = relay {
        started.tasks.push(task(move |token| relay.run(token)));
    }
    checks.extend(started.checks);
    collectors.extend(started.collectors);

    let (router, doc) = S::routes().split_for_parts();
    let openapi = http::openapi_json(&completed::<S>(doc));
    let router = S::extra_routes(router).with_state(started.state);
    let app = http::wrap(
        router,
        Shell {
            service: S::SPEC.name,
            checks,
            collectors,
            openapi,
            request_timeout: common.request_timeout,
            body_limit_bytes: common.body_limit_bytes,
            cors_allowed_origins: common.cors_allowed_origins.clone(),
            internal_keys: S::REQUIRES_INTERNAL_TOKEN.then(|| common.internal_keys.clone()),
            security_headers: S::PUBLIC_FACING,
        },
    );
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let http_workers = common.http_workers.unwrap_or(if S::HTTP_WORKERS_PER_CORE {
        std::thread::available_parallelism().map_or(1, usize::from)
    } else {
        0
    });
    let handle = tokio::spawn(serve(
        listener,
        app,
        started.tasks,
        shutdown.clone(),
        Serving {
            service: S::SPEC.name,
            http_workers,
            grace: common.shutdown_grace,
        },
    ));
    tracing::info!(service = S::SPEC.name, %addr, "listening");
    Ok(RunningService {
        addr,
        shutdown,
        handle,
    })
}

/// How [`serve`] serves.
#[derive(Debug, Clone, Copy)]
pub struct Serving {
    /// Service name (names the worker threads).
    pub service: &'static str,
    /// Threads of their own serving HTTP (see [`CommonConfig::http_workers`]); 0 serves on the
    /// current runtime.
    pub http_workers: usize,
    /// How long in-flight requests and the tasks get to finish once shutdown starts.
    pub grace: Duration,
}

/// Serves `app` and runs `tasks` until `shutdown` is cancelled; then stops accepting, lets
/// in-flight requests and the tasks finish within the grace period, and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tasks: Vec<BackgroundTask>,
    shutdown: CancellationToken,
    serving: Serving,
) -> anyhow::Result<()> {
    let mut running = JoinSet::new();
    for task in tasks {
        running.spawn(task(shutdown.child_token()));
    }
    let deadline = if serving.http_workers == 0 {
        serve_here(listener, app, &shutdown, serving.grace).await?
    } else {
        workers::serve(listener, app, &shutdown, serving).await?
    };
    while !running.is_empty() {
        if tokio::time::timeout_at(deadline, running.join_next())
            .await
            .is_err()
        {
            tracing::warn!("background tasks outlived the grace period");
            running.abort_all();
            break;
        }
    }
    Ok(())
}

/// Serves on the current runtime until `shutdown`, then drains within `grace`; returns the
/// deadline the background tasks have left.
async fn serve_here(
    listener: TcpListener,
    app: Router,
    shutdown: &CancellationToken,
    grace: Duration,
) -> anyhow::Result<tokio::time::Instant> {
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.clone().cancelled_owned());
    let mut server = tokio::spawn(server.into_future());
    tokio::select! {
        // Shutdown first: the server stops soon after it, and that is no error.
        biased;
        () = shutdown.cancelled() => {
            tracing::info!("shutting down: draining in-flight requests and tasks");
            let deadline = tokio::time::Instant::now() + grace;
            if tokio::time::timeout_at(deadline, &mut server).await.is_err() {
                tracing::warn!("in-flight requests outlived the grace period");
                server.abort();
            }
            Ok(deadline)
        }
        result = &mut server => {
            // The server stopped on its own: an error; stop the tasks too.
            shutdown.cancel();
            result??;
            Ok(tokio::time::Instant::now() + grace)
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn termination_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

const USAGE: &str =
    "usage: <service> [serve|migrate|seed|dlq|healthcheck|openapi|env|<service command>]
  serve    run the service (default)
  healthcheck  exit 0 when this service's /ready answers 200 on its port (container probes)
  dlq list             list the messages in this service's dead-letter queue
  dlq replay [EVENT] --actor WHO
                       send them (or the one with event id EVENT) back to its queue; WHO is
                       your staff user id or an operator handle, recorded in the audit trail
  migrate  apply this service's database migrations and exit
  seed     migrate, then load demo data (idempotent); extra arguments go to the seeder
  openapi  print the OpenAPI document and exit
  env      list the environment variables this service reads";

/// Asks the local instance's `/ready` (for container health checks in images without a shell
/// or curl): exit 0 on 200, 1 otherwise, within about two seconds.
fn healthcheck<S: Service>() -> ExitCode {
    use std::io::{Read, Write};
    let config = match S::config(&Env::from_process()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("configuration error: {error}");
            return ExitCode::from(78);
        }
    };
    let port = S::common(&config).port;
    let timeout = Duration::from_secs(2);
    let answer = (|| -> std::io::Result<String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.write_all(b"GET /ready HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
        let mut head = [0u8; 16];
        let read = stream.read(&mut head)?;
        Ok(String::from_utf8_lossy(&head[..read]).into_owned())
    })();
    match answer {
        Ok(line) if line.starts_with("HTTP/1.0 200") || line.starts_with("HTTP/1.1 200") => {
            ExitCode::SUCCESS
        }
        Ok(line) => {
            eprintln!("not ready: {}", line.lines().next().unwrap_or_default());
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("no answer on port {port}: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `dlq list` and `dlq replay [EVENT_ID] --actor <who>` for this service's dead-letter queue
/// (see [`dlq`]); a replay is audited in the service's database.
async fn dead_letter_command(common: &CommonConfig, args: Vec<String>) -> anyhow::Result<()> {
    let bus = event_bus::connect(common.bus_config()).await?;
    let pool = match &common.database_url {
        Some(url) => Some(crate::db::connect(url.expose(), 2, None).await?),
        None => None,
    };
    let result = dlq::run(&*bus, pool.as_ref(), common.service.name, &args).await;
    if let Some(pool) = pool {
        pool.close().await;
    }
    print!("{}", result?);
    Ok(())
}

/// The allocator every service binary installs (through [`main!`]). glibc's malloc gave each
/// thread that allocated its own arena and kept what they freed: per-thread memory stayed
/// resident at idle, and malloc/free took ~19% of the gateway's CPU under load.
#[doc(hidden)]
pub use mimalloc::MiMalloc as Allocator;

/// Returns the pages freed so far to the OS at once. mimalloc hands freed pages back only after
/// a delay, on later allocator activity, which an idle service never has: what start-up built
/// and dropped (the OpenAPI document above all, ~28 bytes of heap per byte of its JSON) stayed
/// resident, 13 MB of content's heap at idle where 5 MB is live.
#[allow(unsafe_code)]
fn release_freed_memory() {
    // SAFETY: `mi_collect` takes no arguments that could dangle and may be called from any
    // thread at any time; it releases only pages that hold no live allocation.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

/// A service binary's whole `main.rs`: `service_kit::main!(product_service::ProductService);`
/// installs the platform's global allocator ([`Allocator`]) and runs [`main`] for the service.
/// (A global allocator can only be chosen by the binary, hence a macro rather than a function.)
#[macro_export]
macro_rules! main {
    ($service:ty) => {
        #[global_allocator]
        static ALLOCATOR: $crate::service::Allocator = $crate::service::Allocator;

        fn main() -> ::std::process::ExitCode {
            $crate::main::<$service>()
        }
    };
}

/// The whole of a service's `main` (what [`main!`] calls).
pub fn main<S: Service>() -> ExitCode {
    let command = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "serve".to_owned());
    match command.as_str() {
        "openapi" => {
            match serde_json::to_string_pretty(&openapi::<S>()) {
                Ok(json) => println!("{json}"),
                Err(e) => {
                    eprintln!("cannot render the OpenAPI document: {e}");
                    return ExitCode::FAILURE;
                }
            }
            return ExitCode::SUCCESS;
        }
        "env" => {
            let env = Env::from_pairs::<&str, &str>([]);
            let _ = S::config(&env);
            for var in env.described() {
                let default = match (&var.default, var.secret) {
                    (_, true) => " (secret)".to_owned(),
                    (Some(d), false) if !d.is_empty() => format!(" (default: {d})"),
                    _ => String::new(),
                };
                println!("{}{default}\n    {}", var.name, var.help);
            }
            return ExitCode::SUCCESS;
        }
        "serve" | "migrate" | "seed" | "dlq" => {}
        "healthcheck" => return healthcheck::<S>(),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {}
    }

    let config = match S::config(&Env::from_process()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{}-service: configuration error: {error}", S::SPEC.name);
            return ExitCode::from(78);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let common = S::common(&config).clone();
        let _telemetry = crate::telemetry::init(
            S::SPEC.name,
            common.log_format,
            &common.log_level,
            common.otlp_endpoint.as_deref(),
        )?;
        if command == "migrate" {
            let (Some(url), Some(migrator)) = (&common.database_url, S::migrator()) else {
                println!("{} has no database to migrate", S::SPEC.name);
                return Ok(());
            };
            crate::db::migrate(url.expose(), migrator).await?;
            tracing::info!(service = S::SPEC.name, "migrations applied");
            return Ok(());
        }
        if command == "dlq" {
            return dead_letter_command(&common, std::env::args().skip(2).collect()).await;
        }
        if command != "serve" && command != "seed" {
            let Some(url) = &common.database_url else {
                anyhow::bail!("unknown command `{command}`\n{USAGE}");
            };
            let pool = crate::db::connect(url.expose(), 2, S::migrator()).await?;
            let args = std::env::args().skip(2).collect();
            let Some(run) = S::admin_command(&command, args, pool.clone()) else {
                anyhow::bail!("unknown command `{command}`\n{USAGE}");
            };
            let result = run.await;
            pool.close().await;
            return result;
        }
        if command == "seed" {
            let Some(url) = &common.database_url else {
                println!("{} has no database to seed", S::SPEC.name);
                return Ok(());
            };
            let pool = crate::db::connect(url.expose(), 4, S::migrator()).await?;
            S::seed(pool.clone(), std::env::args().skip(2).collect()).await?;
            pool.close().await;
            tracing::info!(service = S::SPEC.name, "seeded");
            return Ok(());
        }
        let listener = TcpListener::bind(common.bind_addr())
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", common.bind_addr()))?;
        let running = start::<S>(config, listener).await?;
        release_freed_memory();
        let token = running.shutdown_token();
        tokio::spawn(async move {
            termination_signal().await;
            token.cancel();
        });
        running.wait().await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "stopped with an error");
            eprintln!("{}-service: {error:#}", S::SPEC.name);
            ExitCode::FAILURE
        }
    }
}
