//! The notification service: email, SMS and push from events, templates, preferences and live
//! WebSocket sessions (DESIGN.md §1; issue 10).
//!
//! # Design decisions
//! - **Events become rows, a sender sends them.** An event handler only renders its messages
//!   and writes them as `QUEUED` rows of the delivery log in the consumer's transaction (with
//!   the `processed_events` record), so a redelivered event queues nothing twice and a slow
//!   provider never holds up the queue. A replica-safe sender claims due rows with
//!   `FOR UPDATE SKIP LOCKED`, calls the channel's provider, and records `SENT` or `FAILED`
//!   (with `notification.sent` / `notification.failed` through the outbox).
//! - **Providers** sit behind one small trait per channel (`Arc<dyn ...>`, the edge we fake in
//!   tests), chosen by configuration; the `log` provider keeps messages in the database.
//! - **Templates** are files in the repository, rendered with strict undefined variables.
//! - **Consent**: transactional messages always go; marketing needs an account's opt-in for the
//!   channel and no one-click unsubscribe of the address ([`preferences`]).
//! - **Recipients** come from the events themselves; where an event carries only a user id
//!   (`ticket.updated`, a receipt without an email) the `recipients` table fed by `user.created`
//!   answers, and the booking phone of `booking.created` serves the SMS of later booking events.
//! - **Live notifications** ([`live`]) are a best-effort courtesy beside the delivery log: a
//!   booking confirmation, a payment or a staff reply is pushed to the user's open WebSockets on
//!   any replica through one Redis pub/sub channel; a socket opens with a single-use ticket, is
//!   pinged, ends with its session, and is dropped when it falls behind its bounded buffer.
//!
//! # Endpoints (paths as served; the gateway forwards `/v1/...` unchanged)
//! | route | who | module |
//! |---|---|---|
//! | `GET /v1/notifications?recipient=&status=&template=&page=&pageSize=` | ADMIN | [`delivery`] |
//! | `POST /v1/notifications/{id}/resend` | ADMIN | [`delivery`] |
//! | `GET /v1/notifications/dev/outbox` (only with `NOTIFICATION_DEV_OUTBOX=true`) | local runs | [`delivery`] |
//! | `POST /v1/notifications/templates/{name}/preview` | ADMIN | [`templates`] |
//! | `GET`, `PUT /v1/notifications/preferences` | signed in | [`preferences`] |
//! | `GET`, `POST /v1/notifications/unsubscribe/{token}` | anyone with the signed link | [`preferences`] |
//! | `POST`, `DELETE /v1/notifications/devices` | signed in | [`devices`] |
//! | `POST /v1/notifications/ws-ticket`, `GET /v1/notifications/ws` | signed in / ticket | [`live`] |
//!
//! # SQL
//! The paths every message takes (queueing, consent checks, recipient lookups, the sender's
//! claim and settlement) use compile-checked `sqlx::query!` with the offline data in
//! `services/notification/.sqlx`. After changing one of them or a migration, regenerate it:
//! ```text
//! createdb -h 127.0.0.1 -U postgres notification_sqlx && for f in migrations/notification/*.sql; do
//!   psql -h 127.0.0.1 -U postgres -d notification_sqlx -q -f $f; done
//! rm -rf services/notification/.sqlx && mkdir services/notification/.sqlx && touch services/notification/src/lib.rs
//! SQLX_OFFLINE=false DATABASE_URL=postgres://postgres@127.0.0.1/notification_sqlx \
//!   SQLX_OFFLINE_DIR=$PWD/services/notification/.sqlx cargo check -p notification-service --tests
//! ```
//! The admin and preference endpoints use run-time checked `sqlx::query`/`query_as` with bound
//! parameters only (the log filters choose among fixed SQL fragments); the integration tests run
//! every one of them.

pub mod config;
pub mod consumers;
pub mod delivery;
pub mod devices;
pub mod error;
pub mod live;
pub mod preferences;
pub mod providers;
pub mod storage;
pub mod templates;

use std::sync::Arc;

