//! Test harness shared by every service's integration tests.
//!
//! [`TestApp::spawn`] runs a service's real router on `127.0.0.1:0` against its own freshly
//! created and migrated database, its own Redis key prefix and its own broker exchange and queue
//! names, so tests run in parallel and never see each other's data. The database is dropped when
//! the app is.

pub mod audit;
pub mod db;
pub mod problem;
pub mod totp;

pub use db::TestDb;

use std::collections::HashMap;

use service_kit::{Env, InternalClaims, InternalKeys, Role, RunningService, Service};
use tokio::net::TcpListener;
use uuid::Uuid;

/// Header carrying the internal token.
pub const INTERNAL_TOKEN_HEADER: &str = "x-internal-token";

/// An internal token as the gateway mints for a client without an access token.
pub fn anonymous_token() -> String {
    InternalKeys::development()
        .mint(InternalClaims::anonymous("gateway"))
        .expect("development keys mint")
}

/// An internal token a service mints for itself.
pub fn service_token(service: &str) -> String {
    InternalKeys::development()
        .mint(InternalClaims::service(service))
        .expect("development keys mint")
}

/// A signed-in user as the gateway would vouch for them.
#[derive(Debug, Clone)]
pub struct TestUser {
    /// User id.
    pub id: Uuid,
    /// Role.
    pub role: Role,
    /// Session id.
    pub session_id: Uuid,
    /// How the user signed in (`pwd`, `otp`).
    pub amr: Vec<String>,
}

impl TestUser {
    /// A new user with `role`, signed in as that role normally must be: with the second factor
    /// (`amr` = `pwd`, `otp`) for ADMIN and SUPER_ADMIN, with a password alone otherwise.
    pub fn new(role: Role) -> Self {
        Self::signed_in(Uuid::now_v7(), role, Uuid::now_v7())
    }

    /// An existing user and session (e.g. from a real login), with the sign-in methods
    /// [`TestUser::new`] gives the role.
    pub fn signed_in(id: Uuid, role: Role, session_id: Uuid) -> Self {
        Self {
            id,
            role,
            session_id,
            amr: default_amr(role),
        }
    }

    /// The same user signed in with a password only: an ADMIN or SUPER_ADMIN like this has not
    /// completed (or enrolled in) two-factor sign-in, and services refuse them.
    #[must_use]
    pub fn without_second_factor(mut self) -> Self {
        self.amr = vec![auth_client::AMR_PASSWORD.to_owned()];
        self
    }

    /// A fresh internal token for this user.
    pub fn token(&self) -> String {
        InternalKeys::development()
            .mint(
                InternalClaims::user("gateway", self.id, self.role, self.session_id)
                    .with_amr(self.amr.clone()),
            )
            .expect("development keys mint")
    }
}

fn default_amr(role: Role) -> Vec<String> {
    use auth_client::{AMR_OTP, AMR_PASSWORD};
    if role.requires_second_factor() {
        vec![AMR_PASSWORD.to_owned(), AMR_OTP.to_owned()]
    } else {
        vec![AMR_PASSWORD.to_owned()]
    }
}

/// A short unique suffix for names (databases, prefixes, queues).
pub fn unique_suffix() -> String {
    Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// A running service under test.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    /// A client with no default headers.
    pub client: reqwest::Client,
    /// The service's own database, when it has one.
    pub db: Option<TestDb>,
    /// The environment the service was configured from.
    pub env: HashMap<String, String>,
    /// The service's event-bus settings (unique exchange and queue names).
    pub bus_config: service_kit::event_bus::BusConfig,
    service: &'static str,
    running: Option<RunningService>,
}

impl TestApp {
    /// Spawns `S` with isolated infrastructure.
    pub async fn spawn<S: Service>() -> Self {
        Self::spawn_with::<S>(&[]).await
    }

