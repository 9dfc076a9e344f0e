//! What every Lomash Wood service does the same way.
//!
//! A service implements [`Service`] and its `main.rs` is one line:
//! `service_kit::main!(my_service::MyService);` (the allocator and `fn main`). This crate
//! supplies the rest: typed configuration from the environment ([`config`]), telemetry
//! ([`telemetry`]), RFC 7807 errors ([`Problem`]), the extractors ([`extract`]), the common
//! endpoints and middleware ([`http`]), Postgres and Redis ([`db`], [`redis`]) and graceful
//! shutdown ([`service`]).

pub mod audit;
pub mod breaker;
pub mod cache;
pub mod caller;
pub mod config;
pub mod csv;
pub mod db;
pub mod extract;
pub mod http;
pub mod keyed_limit;
pub mod merge_patch;
pub mod metrics;
pub mod openapi;
pub mod peer;
pub mod problem;
pub mod readiness;
pub mod redis;
pub mod request_id;
pub mod service;
pub mod strict_json;
pub mod telemetry;

pub use auth_client::{InternalClaims, InternalKeys, Role};
pub use caller::{AdminCaller, Caller, MaybeCaller, ServiceCaller, StaffCaller};
pub use config::{CommonConfig, ConfigError, Env, Secret, ServiceSpec};
pub use extract::{
    CursorPage, CursorParams, IdempotencyKey, OffsetPage, PageParams, ValidatedJson, ValidatedQuery,
};
pub use peer::{PeerClient, PeerError};
pub use problem::{FieldError, Problem};
pub use service::{
    BackgroundTask, Infra, RunningService, Service, Serving, Started, consumer_task, main, start,
    task,
};
pub use sqlx::migrate::Migrator;

/// The event bus, re-exported so services need no extra dependency to publish and consume.
pub use event_bus;
/// Event payload types, re-exported for the same reason.
pub use shared_types;

/// Result of a handler that fails with a problem document.
pub type ApiResult<T> = Result<T, Problem>;
