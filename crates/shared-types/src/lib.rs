//! Types shared by the Lomash Wood services.
//!
//! The heart of this crate is the domain-event contract (DESIGN.md §4):
//!
//! - [`DomainEvent`] is the envelope every event travels in: its `id` (UUIDv7) is the idempotency
//!   key consumers record, `topic` and `version` say what the `payload` is, and `correlationId` and
//!   `traceparent` let one request be followed across services.
//! - [`EventPayload`] ties each payload struct to its topic and schema version.
//! - One module per producing service ([`auth`], [`product`], [`order_payment`], [`appointment`],
//!   [`content`], [`customer`], [`notification`]) holds the payload struct of every topic that
//!   service publishes; consumers deserialize the very same types.
//! - [`topics`] names every topic as a constant, and [`topics::ALL`] lists them.
//!
//! On the wire everything is JSON with camelCase field names and SCREAMING_SNAKE_CASE enum values;
//! money is an integer amount of minor units (pence) beside an ISO 4217 currency code; ids are
//! UUIDs; times are UTC. Unknown fields are ignored when reading, so a producer may add optional
//! fields without a version bump; removing or changing the meaning of a field needs a new
//! `VERSION`.
//!
//! ```
//! use shared_types::{DomainEvent, EventPayload, order_payment::PaymentSucceeded};
//! # let payload = PaymentSucceeded {
//! #     order_id: uuid::Uuid::now_v7(), payment_id: uuid::Uuid::now_v7(), user_id: None,
//! #     amount: 129_900, currency: "GBP".into(), invoice_number: None,
//! #     provider_payment_id: "pi_123".into(), customer_email: None, paid_at: chrono::Utc::now(),
//! # };
//! let event = DomainEvent::new("order-payment", payload).correlation_id("req-42");
//! assert_eq!(event.topic, PaymentSucceeded::TOPIC);
//! ```

#![warn(missing_docs)]

mod envelope;
pub mod topics;

pub mod appointment;
pub mod auth;
pub mod content;
pub mod customer;
pub mod notification;
pub mod order_payment;
pub mod product;

pub use envelope::{DecodeError, DomainEvent, EventPayload, RawEvent};
