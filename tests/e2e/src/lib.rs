//! The whole platform in one process, for the end-to-end suite: the nine services started with
//! the environment `cargo xtask up` gives them, on free ports, behind one gateway.
//!
//! What differs from `cargo xtask up` is only what keeps runs apart: every service gets its own
//! freshly created database and Redis key prefix, and all nine share one broker namespace (an
//! exchange and queue prefix unique to this platform) so events flow between them as they do in
//! production without meeting another test's. Stripe is the in-process `stripe-fake`; media are
//! stored in a private directory (the local backend `up` uses) and served by the gateway.
//!
//! A [`Platform`] is driven through [`Platform::gateway_url`] only; the per-service handles are
//! there to stop and restart a service mid-run.
//!
//! Logs are set up as a service's `main` sets them up (`service_kit::telemetry`, with
//! `LOG_FORMAT=json` and the default `LOG_LEVEL`), except that the lines go to memory, where
//! [`Platform::logs`] reads them: a test can follow one request through the services' logs.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use anyhow::{Context, anyhow};
use service_kit::event_bus::BusConfig;
use service_kit::telemetry::{self, TelemetryGuard};
use service_kit::{CommonConfig, Env, RunningService, Service};
use stripe_fake::FakeStripe;
use test_support::{TestDb, unique_suffix};
use tokio::net::TcpListener;

/// Starts one service on a listener from its environment (type-erased so a stopped service can be
/// started again by name).
type Launch = fn(
    HashMap<String, String>,
    TcpListener,
) -> Pin<Box<dyn Future<Output = anyhow::Result<RunningService>> + Send>>;

fn launch<S: Service>(
    env: HashMap<String, String>,
    listener: TcpListener,
) -> Pin<Box<dyn Future<Output = anyhow::Result<RunningService>> + Send>> {
    Box::pin(async move {
        let config = S::config(&Env::from_pairs(env))
            .map_err(|e| anyhow!("{} configuration is invalid: {e}", S::SPEC.name))?;
        service_kit::start::<S>(config, listener).await
    })
}

/// Everything needed to (re)start one service.
struct Slot {
    name: &'static str,
    addr: SocketAddr,
    env: HashMap<String, String>,
    db: Option<TestDb>,
    launch: Launch,
    running: Option<RunningService>,
}

/// The nine services of the platform, gateway last (it is started once its upstreams listen).
/// The same table as xtask's `services.rs`, with each service's launcher.
const SERVICES: &[(&str, bool, Launch)] = &[
    ("auth", true, launch::<auth_service::AuthService>),
    ("product", true, launch::<product_service::ProductService>),
    (
        "order-payment",
        true,
        launch::<order_payment_service::OrderPaymentService>,
    ),
    (
        "appointment",
        true,
        launch::<appointment_service::AppointmentService>,
    ),
    ("content", true, launch::<content_service::ContentService>),
    (
        "customer",
        true,
        launch::<customer_service::CustomerService>,
    ),
    (
        "notification",
        true,
        launch::<notification_service::NotificationService>,
    ),
    (
        "analytics",
        true,
        launch::<analytics_service::AnalyticsService>,
    ),
    ("gateway", false, launch::<gateway_service::GatewayService>),
];

/// The webhook signing secret order-payment is configured with (as `.env.example` documents one
/// for local runs).
pub const WEBHOOK_SECRET: &str = "whsec_e2e_platform_local_secret";

/// How often analytics flushes its buffer in the suite (production: seconds).
pub const ANALYTICS_FLUSH_MS: u64 = 200;

/// Every log line written in this process, as the services' JSON formatter wrote them.
static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// The log writer: appends to [`LOG`]. The formatter hands it one whole line per write.
struct LogSink;

impl std::io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the process's logging and tracing once, as `main` does from `common` (format and
/// level), writing to [`LOG`]. Kept for the life of the process: the services share it.
fn install_telemetry(common: &CommonConfig) -> anyhow::Result<()> {
    static GUARD: OnceLock<TelemetryGuard> = OnceLock::new();
    if GUARD.get().is_none() {
        let guard =
            telemetry::init_with_writer("e2e", common.log_format, &common.log_level, None, || {
                LogSink
            })?;
        let _ = GUARD.set(guard);
    }
    Ok(())
}

