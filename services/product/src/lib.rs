//! The product service: catalogue, filters, cursor pages, cache, search and inventory
//! (DESIGN.md §1; issue 5).
//!
//! # Endpoints (paths as served; the gateway forwards `/v1/...` unchanged)
//! | route | who | module |
//! |---|---|---|
//! | `GET /v1/{categories,ranges,colours,styles,finishes,sizes}` (+ `/{id}`) | anyone | [`taxonomy`] |
//! | `POST`, `PATCH` (merge patch), `DELETE` on the same | ADMIN | [`taxonomy`] |
//! | `GET /v1/products` (filters, sorts, `q`, cursor), `/filters`, `/suggest` | anyone | [`products::list`] |
//! | `GET /v1/products/{id}`, `/slug/{slug}`, `/{id}/related` | anyone | [`products`] |
//! | `POST /v1/products`; `PATCH`/`DELETE /v1/products/{id}`; `GET /v1/products/admin`, `/{id}/price-history` | ADMIN | [`products`] |
//! | `GET /v1/products/{id}/inventory`; `POST /v1/products/{id}/inventory/adjustments` | ADMIN | [`inventory`] |
//! | `GET /v1/sales`, `/v1/packages` (+ `/{id}`), admin CRUD | anyone / ADMIN | [`offers`] |
//! | `GET /v1/products/audit` (admin writes: products, prices, stock, taxonomy, sales, packages) | SUPER_ADMIN | [`service_kit::audit`] |
//! | `POST /internal/inventory/reservations`, `.../{orderId}/commit`, `.../{orderId}/release` | services | [`inventory`] |
//! | `GET /internal/products/{id}`; `POST /internal/products/lookup`; `GET /internal/sitemap` | services | [`internal`] |
//!
//! # Design decisions
//! - **Listing** is keyset-paged on (sort key, id) over partial indexes of the published rows;
//!   see [`products::list`] for filters, sorts, search and the 422 rules.
//! - **Cache**: list, facet and detail responses in Redis behind a version number bumped after
//!   every catalogue write, with ETags and 304s; Redis trouble means uncached reads. See [`cache`].
//! - **Popularity** is counted in process and flushed by a task ([`popularity`]), never written
//!   on the request path.
//! - **Inventory**: row locks in id order, all-or-nothing reservations, idempotent commit and
//!   release (HTTP and events), an expiry sweeper. See [`inventory`].
//! - **Taxonomy, sales and packages** share one generic CRUD implementation ([`taxonomy`]).
//! - **Events** (`product.created|updated|deleted`, `price.changed`, `inventory.updated`) are
//!   written to the outbox in the transaction of the change; the relay in this binary sends
//!   them. `payment.succeeded` and `order.cancelled` are consumed ([`inventory`]).
//!
//! # Compile-checked SQL
//! Static queries use `sqlx::query!` with the offline data in `services/product/.sqlx`. After
//! changing a query or a migration, regenerate it against a migrated scratch database:
//! ```text
//! createdb -h 127.0.0.1 -U postgres product_sqlx && for f in migrations/product/*.sql; do
//!   psql -h 127.0.0.1 -U postgres -d product_sqlx -q -f $f; done
//! rm -rf services/product/.sqlx && mkdir services/product/.sqlx && touch services/product/src/lib.rs
//! SQLX_OFFLINE=false DATABASE_URL=postgres://postgres@127.0.0.1/product_sqlx \
//!   SQLX_OFFLINE_DIR=$PWD/services/product/.sqlx cargo check -p product-service --all-targets
//! ```
//! The listing and the generic resources build their SQL at run time (`QueryBuilder`, bound
//! values only).

pub mod cache;
pub mod common;
pub mod config;
pub mod error;
pub mod internal;
pub mod inventory;
pub mod offers;
pub mod popularity;
pub mod products;
pub mod seed;
pub mod taxonomy;

use std::sync::Arc;

use service_kit::config::{CommonConfig, ConfigError, Env, ServiceSpec};
use service_kit::shared_types::order_payment::{OrderCancelled, PaymentSucceeded};
use service_kit::shared_types::{DomainEvent, EventPayload};
use service_kit::{Infra, Service, Started, consumer_task, task};
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use utoipa_axum::router::OpenApiRouter;

pub use config::{Config, ProductSettings};

/// Bodies of cached responses held in memory per replica, at most (a 20-item list is ~20 kB).
const LOCAL_CACHE_BYTES: usize = 16 << 20;
/// Cached responses held in memory per replica, at most.
const LOCAL_CACHE_ENTRIES: usize = 4096;

static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/product");

