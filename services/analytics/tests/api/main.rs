//! Integration tests of the analytics service: the real router on 127.0.0.1:0, a fresh database
//! per test, real Redis and RabbitMQ.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod buffer;
mod dashboard;
mod domain;
mod exports;
mod funnels;
mod helpers;
mod ingest;
mod subscriptions;