/// The whole platform, stopped (and its databases, queues and media removed) when dropped.
pub struct Platform {
    /// `http://127.0.0.1:<port>` of the gateway: the only address clients use.
    pub gateway_url: String,
    /// A client with no default headers.
    pub client: reqwest::Client,
    /// The Stripe stand-in order-payment talks to.
    pub stripe: FakeStripe,
    slots: Vec<Slot>,
    bus: Option<BusConfig>,
    media_dir: PathBuf,
}

/// `order-payment` → `UPSTREAM_ORDER_PAYMENT_URL` (the gateway's variable for an upstream).
fn upstream_var(name: &str) -> String {
    gateway_service::upstream_var(name)
}

/// The repository root (for the assets `up` reads relative to it, e.g. brochure PDFs).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

impl Platform {
    /// Starts the platform with the default suite settings.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Starts the platform; `overrides` are `(service, variable, value)` set after the defaults.
    pub async fn start_with(overrides: &[(&str, &str, &str)]) -> Self {
        Self::try_start(overrides)
            .await
            .unwrap_or_else(|e| panic!("the platform failed to start: {e:#}"))
    }

    async fn try_start(overrides: &[(&str, &str, &str)]) -> anyhow::Result<Self> {
        let suffix = unique_suffix();
        let stripe = FakeStripe::start().await?;
        let media_dir = std::env::temp_dir().join(format!("e2e-media-{suffix}"));
        std::fs::create_dir_all(&media_dir)?;

        // Every port first: services are told each other's addresses.
        let mut listeners = HashMap::new();
        let mut addrs = HashMap::new();
        for (name, _, _) in SERVICES {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            addrs.insert(*name, listener.local_addr()?);
            listeners.insert(*name, listener);
        }
        let url = |name: &str| format!("http://{}", addrs[name]);
        let gateway_url = url("gateway");
        let prefix = |name: &str| format!("test-{suffix}:{name}");

        let mut slots = Vec::new();
        for (name, has_db, launch) in SERVICES {
            let db = if *has_db {
                Some(TestDb::create(name).await)
            } else {
                None
            };
            let mut env: HashMap<String, String> = HashMap::from([
                ("HOST".into(), "127.0.0.1".into()),
                ("PORT".into(), addrs[name].port().to_string()),
                // What production writes, so that a test reads the lines an operator would.
                ("LOG_FORMAT".into(), "json".into()),
                ("REDIS_KEY_PREFIX".into(), prefix(name)),
                // One namespace for the nine, so events flow between them.
                ("EVENT_EXCHANGE".into(), format!("test.{suffix}.events")),
                ("EVENT_QUEUE_PREFIX".into(), format!("test.{suffix}.")),
                (
                    "EVENT_QUEUE_EXPIRY_MS".into(),
                    service_kit::event_bus::topology::THROWAWAY_QUEUE_EXPIRY
                        .as_millis()
                        .to_string(),
                ),
            ]);
            if let Some(db) = &db {
                env.insert("DATABASE_URL".into(), db.url.clone());
            }
            // What `cargo xtask up` sets (xtask/src/services.rs, commands/stripe.rs), with the
            // addresses of this platform.
            match *name {
                "gateway" => {
                    for (upstream, _, _) in SERVICES.iter().filter(|s| s.0 != "gateway") {
                        env.insert(upstream_var(upstream), url(upstream));
                    }
                    env.insert("SESSION_KEY_PREFIX".into(), prefix("auth"));
                    // Every client of the suite signs in from 127.0.0.1: the per-IP sign-in
                    // limits (a handful a minute) would be spent by the set-up of one flow.
                    for limit in ["RATE_LIMIT_REGISTER", "RATE_LIMIT_LOGIN", "RATE_LIMIT_OTP"] {
                        env.insert(limit.into(), "1000/60s".into());
                    }
                }
                "notification" => {
                    env.insert("NOTIFICATION_DEV_OUTBOX".into(), "true".into());
                    env.insert("PUBLIC_API_URL".into(), gateway_url.clone());
                    env.insert(
                        "INVOICE_URL_TEMPLATE".into(),
                        format!("{gateway_url}/v1/invoices/{{invoiceNumber}}"),
                    );
                    env.insert(
                        "BROCHURE_DIR".into(),
                        repo_root()
                            .join("services/notification/assets")
                            .display()
                            .to_string(),
                    );
                    env.insert("NOTIFICATION_POLL_MS".into(), "100".into());
                }
                "order-payment" => {
                    env.insert("STRIPE_API_BASE".into(), stripe.base_url());
                    env.insert("STRIPE_WEBHOOK_SECRET".into(), WEBHOOK_SECRET.into());
                    env.insert("PRODUCT_SERVICE_URL".into(), url("product"));
                }
                "customer" => {
                    env.insert("PRODUCT_SERVICE_URL".into(), url("product"));
                }
                "content" => {
                    env.insert("PRODUCT_SERVICE_URL".into(), url("product"));
                    env.insert("CDN_BASE_URL".into(), gateway_url.clone());
                    env.insert("MEDIA_STORAGE".into(), "local".into());
                    env.insert("MEDIA_LOCAL_DIR".into(), media_dir.display().to_string());
                }
                "analytics" => {
                    env.insert("CONTENT_SERVICE_URL".into(), url("content"));
                    env.insert(
                        "ANALYTICS_FLUSH_INTERVAL_MS".into(),
                        ANALYTICS_FLUSH_MS.to_string(),
                    );
                    // The dashboard reads daily aggregates; recompute them often.
                    env.insert("ANALYTICS_AGGREGATE_INTERVAL_MS".into(), "500".into());
                    env.insert("ANALYTICS_SITEMAP_INTERVAL_MS".into(), "500".into());
                }
                _ => {}
            }
            for (service, var, value) in overrides {
                if service == name {
                    env.insert((*var).to_owned(), (*value).to_owned());
                }
            }
            slots.push(Slot {
                name,
                addr: addrs[name],
                env,
                db,
                launch: *launch,
                running: None,
            });
        }

        // The settings every service shares (log format and level, broker) are auth's too.
        let auth_env = slots
            .iter()
            .find(|s| s.name == "auth")
            .context("auth is part of the platform")?
            .env
            .clone();
        let auth_config = auth_service::AuthService::config(&Env::from_pairs(auth_env))
            .map_err(|e| anyhow!("{e}"))?;
        let common = <auth_service::AuthService as Service>::common(&auth_config);
        install_telemetry(common)?;
        let bus = Some(common.bus_config());
        for slot in &mut slots {
            let listener = listeners
                .remove(slot.name)
                .context("a listener per service")?;
            let running = (slot.launch)(slot.env.clone(), listener)
                .await
                .with_context(|| format!("{} failed to start", slot.name))?;
            slot.running = Some(running);
        }
        Ok(Self {
            gateway_url,
            client: reqwest::Client::new(),
            stripe,
            slots,
            bus,
            media_dir,
        })
    }

