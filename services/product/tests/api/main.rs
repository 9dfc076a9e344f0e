//! Integration tests of the product service: the real router on 127.0.0.1:0, a fresh database
//! per test, real Redis and RabbitMQ.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audit;
mod browse;
mod cache;
mod helpers;
mod inventory;
mod products;
mod seed;
mod sitemap;
mod taxonomy;
