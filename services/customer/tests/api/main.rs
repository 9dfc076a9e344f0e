//! Integration tests of the customer service against real Postgres and RabbitMQ.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod addresses;
mod audit;
mod gdpr;
mod loyalty;
mod profiles;
mod review_purchases;
mod reviews;
mod tickets;
mod wishlist;