    /// The absolute gateway URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway_url)
    }

    fn slot(&self, name: &str) -> &Slot {
        self.slots
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no service {name}"))
    }

    fn slot_mut(&mut self, name: &str) -> &mut Slot {
        self.slots
            .iter_mut()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no service {name}"))
    }

    /// A pool on `service`'s database, for setup the public API does not offer (e.g. the first
    /// administrator, which production creates with an operational command).
    pub async fn pool(&self, service: &str) -> sqlx::PgPool {
        self.slot(service)
            .db
            .as_ref()
            .unwrap_or_else(|| panic!("{service} has no database"))
            .pool()
            .await
    }

    /// The environment `service` runs with.
    pub fn env(&self, service: &str) -> &HashMap<String, String> {
        &self.slot(service).env
    }

    /// Every log line written in this process so far, parsed (the JSON objects `LOG_FORMAT=json`
    /// writes: the event's fields flattened, `span` the fields of the span it was logged in).
    /// Under nextest a test process runs one test, so these are this platform's lines; under
    /// `cargo test` other tests' platforms may add theirs, so select by request or trace id.
    pub fn logs(&self) -> Vec<serde_json::Value> {
        let log = LOG
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        String::from_utf8_lossy(&log)
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// Stops `service` gracefully (as SIGTERM would); its port stays reserved for a restart.
    pub async fn stop(&mut self, service: &str) {
        if let Some(running) = self.slot_mut(service).running.take() {
            running.stop().await.expect("service stops cleanly");
        }
    }

    /// Starts a stopped `service` again on the same port, database and broker queues.
    pub async fn restart(&mut self, service: &str) {
        let slot = self.slot_mut(service);
        assert!(slot.running.is_none(), "{service} is running");
        let listener = bind_again(slot.addr).await;
        let running = (slot.launch)(slot.env.clone(), listener)
            .await
            .unwrap_or_else(|e| panic!("{service} failed to restart: {e:#}"));
        slot.running = Some(running);
    }
}

