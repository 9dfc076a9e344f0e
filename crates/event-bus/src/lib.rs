//! Domain events between Lomash Wood services (DESIGN.md §4): a transactional outbox, a relay
//! that publishes it with confirms, idempotent consumers and dead-letter tools, over RabbitMQ
//! (default) or SQS.
//!
//! # Publishing
//! Write the event in the transaction that changes the state; the [`Relay`] (one task per
//! producing service) sends it after commit, and nothing is sent for a rolled-back transaction:
//!
//! ```no_run
//! # use shared_types::{DomainEvent, order_payment::PaymentSucceeded};
//! # async fn example(pool: sqlx::PgPool, payload: PaymentSucceeded) -> Result<(), Box<dyn std::error::Error>> {
//! let mut tx = pool.begin().await?;
//! // ... the state change, using &mut *tx ...
//! event_bus::outbox::publish(&mut tx, &DomainEvent::new("order-payment", payload)).await?;
//! tx.commit().await?;
//! # Ok(()) }
//! ```
//!
//! and at start-up:
//!
//! ```no_run
//! # use event_bus::{BusConfig, Relay, RelaySettings};
//! # async fn example(pool: sqlx::PgPool, cancel: tokio_util::sync::CancellationToken) -> Result<(), event_bus::BusError> {
//! let bus = event_bus::connect(BusConfig::default()).await?;
//! tokio::spawn(Relay::new(pool, bus.clone(), RelaySettings::new("order-payment")).run(cancel));
//! # Ok(()) }
//! ```
//!
//! # Consuming
//! Each handler runs inside a transaction that also records the event id in `processed_events`,
//! so a redelivered event changes nothing; the message is acknowledged after the commit. Several
//! messages are handled at once ([`ConsumerSettings::concurrency`]), so handlers must not rely on
//! the order of events:
//!
//! ```no_run
//! # use event_bus::{Consumer, HandlerError, SharedBus};
//! # use shared_types::order_payment::PaymentSucceeded;
//! # async fn example(pool: sqlx::PgPool, bus: SharedBus, cancel: tokio_util::sync::CancellationToken) -> Result<(), event_bus::BusError> {
//! Consumer::new(pool, bus, "customer")
//!     .on::<PaymentSucceeded, _>(|event, conn| {
//!         Box::pin(async move {
//!             sqlx::query("UPDATE loyalty SET points = points + $1 WHERE user_id = $2")
//!                 .bind(event.payload.amount / 100)
//!                 .bind(event.payload.user_id)
//!                 .execute(conn)
//!                 .await?;
//!             Ok::<_, HandlerError>(())
//!         })
//!     })
//!     .run(cancel)
//!     .await
//! # }
//! ```
//!
//! # Tables
//! Every producing service's database has an `outbox` table and every consuming service's a
//! `processed_events` table; the service's own migration creates them (the schema is in
//! `tests/schema.sql` of this crate).

#![warn(missing_docs)]

pub mod aws;
mod backoff;
mod bus;
mod config;
mod consumer;
pub mod dlq;
mod error;
mod memory;
pub mod outbox;
mod rabbitmq;
mod relay;
mod sqs;
pub mod topology;
pub mod trace;

pub use bus::{
    Acknowledger, Bus, Incoming, MessageStream, OutgoingMessage, PublishOutcome, SharedBus,
    Subscription, connect,
};
pub use config::{BackendKind, BusConfig, ConsumerSettings, SqsConfig, SqsCredentials};
pub use consumer::{Consumer, EventHandler, HandlerError};
pub use dlq::{DeadLetter, Replay};
pub use error::BusError;
pub use outbox::OutboxError;
pub use relay::{Relay, RelaySettings};

pub use shared_types::{DomainEvent, EventPayload};
