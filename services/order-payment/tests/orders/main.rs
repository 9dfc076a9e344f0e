//! Carts, checkout, coupons, tax and shipping, orders and their back office, against a real
//! Postgres, RabbitMQ and a real product service.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod audit;
mod cart;
mod checkout;
mod helpers;
mod orders;
mod purchases;