/// The password every account of the suite signs in with.
pub const PASSWORD: &str = "correct horse battery staple 42";

/// The longest wait for something asynchronous (an event crossing the broker, a message being
/// sent, a buffer flushed). Generous: the suite shares two cores with whole-workspace builds.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Polls `probe` until it answers `Some`, for at most [`PATIENCE`]; panics naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One message the local email provider (notification's `log` provider, `dev_outbox`) stored.
#[derive(Debug, Clone)]
pub struct Email {
    /// The address it went to.
    pub recipient: String,
    /// Its subject.
    pub subject: String,
    /// Its text body.
    pub text: String,
    /// `[{filename, contentType, size, data (base64)}]`.
    pub attachments: serde_json::Value,
}

impl Platform {
    /// A request to the gateway, with `token` as the bearer when given.
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let request = self.client.request(method, self.url(path));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// `GET path` through the gateway.
    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        self.request(reqwest::Method::GET, path, token)
            .send()
            .await
            .expect("the gateway answers")
    }

    /// `POST path` with a JSON body through the gateway.
    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.request(reqwest::Method::POST, path, token)
            .json(body)
            .send()
            .await
            .expect("the gateway answers")
    }

    /// Every email the local provider has sent to `recipient`, oldest first.
    pub async fn emails(&self, recipient: &str) -> Vec<Email> {
        let rows: Vec<(String, Option<String>, String, serde_json::Value)> = sqlx::query_as(
            "SELECT recipient, subject, body_text, attachments FROM dev_outbox
             WHERE channel = 'EMAIL' AND lower(recipient) = lower($1) ORDER BY id",
        )
        .bind(recipient)
        .fetch_all(&self.pool("notification").await)
        .await
        .expect("read the dev outbox");
        rows.into_iter()
            .map(|(recipient, subject, text, attachments)| Email {
                recipient,
                subject: subject.unwrap_or_default(),
                text,
                attachments,
            })
            .collect()
    }

    /// Waits for an email to `recipient` whose subject contains `subject`; the newest such.
    pub async fn email(&self, recipient: &str, subject: &str) -> Email {
        eventually(
            &format!("an email to {recipient} about {subject:?}"),
            || async {
                self.emails(recipient)
                    .await
                    .into_iter()
                    .rev()
                    .find(|e| e.subject.contains(subject))
            },
        )
        .await
    }

    /// Registers `email` through the gateway; returns the response.
    pub async fn register(&self, email: &str) -> reqwest::Response {
        self.post(
            "/v1/auth/register",
            None,
            &serde_json::json!({
                "email": email, "password": PASSWORD, "firstName": "Jane", "lastName": "Doe"
            }),
        )
        .await
    }

    /// The code of the latest verification email to `email`.
    pub async fn verification_code(&self, email: &str) -> String {
        let message = self.email(email, "verification code").await;
        let after = message
            .text
            .split_once("Your code:")
            .map_or(message.text.as_str(), |(_, rest)| rest);
        code_in(after).unwrap_or_else(|| panic!("no code in {:?}", message.text))
    }

    /// Signs in with the password; returns the access token.
    pub async fn login(&self, email: &str) -> String {
        let response = self
            .post(
                "/v1/auth/login",
                None,
                &serde_json::json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(response.status(), 200, "login of {email}");
        let body: serde_json::Value = response.json().await.expect("json");
        body["accessToken"]
            .as_str()
            .expect("an access token")
            .to_owned()
    }

    /// A customer registered, verified (with the emailed code) and signed in; returns
    /// (access token, user id).
    pub async fn customer(&self, email: &str) -> (String, String) {
        let registered = self.register(email).await;
        assert_eq!(registered.status(), 201, "register {email}");
        let registered: serde_json::Value = registered.json().await.expect("json");
        let code = self.verification_code(email).await;
        let verified = self
            .post(
                "/v1/auth/verify-email",
                None,
                &serde_json::json!({"email": email, "code": code}),
            )
            .await;
        assert_eq!(verified.status(), 200, "verify {email}");
        let user_id = registered["userId"].as_str().expect("userId").to_owned();
        (self.login(email).await, user_id)
    }

    /// An administrator signed in with both factors; returns the access token. The first
    /// administrator is created as production creates it (auth's operational command); the rest
    /// goes through the gateway: two-factor enrolment, then password and code.
    pub async fn admin(&self, email: &str) -> String {
        use test_support::totp;
        let pool = self.pool("auth").await;
        auth_service::create_admin(&pool, email, PASSWORD)
            .await
            .expect("create the administrator");
        let password_only = self.login(email).await;
        let setup: serde_json::Value = self
            .request(
                reqwest::Method::POST,
                "/v1/auth/2fa/setup",
                Some(&password_only),
            )
            .send()
            .await
            .expect("answers")
            .json()
            .await
            .expect("json");
        let secret = setup["secret"].as_str().expect("a secret").to_owned();
        let confirmed = self
            .post(
                "/v1/auth/2fa/confirm",
                Some(&password_only),
                &serde_json::json!({ "code": totp::code_now(&secret) }),
            )
            .await;
        assert_eq!(confirmed.status(), 200);
        let login = self
            .post(
                "/v1/auth/login",
                None,
                &serde_json::json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(login.status(), 200);
        let challenge: serde_json::Value = login.json().await.expect("json");
        // The next step's code: the confirming one may not be used again.
        let code = totp::code_at(&secret, totp::now() + totp::STEP_SECS);
        let verified = self
            .post(
                "/v1/auth/2fa/verify",
                None,
                &serde_json::json!({ "challengeId": challenge["challengeId"], "code": code }),
            )
            .await;
        assert_eq!(verified.status(), 200);
        let body: serde_json::Value = verified.json().await.expect("json");
        body["accessToken"]
            .as_str()
            .expect("an access token")
            .to_owned()
    }
}

/// The first run of six digits in `text` (a one-time code in an email).
pub fn code_in(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    (0..bytes.len().saturating_sub(5)).find_map(|i| {
        let window = &bytes[i..i + 6];
        let before = i.checked_sub(1).map(|j| bytes[j]);
        let after = bytes.get(i + 6).copied();
        (window.iter().all(u8::is_ascii_digit)
            && !before.is_some_and(|b| b.is_ascii_digit())
            && !after.is_some_and(|b| b.is_ascii_digit()))
        .then(|| String::from_utf8_lossy(window).into_owned())
    })
}

/// Binds `addr` again; the port was just released, so allow a moment for the kernel.
async fn bind_again(addr: SocketAddr) -> TcpListener {
    let mut last = None;
    for _ in 0..50 {
        match TcpListener::bind(addr).await {
            Ok(listener) => return listener,
            Err(error) => last = Some(error),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cannot bind {addr} again: {last:?}");
}

impl Drop for Platform {
    fn drop(&mut self) {
        for slot in &mut self.slots {
            if let Some(running) = slot.running.take() {
                running.shutdown_token().cancel();
            }
        }
        let _ = std::fs::remove_dir_all(&self.media_dir);
        // Remove this platform's exchanges and queues so the broker does not collect them.
        if let Some(bus) = self.bus.take() {
            let names: Vec<&'static str> = self.slots.iter().map(|s| s.name).collect();
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(service_kit::event_bus::topology::delete_rabbit_topology(
                    &bus, &names,
                ))?;
                Ok::<(), anyhow::Error>(())
            })
            .join();
        }
        // The databases are dropped with their `TestDb`s.
    }
}
