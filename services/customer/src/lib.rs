//! The customer service: profiles, addresses, wishlists, reviews, support tickets and loyalty
//! (DESIGN.md §1; issue 9).
//!
//! # Endpoints (paths as served; the gateway forwards `/v1/...` unchanged)
//! | route | who | module |
//! |---|---|---|
//! | `GET`, `PATCH` (merge patch) `/v1/profile`; `GET /v1/profile/export` | customer | [`profiles`], [`gdpr`] |
//! | `GET`, `POST /v1/profile/addresses`; `PATCH`, `DELETE .../{id}`; `POST .../{id}/default` | customer | [`addresses`] |
//! | `GET`, `POST /v1/wishlist`; `DELETE /v1/wishlist/{productId}` | customer | [`wishlist`] |
//! | `GET /v1/products/{productId}/reviews`, `/rating` | anyone | [`reviews`] |
//! | `POST /v1/products/{productId}/reviews`; `PATCH`, `DELETE /v1/reviews/{id}` | customer (DELETE: or ADMIN) | [`reviews`] |
//! | `POST`, `DELETE /v1/reviews/{id}/helpful` (one vote per user) | customer | [`reviews`] |
//! | `GET /v1/admin/reviews`; `POST /v1/admin/reviews/{id}/moderation` | ADMIN | [`reviews`] |
//! | `POST`, `GET /v1/tickets`; `GET /v1/tickets/{id}`; `POST .../{id}/messages`; `POST .../{id}/reopen` | customer | [`tickets`] |
//! | `GET /v1/admin/tickets`; `PATCH /v1/admin/tickets/{id}` | staff | [`tickets`] |
//! | `GET /v1/loyalty`, `/v1/loyalty/transactions`; `POST /v1/loyalty/redemptions` | customer | [`loyalty`] |
//! | `POST /v1/admin/loyalty/{userId}/adjustments` | ADMIN | [`loyalty`] |
//! | `GET /v1/customers`, `/v1/customers/{id}` | ADMIN | [`customers`] |
//! | `GET /v1/customers/audit` (the audit trail of staff changes) | SUPER_ADMIN | `service_kit::audit` |
//!
//! # Design decisions
//! - **Profiles** are created from `user.created` (idempotently, filling blanks only) or on a
//!   customer's first request, whichever comes first.
//! - **Invariants in the schema**: one default address per kind (partial unique index), one review
//!   per customer and product, one `EARN` per payment and one `REVERSE` per refund (partial
//!   unique indexes), a loyalty balance that cannot go negative (check) and an append-only ledger
//!   (trigger).
//! - **Ownership**: a row of another customer is answered with 404, never 403.
//! - **Events**: `review.created`, `ticket.created` and `ticket.updated` go through the outbox;
//!   `user.created`, `payment.succeeded`, `refund.issued` and `user.erasure_requested` are consumed
//!   once each (see [`loyalty`] and [`gdpr`]); a payment or refund also marks the customer's
//!   reviews due for a verified-purchase re-check ([`reviews::purchases`]).
//! - **Verified purchases** are asked of order-payment when a review is written; when it cannot
//!   answer, the review is written unverified and a background job re-checks it with backoff.
//!
//! # SQL
//! The loyalty ledger, the event consumers and the erasure use compile-checked `sqlx::query!`
//! with the offline data in `services/customer/.sqlx`. After changing one of them or a
//! migration, regenerate it against a migrated scratch database:
//! ```text
//! createdb -h 127.0.0.1 -U postgres customer_sqlx && for f in migrations/customer/*.sql; do
//!   psql -h 127.0.0.1 -U postgres -d customer_sqlx -q -f $f; done
//! rm -rf services/customer/.sqlx && mkdir services/customer/.sqlx && touch services/customer/src/lib.rs
//! SQLX_OFFLINE=false DATABASE_URL=postgres://postgres@127.0.0.1/customer_sqlx \
//!   SQLX_OFFLINE_DIR=$PWD/services/customer/.sqlx cargo check -p customer-service --all-targets
//! ```
//! The other modules' queries are run-time checked `sqlx::query`/`query_as` over shared column
//! lists, with bound parameters only (no SQL is built from input); the integration tests run
//! every one of them.

pub mod addresses;
pub mod config;
pub mod customers;
pub mod error;
pub mod gdpr;
pub mod loyalty;
pub mod profiles;
pub mod reviews;
pub mod tickets;
pub mod wishlist;

use std::sync::Arc;

use service_kit::config::{CommonConfig, ConfigError, Env, ServiceSpec};
use service_kit::shared_types::auth::{UserCreated, UserErasureRequested};
use service_kit::shared_types::order_payment::{PaymentSucceeded, RefundIssued};
use service_kit::shared_types::{DomainEvent, EventPayload};
use service_kit::{Infra, Service, Started, consumer_task, task};
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use utoipa_axum::router::OpenApiRouter;

pub use config::{Config, CustomerSettings};

static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/customer");

/// What its handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Its own database.
    pub db: PgPool,
    /// The service's own settings.
    pub settings: Arc<CustomerSettings>,
    /// The product service's internal API.
    pub products: wishlist::ProductClient,
    /// Order-payment's internal API (verified purchases of reviews).
    pub purchases: reviews::purchases::PurchaseClient,
}

impl axum::extract::FromRef<AppState> for PgPool {
    fn from_ref(state: &AppState) -> Self {
        state.db.clone()
    }
}

