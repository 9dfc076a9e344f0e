//! Integration tests of the notification service's messages, providers, delivery log and
//! preferences against real Postgres and RabbitMQ (and moto for SES/S3, wiremock for
//! Twilio/FCM). The live WebSocket has its own test binary (`tests/live.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod audit;
mod events;
mod helpers;
mod openapi;
mod preferences;
mod providers;
mod recipients;
mod sender;
