//! The order-payment service: carts, checkout, coupons, tax and shipping, orders, Stripe
//! payments and webhooks, invoices and refunds (DESIGN.md §1; issue 7).
//!
//! # Design decisions
//! - **Prices come from the product service**, never from the client: carts, summaries and
//!   orders re-price through [`products::ProductClient`].
//! - **Money** is integer pence, GBP.
//! - **Ownership**: another customer's order or cart item is answered with 404, never 403.
//! - **Events** go through the outbox in the transaction that changes the state.
//!
//! # SQL
//! The fixed statements of carts, idempotency records, the order lifecycle and erasure are
//! compile-checked `sqlx::query!` against the offline data in `services/order-payment/.sqlx`.
//! After changing one of them or a migration, regenerate it against a migrated scratch database
//! (`--lib`: the test targets pull in product-service, whose queries need its own database):
//! ```text
//! dropdb --if-exists -h 127.0.0.1 -U postgres op_sqlx; createdb -h 127.0.0.1 -U postgres op_sqlx
//! for f in migrations/order-payment/*.sql; do psql -h 127.0.0.1 -U postgres -d op_sqlx -q -f $f; done
//! rm -rf services/order-payment/.sqlx && mkdir services/order-payment/.sqlx && touch services/order-payment/src/lib.rs
//! SQLX_OFFLINE=false DATABASE_URL=postgres://postgres@127.0.0.1/op_sqlx \
//!   SQLX_OFFLINE_DIR=$PWD/services/order-payment/.sqlx cargo check -p order-payment-service --lib
//! ```
//! The other statements (shared column lists, admin filters, orders and coupons read into typed
//! rows) are run-time checked `sqlx::query`/`query_as` with bound parameters only — no SQL is
//! built from input — and the integration tests run every one of them.

pub mod cart;
pub mod checkout;
pub mod config;
pub mod coupons;
pub mod error;
pub mod idempotency;
pub mod internal;
pub mod invoices;
pub mod orders;
pub mod payments;
pub mod pricing;
pub mod products;
pub mod rates;
pub mod reconcile;
pub mod refunds;
pub mod stripe;
pub mod webhooks;

use std::sync::Arc;

use service_kit::config::{CommonConfig, ConfigError, Env, ServiceSpec};
use service_kit::shared_types::{DomainEvent, EventPayload};
use service_kit::{Infra, Service, Started};
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use utoipa_axum::router::OpenApiRouter;

pub use config::{Config, OrderSettings};

static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/order-payment");

// The audit trail's route reads the service's own pool.
impl axum::extract::FromRef<AppState> for PgPool {
    fn from_ref(state: &AppState) -> Self {
        state.db.clone()
    }
}

/// What its handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Its own database.
    pub db: PgPool,
    /// Carts, checkout and orders settings.
    pub settings: Arc<OrderSettings>,
    /// The product service's internal API.
    pub products: products::ProductClient,
    /// Stripe's API.
    pub stripe: stripe::Stripe,
    /// Stripe settings (webhook secrets, reconciliation).
    pub stripe_settings: Arc<stripe::StripeSettings>,
}

/// A domain event from this service, carrying the current request id.
pub fn event<T: EventPayload>(payload: T) -> DomainEvent<T> {
    let event = DomainEvent::new(OrderPaymentService::SPEC.name, payload);
    match service_kit::request_id::current() {
        Some(request_id) => event.correlation_id(request_id),
        None => event,
    }
}

/// The order-payment service.
pub struct OrderPaymentService;

impl Service for OrderPaymentService {
    const SPEC: ServiceSpec = ServiceSpec {
        name: "order-payment",
        default_port: 3003,
        database: Some("lomash_orders"),
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
            .merge(cart::router())
            .merge(checkout::router())
            .merge(coupons::router())
            .merge(rates::router())
            .merge(orders::router())
            .merge(payments::router())
            .merge(webhooks::router())
            .merge(invoices::router())
            .merge(refunds::router())
            .merge(internal::router())
            .nest("/v1/orders", service_kit::audit::router())
    }

    async fn start(config: Config, infra: Infra) -> anyhow::Result<Started<AppState>> {
        let db = infra.db()?;
        let settings = Arc::new(config.orders);
        let products = products::ProductClient::new(
            &infra.config,
            &settings.product_service_url,
            settings.product_timeout,
        )?;
        let stripe_settings = Arc::new(config.stripe);
        let stripe = stripe::Stripe::new(&stripe_settings)?;
        let mut started = Started::new(AppState {
            db,
            settings,
            products,
            stripe,
            stripe_settings: stripe_settings.clone(),
        });
        // Part A: unpaid orders expire (replica-safe), erasure requests are applied once each.
        let expiry_db = started.state.db.clone();
        let sweep_every = started.state.settings.expiry_sweep_interval;
        started.tasks.push(service_kit::task(move |token| {
            orders::expiry::run(expiry_db, sweep_every, token)
        }));
        let consumer = infra
            .consumer()?
            .on::<service_kit::shared_types::auth::UserErasureRequested, _>(|event, conn| {
                Box::pin(orders::erasure::on_erasure_requested(event, conn))
            });
        started.tasks.push(service_kit::consumer_task(consumer));
        let reconcile_state = started.state.clone();
        started.tasks.push(service_kit::task(move |token| {
            reconcile::run(
                reconcile_state,
                stripe_settings.reconcile_after,
                stripe_settings.reconcile_interval,
                token,
            )
        }));
        Ok(started)
    }
}

/// The database spelling of a SCREAMING_SNAKE enum (its JSON string).
pub fn enum_to_db<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// An enum from its database spelling (the schema's checks keep it one of the variants).
pub fn enum_from_db<T: serde::de::DeserializeOwned>(value: &str) -> anyhow::Result<T> {
    Ok(serde_json::from_value(serde_json::Value::String(
        value.to_owned(),
    ))?)
}