/// A domain event from this service, carrying the current request id.
pub(crate) fn event<T: EventPayload>(payload: T) -> DomainEvent<T> {
    let event = DomainEvent::new(CustomerService::SPEC.name, payload);
    match service_kit::request_id::current() {
        Some(request_id) => event.correlation_id(request_id),
        None => event,
    }
}

/// Merge patches are read back as the input type with the shared rule (`crate::patched`).
pub(crate) use service_kit::merge_patch::patched;

/// The customer service.
pub struct CustomerService;

impl Service for CustomerService {
    const SPEC: ServiceSpec = ServiceSpec {
        name: "customer",
        default_port: 3006,
        database: Some("lomash_customers"),
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
            .merge(profiles::router())
            .merge(addresses::router())
            .merge(wishlist::router())
            .merge(reviews::router())
            .merge(tickets::router())
            .merge(loyalty::router())
            .merge(gdpr::router())
            .merge(customers::router())
            .nest("/v1/customers", service_kit::audit::router())
    }

    async fn start(config: Config, infra: Infra) -> anyhow::Result<Started<AppState>> {
        let db = infra.db()?;
        let settings = Arc::new(config.customer);
        let products = wishlist::ProductClient::new(
            &infra.config,
            settings.product_service_url.clone(),
            settings.product_timeout,
        )?;
        let purchases = reviews::purchases::PurchaseClient::new(
            &infra.config,
            settings.order_payment_service_url.clone(),
            settings.order_payment_timeout,
        )?;
        let points_per_pound = settings.points_per_pound;
        let consumer = infra
            .consumer()?
            .on::<UserCreated, _>(|event, conn| Box::pin(profiles::on_user_created(event, conn)))
            .on::<PaymentSucceeded, _>(move |event, conn| {
                Box::pin(async move {
                    let user_id = event.payload.user_id;
                    loyalty::on_payment_succeeded(event, conn, points_per_pound).await?;
                    reviews::purchases::on_purchases_changed(conn, user_id).await
                })
            })
            .on::<RefundIssued, _>(|event, conn| {
                Box::pin(async move {
                    let user_id = event.payload.user_id;
                    loyalty::on_refund_issued(event, conn).await?;
                    reviews::purchases::on_purchases_changed(conn, user_id).await
                })
            })
            .on::<UserErasureRequested, _>(|event, conn| {
                Box::pin(gdpr::on_erasure_requested(event, conn))
            });
        let mut started = Started::new(AppState {
            db: db.clone(),
            settings: settings.clone(),
            products,
            purchases: purchases.clone(),
        });
        started.tasks.push(consumer_task(consumer));
        let (verify_db, verify_every) = (db.clone(), settings.review_verify_interval);
        started.tasks.push(task(move |token| {
            reviews::purchases::run(verify_db, purchases, verify_every, token)
        }));
        if let Some(after) = settings.points_expire_after {
            let every = settings.expiry_sweep_interval;
            started.tasks.push(task(move |token| {
                loyalty::run_expiry(db, after, every, token)
            }));
        }
        Ok(started)
    }
}

/// The database spelling of a SCREAMING_SNAKE enum (its JSON string).
pub(crate) fn enum_to_db<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// An enum from its database spelling (the schema's checks keep it one of the variants).
pub(crate) fn enum_from_db<T: serde::de::DeserializeOwned>(value: &str) -> anyhow::Result<T> {
    Ok(serde_json::from_value(serde_json::Value::String(
        value.to_owned(),
    ))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The routes this service serves; a change here is an API change (and the gateway's route
    /// table must follow).
    #[test]
    fn the_openapi_document_lists_every_route() {
        let routes = service_kit::service::route_list::<CustomerService>();
        let mut expected: Vec<String> = [
            "GET /v1/profile",
            "PATCH /v1/profile",
            "GET /v1/profile/export",
            "GET /v1/profile/addresses",
            "POST /v1/profile/addresses",
            "PATCH /v1/profile/addresses/{id}",
            "DELETE /v1/profile/addresses/{id}",
            "POST /v1/profile/addresses/{id}/default",
            "GET /v1/wishlist",
            "POST /v1/wishlist",
            "DELETE /v1/wishlist/{productId}",
            "GET /v1/products/{productId}/reviews",
            "POST /v1/products/{productId}/reviews",
            "GET /v1/products/{productId}/rating",
            "PATCH /v1/reviews/{id}",
            "DELETE /v1/reviews/{id}",
            "POST /v1/reviews/{id}/helpful",
            "DELETE /v1/reviews/{id}/helpful",
            "GET /v1/admin/reviews",
            "POST /v1/admin/reviews/{id}/moderation",
            "POST /v1/tickets",
            "GET /v1/tickets",
            "GET /v1/tickets/{id}",
            "POST /v1/tickets/{id}/messages",
            "POST /v1/tickets/{id}/reopen",
            "GET /v1/admin/tickets",
            "PATCH /v1/admin/tickets/{id}",
            "GET /v1/loyalty",
            "GET /v1/loyalty/transactions",
            "POST /v1/loyalty/redemptions",
            "POST /v1/admin/loyalty/{userId}/adjustments",
            "GET /v1/customers",
            "GET /v1/customers/{id}",
            "GET /v1/customers/audit",
        ]
        .map(str::to_owned)
        .to_vec();
        expected.sort();
        assert_eq!(routes, expected);
    }
}