    /// Spawns `S` with isolated infrastructure plus extra environment variables.
    pub async fn spawn_with<S: Service>(overrides: &[(&str, &str)]) -> Self {
        let suffix = unique_suffix();
        let db = match S::SPEC.database {
            Some(_) => Some(TestDb::create(S::SPEC.name).await),
            None => None,
        };
        let mut env: HashMap<String, String> = HashMap::from([
            ("HOST".into(), "127.0.0.1".into()),
            ("PORT".into(), "0".into()),
            ("LOG_LEVEL".into(), "warn".into()),
            (
                "REDIS_KEY_PREFIX".into(),
                format!("test-{suffix}:{}", S::SPEC.name),
            ),
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
        for (name, value) in overrides {
            env.insert((*name).to_owned(), (*value).to_owned());
        }
        let config = S::config(&Env::from_pairs(env.clone()))
            .unwrap_or_else(|e| panic!("test configuration is invalid: {e}"));
        let bus_config = S::common(&config).bus_config();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let running = service_kit::start::<S>(config, listener)
            .await
            .unwrap_or_else(|e| panic!("{} failed to start: {e:#}", S::SPEC.name));
        Self {
            base_url: format!("http://{}", running.addr),
            client: reqwest::Client::new(),
            db,
            env,
            bus_config,
            service: S::SPEC.name,
            running: Some(running),
        }
    }

    /// The absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// A request as the gateway would forward it for an anonymous client.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .header(INTERNAL_TOKEN_HEADER, anonymous_token())
    }

    /// A request as the gateway would forward it for a signed-in user.
    pub fn request_as(
        &self,
        method: reqwest::Method,
        path: &str,
        user: &TestUser,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .header(INTERNAL_TOKEN_HEADER, user.token())
    }

    /// `GET path` as an anonymous client through the gateway.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.request(reqwest::Method::GET, path)
            .send()
            .await
            .expect("request reaches the service")
    }

    /// `POST path` with a JSON body, as an anonymous client through the gateway.
    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.request(reqwest::Method::POST, path)
            .json(body)
            .send()
            .await
            .expect("request reaches the service")
    }

    /// The service's database pool (panics for services without one).
    pub async fn pool(&self) -> sqlx::PgPool {
        self.db
            .as_ref()
            .expect("this service has a database")
            .pool()
            .await
    }

    /// Publishes `event` to this test's exchange until the service's consumer has recorded it in
    /// `processed_events`, for up to 30 s. Publishing again is harmless (the event id makes a
    /// repeat a no-op) and needed: the consumer declares its queue when it starts, so a first
    /// copy may find none; and a publish the shared broker is slow to confirm is tried again
    /// rather than failing a test that is not about the broker.
    pub async fn deliver<P: service_kit::shared_types::EventPayload>(
        &self,
        event: &service_kit::shared_types::DomainEvent<P>,
    ) {
        use std::time::{Duration, Instant};

        let bus = service_kit::event_bus::connect(self.bus_config.clone())
            .await
            .expect("connect to the broker");
        let pool = self.pool().await;
        let message = service_kit::event_bus::OutgoingMessage {
            event_id: event.id,
            topic: event.topic.clone(),
            body: serde_json::to_vec(event).expect("serialise the event"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let outcome = bus.publish_batch(std::slice::from_ref(&message)).await;
            if outcome.error.is_none() {
                for _ in 0..20 {
                    let done: Option<i32> =
                        sqlx::query_scalar("SELECT 1 FROM processed_events WHERE event_id = $1")
                            .bind(event.id)
                            .fetch_optional(&pool)
                            .await
                            .expect("read processed_events");
                    if done.is_some() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            } else {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            assert!(
                Instant::now() < deadline,
                "the consumer never processed {} (last publish error: {:?})",
                event.topic,
                outcome.error
            );
        }
    }

    /// Stops the service gracefully, as SIGTERM would.
    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await.expect("service stops cleanly");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown_token().cancel();
        }
        // Remove this test's exchanges and queues so the broker does not collect them.
        // Publishers declare every subscriber's queue too, so remove them all.
        let bus = self.bus_config.clone();
        let mut services: Vec<String> = bus.subscriptions().into_keys().collect();
        services.push(self.service.to_owned());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let services: Vec<&str> = services.iter().map(String::as_str).collect();
            runtime.block_on(service_kit::event_bus::topology::delete_rabbit_topology(
                &bus, &services,
            ))?;
            Ok::<(), anyhow::Error>(())
        })
        .join();
    }
}