/// What its handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Its own database.
    pub db: PgPool,
    /// The response cache.
    pub cache: cache::ResponseCache,
    /// Product views waiting to be flushed.
    pub views: popularity::ViewCounter,
    /// The service's own settings.
    pub settings: Arc<ProductSettings>,
}

// The audit trail's route reads the service's own pool.
impl axum::extract::FromRef<AppState> for PgPool {
    fn from_ref(state: &AppState) -> Self {
        state.db.clone()
    }
}

/// A domain event from this service, carrying the current request id.
pub(crate) fn event<T: EventPayload>(payload: T) -> DomainEvent<T> {
    let event = DomainEvent::new(ProductService::SPEC.name, payload);
    match service_kit::request_id::current() {
        Some(request_id) => event.correlation_id(request_id),
        None => event,
    }
}

/// The product service.
pub struct ProductService;

impl Service for ProductService {
    const SPEC: ServiceSpec = ServiceSpec {
        name: "product",
        default_port: 3002,
        database: Some("lomash_products"),
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
            .merge(taxonomy::router())
            .merge(products::router())
            .merge(inventory::router())
            .merge(offers::router())
            .merge(internal::router())
            .nest("/v1/products", service_kit::audit::router())
    }

    async fn seed(db: PgPool, args: Vec<String>) -> anyhow::Result<()> {
        seed::run(db, args).await
    }

    async fn start(config: Config, infra: Infra) -> anyhow::Result<Started<AppState>> {
        let db = infra.db()?;
        let settings = config.product;
        let cache = cache::ResponseCache::new(
            infra.redis.clone(),
            settings.cache_list_ttl,
            settings.cache_detail_ttl,
            settings.cache_timeout,
        )
        // Product invalidates by version only, so hot lists and details can be answered from
        // memory while the version is known current (no Redis round trip on such a hit).
        .with_local_entries(LOCAL_CACHE_BYTES, LOCAL_CACHE_ENTRIES);
        let views = popularity::ViewCounter::default();
        let consumer = infra
            .consumer()?
            .on::<PaymentSucceeded, _>(|event, conn| {
                Box::pin(inventory::on_payment_succeeded(event, conn))
            })
            .on::<OrderCancelled, _>(|event, conn| {
                Box::pin(inventory::on_order_cancelled(event, conn))
            });

        let mut started = Started::new(AppState {
            db: db.clone(),
            cache,
            views: views.clone(),
            settings: Arc::new(settings.clone()),
        });
        started.tasks.push(consumer_task(consumer));
        let flush_db = db.clone();
        let flush_every = settings.popularity_flush_interval;
        started
            .tasks
            .push(task(move |token| views.run(flush_db, flush_every, token)));
        let sweep_every = settings.reservation_sweep_interval;
        started.tasks.push(task(move |token| {
            inventory::run_sweeper(db, sweep_every, token)
        }));
        Ok(started)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The routes this service serves; a change here is an API change (and the gateway's route
    /// table must follow).
    #[test]
    fn the_openapi_document_lists_every_route() {
        let routes = service_kit::service::route_list::<ProductService>();
        let mut expected: Vec<String> = Vec::new();
        for collection in [
            "categories",
            "colours",
            "finishes",
            "packages",
            "ranges",
            "sales",
            "sizes",
            "styles",
        ] {
            expected.push(format!("GET /v1/{collection}"));
            expected.push(format!("POST /v1/{collection}"));
            expected.push(format!("GET /v1/{collection}/{{id}}"));
            expected.push(format!("PATCH /v1/{collection}/{{id}}"));
            expected.push(format!("DELETE /v1/{collection}/{{id}}"));
        }
        expected.extend(
            [
                "GET /v1/products",
                "POST /v1/products",
                "GET /v1/products/admin",
                "GET /v1/products/audit",
                "GET /v1/products/filters",
                "GET /v1/products/suggest",
                "GET /v1/products/slug/{slug}",
                "GET /v1/products/{id}",
                "PATCH /v1/products/{id}",
                "DELETE /v1/products/{id}",
                "GET /v1/products/{id}/related",
                "GET /v1/products/{id}/price-history",
                "GET /v1/products/{id}/inventory",
                "POST /v1/products/{id}/inventory/adjustments",
                "GET /internal/products/{id}",
                "POST /internal/products/lookup",
                "GET /internal/sitemap",
                "POST /internal/inventory/reservations",
                "POST /internal/inventory/reservations/{orderId}/commit",
                "POST /internal/inventory/reservations/{orderId}/release",
            ]
            .map(str::to_owned),
        );
        expected.sort();
        assert_eq!(routes, expected);
    }
}