use service_kit::config::{CommonConfig, ConfigError, Env, ServiceSpec};
use service_kit::shared_types::{DomainEvent, EventPayload};
use service_kit::{Infra, Service, Started, consumer_task, task};
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use utoipa_axum::router::OpenApiRouter;

pub use config::{Config, NotificationSettings};
pub use delivery::{Category, Channel};

static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/notification");

/// What its handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Its own database.
    pub db: PgPool,
    /// The service's own settings.
    pub settings: Arc<NotificationSettings>,
    /// Live notifications: publishing, and this replica's sockets.
    pub live: live::LiveHub,
    /// The compiled message templates.
    pub templates: Arc<templates::Templates>,
}

/// A domain event from this service, carrying the current request id.
pub(crate) fn event<T: EventPayload>(payload: T) -> DomainEvent<T> {
    let event = DomainEvent::new(NotificationService::SPEC.name, payload);
    match service_kit::request_id::current() {
        Some(request_id) => event.correlation_id(request_id),
        None => event,
    }
}

/// The AWS client settings of SES and S3: the platform's region and endpoint override
/// (`AWS_REGION`, `AWS_ENDPOINT_URL`), credentials from the AWS default chain.
pub fn aws_settings(config: &Config) -> event_bus::aws::AwsSettings {
    event_bus::aws::AwsSettings {
        region: config.common.aws_region.clone(),
        endpoint_url: config.common.sqs_endpoint.clone(),
        credentials: None,
    }
}

// The audit trail's route reads the service's own pool.
impl axum::extract::FromRef<AppState> for PgPool {
    fn from_ref(state: &AppState) -> Self {
        state.db.clone()
    }
}

impl axum::extract::FromRef<AppState> for live::LiveHub {
    fn from_ref(state: &AppState) -> Self {
        state.live.clone()
    }
}

/// The notification service.
pub struct NotificationService;

impl Service for NotificationService {
    const SPEC: ServiceSpec = ServiceSpec {
        name: "notification",
        default_port: 3007,
        database: Some("lomash_notifications"),
    };
    const PUBLISHES_EVENTS: bool = true;
    type Config = Config;
    type State = AppState;

    fn migrator() -> Option<&'static Migrator> {
        Some(&MIGRATOR)
    }

    fn config(env: &Env) -> Result<Config, ConfigError> {
        Config::from_env(Self::SPEC, env)
    }

    fn common(config: &Config) -> &CommonConfig {
        &config.common
    }

    fn routes() -> OpenApiRouter<AppState> {
        OpenApiRouter::new()
            .merge(live::router())
            .merge(templates::router())
            .merge(delivery::router())
            .merge(preferences::router())
            .merge(devices::router())
            .nest("/v1/notifications", service_kit::audit::router())
    }

    async fn start(config: Config, infra: Infra) -> anyhow::Result<Started<AppState>> {
        let db = infra.db()?;
        let aws = aws_settings(&config);
        let templates = Arc::new(templates::Templates::load(
            &config.notification.web_base_url,
        )?);
        let providers =
            providers::Providers::from_settings(&config.notification, &db, &aws).await?;
        let storage = storage::from_settings(&config.notification.brochures, &aws).await;
        let settings = Arc::new(config.notification);
        let live = live::LiveHub::new(infra.redis.clone(), config.live);
        let live_subscriber = live.subscribe(infra.config.redis_url.expose()).await?;
        let consumer = consumers::consumer(
            &infra,
            delivery::Composer {
                templates: templates.clone(),
                settings: settings.clone(),
            },
            live.clone(),
        )?;
        let sender = delivery::Sender {
            db: db.clone(),
            providers,
            storage,
            settings: settings.clone(),
        };
        let mut started = Started::new(AppState {
            db,
            settings,
            live,
            templates,
        });
        started.tasks.push(live_subscriber);
        started.tasks.push(consumer_task(consumer));
        if sender.settings.sender.enabled {
            started
                .tasks
                .push(task(move |token| delivery::run_sender(sender, token)));
        }
        Ok(started)
    }
}
